"""When the node snapshots: a fixed entry count, amortized by the snapshot's size."""
from node.storage import CompactionPolicy

POLICY = CompactionPolicy(applied_entries=100, wal_bytes=10_000, replay_ratio=1.0)


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


def test_the_replay_ratio_scales_the_size_rule():
    # The default: snapshot once the WAL since the last one is an eighth of its
    # size, so a restart replays at most an eighth of a snapshot's worth of entries.
    eighth = CompactionPolicy(applied_entries=100, wal_bytes=10_000)
    assert eighth.replay_ratio == 0.125
    assert not eighth.should_snapshot(100, 6_000, 499, 4_000)
    assert eighth.should_snapshot(100, 6_000, 500, 4_000)


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

    log_bytes = 200_000 * entry_bytes
    for ratio in (1.0, 0.5, 0.25):
        policy = CompactionPolicy(applied_entries=1_000, wal_bytes=1 << 40, replay_ratio=ratio)
        amortized = snapshot_bytes_written(policy, 200_000, True)
        fixed = snapshot_bytes_written(policy, 200_000, False)
        # Each snapshot is (1 + ratio) times the last, so all of them together are
        # within (1 + ratio) / ratio of the last one, which is at most the log.
        assert amortized <= (1 + ratio) / ratio * log_bytes, ratio
        assert fixed > 50 * log_bytes
