"""When the node snapshots: a fixed entry count, amortized by the snapshot's size."""
from node.storage import CompactionPolicy

POLICY = CompactionPolicy(applied_entries=100, wal_bytes=10_000)


def test_nothing_applied_since_the_snapshot_never_snapshots():
    assert not POLICY.should_snapshot(0, 20_000, 20_000, 0)


def test_enough_entries_and_no_previous_snapshot():
    assert POLICY.should_snapshot(100, 500)
    assert not POLICY.should_snapshot(99, 500)


def test_waits_until_the_wal_grew_by_the_last_snapshots_size():
    # 100 entries applied, but the last snapshot was 4,000 bytes and only 3,999
    # bytes of WAL were written since: taking another now would write more
    # snapshot than log.
    assert not POLICY.should_snapshot(100, 6_000, 3_999, 4_000)
    assert POLICY.should_snapshot(100, 6_000, 4_000, 4_000)


def test_the_wal_cap_wins_over_the_size_rule():
    assert POLICY.should_snapshot(1, 10_000, 10, 1_000_000)


def test_total_snapshot_bytes_stay_proportional_to_the_log():
    """Simulate a store whose snapshot holds every version ever written (no user
    compaction): with the size rule, the bytes written by snapshots stay within
    a small factor of the log's bytes; without it they grow quadratically."""
    entry_bytes = 150

    def snapshot_bytes_written(policy: CompactionPolicy, entries: int, amortized: bool) -> int:
        written = since = wal_since = last = 0
        for n in range(1, entries + 1):
            since += 1
            wal_since += entry_bytes
            if policy.should_snapshot(since, wal_since, wal_since if amortized else None,
                                      last if amortized else 0):
                last = n * entry_bytes  # every version ever written is in it
                written += last
                since = wal_since = 0
        return written

    policy = CompactionPolicy(applied_entries=1_000, wal_bytes=1 << 40)
    log_bytes = 200_000 * entry_bytes
    amortized = snapshot_bytes_written(policy, 200_000, True)
    fixed = snapshot_bytes_written(policy, 200_000, False)
    assert amortized <= 3 * log_bytes
    assert fixed > 50 * log_bytes
