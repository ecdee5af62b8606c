"""Watch events read from the MVCC history (node/statemachine/events.py): every
committed change exactly once, in revision order, with prev_kv; bounded slices
that never split a revision; compaction and snapshot restore keep the change
index exact. The reference is independent of the change index: it diffs the
store's reads at revision r-1 and r."""
from __future__ import annotations

import random

import pytest

from cluster.kv import (
    Compact,
    Compacted,
    DeleteRange,
    KeyValue,
    LeaseGrant,
    LeaseRevoke,
    Put,
    Txn,
    encode_command,
    prefix_end,
)
from node.statemachine import DELETE, PUT, Event, StateMachine


class Machine:
    def __init__(self) -> None:
        self.sm = StateMachine()
        self.index = 0

    def run(self, request: object) -> object:
        self.index += 1
        return self.sm.apply(self.index, encode_command(request))  # type: ignore[arg-type]


def flatten(sm: StateMachine, start: int, key: bytes, end: bytes, **limits: int) -> list[tuple[int, list[Event]]]:
    """Every slice from `start` to the current revision, concatenated."""
    out: list[tuple[int, list[Event]]] = []
    while start <= sm.revision:
        piece = sm.events(start, key, end, **limits)
        assert piece.next_revision > start, "a slice must make progress"
        assert all(start <= r < piece.next_revision for r, _ in piece.revisions)
        assert piece.event_count == sum(len(events) for _, events in piece.revisions)
        out.extend(piece.revisions)
        start = piece.next_revision
    return out


def reference(sm: StateMachine, start: int, keys: list[bytes]) -> list[tuple[int, list[tuple[int, KeyValue, KeyValue | None]]]]:
    """Changes found by reading every key at r-1 and r (no txn here writes a key twice)."""
    out = []
    for revision in range(max(start, 2), sm.revision + 1):
        changed = []
        for key in keys:
            before, after = sm.get(key, revision - 1), sm.get(key, revision)
            if after is not None and after.mod_revision == revision:
                changed.append((PUT, after, before))
            elif before is not None and after is None:
                changed.append((DELETE, KeyValue(key, b"", 0, revision, 0, 0), before))
        if changed:
            out.append((revision, changed))
    return out


def as_tuples(revisions: list[tuple[int, list[Event]]]) -> list[tuple[int, list[tuple[int, KeyValue, KeyValue | None]]]]:
    # Inside a revision the stream is in write order; the reference is in key order.
    return [(r, sorted(((e.type, e.kv, e.prev_kv) for e in events), key=lambda t: t[1].key))
            for r, events in revisions]


def random_history(seed: int, steps: int = 300) -> tuple[Machine, list[bytes]]:
    rng = random.Random(seed)
    keys = [b"a/%d" % i for i in range(8)] + [b"b/%d" % i for i in range(4)]
    m = Machine()
    for _ in range(steps):
        roll = rng.random()
        if roll < 0.55:
            m.run(Put(rng.choice(keys), b"v%d" % rng.randrange(1000)))
        elif roll < 0.7:
            m.run(DeleteRange(rng.choice(keys)))
        elif roll < 0.8:
            m.run(DeleteRange(b"a/", prefix_end(b"a/")) if rng.random() < 0.1 else DeleteRange(rng.choice(keys)))
        else:
            picked = rng.sample(keys, rng.randrange(1, 5))
            m.run(Txn((), tuple(Put(k, b"t") if rng.random() < 0.7 else DeleteRange(k) for k in picked), ()))
    return m, keys


def test_puts_deletes_and_txns_in_revision_order_with_prev_kv() -> None:
    m = Machine()
    m.run(Put(b"k", b"1"))                                              # 2
    m.run(Put(b"other", b"x"))                                          # 3
    m.run(Put(b"k", b"2"))                                              # 4
    m.run(DeleteRange(b"k"))                                            # 5
    m.run(Txn((), (Put(b"k", b"3"), Put(b"k2", b"y"), DeleteRange(b"other")), ()))  # 6
    got = flatten(m.sm, 1, b"k", b"k\xff")
    assert [(r, [(e.type, e.kv.key, e.kv.value) for e in events]) for r, events in got] == [
        (2, [(PUT, b"k", b"1")]), (4, [(PUT, b"k", b"2")]), (5, [(DELETE, b"k", b"")]),
        (6, [(PUT, b"k", b"3"), (PUT, b"k2", b"y")])]
    second, delete, recreate = got[1][1][0], got[2][1][0], got[3][1][0]
    assert second.kv == KeyValue(b"k", b"2", 2, 4, 2) and second.prev_kv == KeyValue(b"k", b"1", 2, 2, 1)
    assert delete.kv == KeyValue(b"k", b"", 0, 5, 0) and delete.prev_kv == second.kv
    assert recreate.kv == KeyValue(b"k", b"3", 6, 6, 1) and recreate.prev_kv is None
    # The single-key path agrees with the range path.
    assert flatten(m.sm, 1, b"k", b"") == [(r, [e for e in ev if e.kv.key == b"k"]) for r, ev in got]
    assert flatten(m.sm, 1, b"", b"\0")[-1][1][-1].type == DELETE  # every key: the txn's delete of "other"


@pytest.mark.parametrize("seed", range(6))
def test_every_change_exactly_once_against_a_reference(seed: int) -> None:
    m, keys = random_history(seed)
    for start in (1, 2, m.sm.revision // 2, m.sm.revision, m.sm.revision + 1):
        expected = reference(m.sm, start, [k for k in keys if k.startswith(b"a/")])
        got = flatten(m.sm, start, b"a/", prefix_end(b"a/"))
        assert as_tuples(got) == expected
        # Tiny slices give the same stream, and never split a revision.
        assert flatten(m.sm, start, b"a/", prefix_end(b"a/"), max_revisions=3, max_events=1) == got
        single = flatten(m.sm, start, b"a/3", b"", max_revisions=2, max_events=1)
        assert as_tuples(single) == reference(m.sm, start, [b"a/3"])


def test_a_slice_is_bounded_but_keeps_a_transaction_whole() -> None:
    m = Machine()
    m.run(Txn((), tuple(Put(b"t/%d" % i, b"v") for i in range(10)), ()))
    m.run(Put(b"t/0", b"w"))
    piece = m.sm.events(2, b"t/", prefix_end(b"t/"), max_events=3)
    assert [(r, len(e)) for r, e in piece.revisions] == [(2, 10)] and piece.next_revision == 3
    assert m.sm.events(2, b"t/", prefix_end(b"t/"), max_revisions=1).next_revision == 3


def test_a_key_written_twice_in_one_txn_gives_both_events_in_write_order() -> None:
    # etcd refuses two puts of one key in a txn (DuplicateKey) but, by its
    # interval rule, not a delete "from key on" followed by a put of the key.
    m = Machine()
    m.run(Put(b"d", b"1"))
    m.run(Txn((), (DeleteRange(b"d", b"\0"), Put(b"e", b"x"), Put(b"d", b"2")), ()))
    [(revision, events)] = flatten(m.sm, 3, b"d", b"f")
    assert revision == 3 and [(e.type, e.kv.key, e.kv.value) for e in events] == [
        (DELETE, b"d", b""), (PUT, b"e", b"x"), (PUT, b"d", b"2")]
    assert [e.kv.value for _, ev in flatten(m.sm, 1, b"d", b"") for e in ev] == [b"1", b"", b"2"]


def test_a_watch_from_the_compact_revision_or_before_is_refused_after_it_is_exact() -> None:
    m, keys = random_history(11)
    before = {start: flatten(m.sm, start, b"", b"\0") for start in range(2, m.sm.revision + 2, 7)}
    compact_at = m.sm.revision // 2
    m.run(Compact(compact_at))
    for start in (1, compact_at - 1, compact_at):
        with pytest.raises(Compacted) as caught:
            m.sm.events(start, b"", b"\0")
        assert caught.value.compact_revision == compact_at  # type: ignore[attr-defined]
    for start, stream in before.items():
        if start > compact_at:
            assert flatten(m.sm, start, b"", b"\0") == stream
            assert flatten(m.sm, start, b"a/1", b"") == [(r, [e for e in ev if e.kv.key == b"a/1"])
                                                         for r, ev in stream if any(e.kv.key == b"a/1" for e in ev)]
    # Writing after the compaction (the physical drop happens now) changes nothing either.
    stream = flatten(m.sm, compact_at + 1, b"", b"\0")
    m.run(Put(b"a/0", b"after"))
    assert flatten(m.sm, compact_at + 1, b"", b"\0") == stream + [(m.sm.revision, [Event(
        PUT, m.sm.get(b"a/0"), m.sm.get(b"a/0", m.sm.revision - 1))])]


def test_a_restored_snapshot_serves_the_same_events() -> None:
    m, keys = random_history(5)
    m.run(Compact(m.sm.revision // 3))
    m.run(Put(b"a/1", b"x"))
    restored = StateMachine.restore(m.sm.snapshot(chunk_bytes=300))
    first = m.sm.compact_revision + 1
    assert restored.events(first, b"", b"\0").next_revision == m.sm.revision + 1
    for start in range(first, m.sm.revision + 2, 5):
        assert flatten(restored, start, b"", b"\0") == flatten(m.sm, start, b"", b"\0")
        assert flatten(restored, start, b"b/", prefix_end(b"b/"), max_revisions=4) == \
            flatten(m.sm, start, b"b/", prefix_end(b"b/"))
    with pytest.raises(Compacted):
        restored.events(first - 1, b"", b"\0")
    # A fresh store's snapshot (nothing compacted) also restores a complete index.
    fresh, _ = random_history(6, steps=40)
    assert flatten(StateMachine.restore(fresh.sm.snapshot()), 1, b"", b"\0") == flatten(fresh.sm, 1, b"", b"\0")


def test_a_future_start_gives_an_empty_slice_waiting_there() -> None:
    m = Machine()
    m.run(Put(b"k", b"v"))
    piece = m.sm.events(m.sm.revision + 5, b"k", b"")
    assert piece.revisions == [] and piece.next_revision == m.sm.revision + 5


def test_revoking_a_lease_deletes_its_keys_as_events_of_one_revision() -> None:
    m = Machine()
    m.run(LeaseGrant(ttl=60, id=7))
    m.run(Put(b"l/a", b"1", lease=7))
    m.run(Put(b"l/b", b"2", lease=7))
    m.run(Put(b"l/c", b"3"))
    m.run(LeaseRevoke(7))
    *_, (revision, events) = flatten(m.sm, 1, b"l/", prefix_end(b"l/"))
    assert revision == m.sm.revision and [(e.type, e.kv.key, e.prev_kv.lease) for e in events] == [
        (DELETE, b"l/a", 7), (DELETE, b"l/b", 7)]
    assert [e.kv.lease for _, ev in flatten(m.sm, 1, b"l/a", b"") for e in ev][0] == 7  # the lease id is in the kv
