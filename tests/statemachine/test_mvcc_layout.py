"""The store's memory layout (node/statemachine/mvcc.py): a key whose only record
is a live version at sub-revision 0 is held as its bare KeyValue, one tracked
object instead of five, and goes back to that form once compaction leaves it
one record; readers see the same history either way."""
from __future__ import annotations

import gc

import pytest

from cluster.kv.keys import ALL_KEYS_END
from cluster.kv.keyvalue import KeyValue
from node.statemachine import mvcc
from node.statemachine.events import read_events
from node.statemachine.mvcc import KeyHistory, MvccStore


def write(store: MvccStore, *ops: tuple[str, bytes]) -> None:
    """One write transaction (revision) with `ops`: ("put" | "del", key)."""
    store.begin_write()
    for op, key in ops:
        if op == "put":
            store.put(key, b"v-" + key, 0)
        else:
            store.delete(key)
    store.end_write()


def entry(store: MvccStore, key: bytes) -> object:
    return store._histories[key]  # noqa: SLF001  # the layout is what this file checks


def test_a_key_written_once_is_one_tracked_object() -> None:
    store = MvccStore()
    gc.collect()
    before = len(gc.get_objects())
    for i in range(10_000):
        write(store, ("put", b"k%05d" % i))
    gc.collect()
    per_key = (len(gc.get_objects()) - before) / 10_000
    # the bare KeyValue (was 5: the history and its three lists), plus the
    # key table's 256 shard dicts over 10,000 keys (0.026 a key)
    assert per_key < 1.1
    assert type(entry(store, b"k00000")) is KeyValue


def test_a_second_write_or_a_nonzero_sub_revision_makes_a_history() -> None:
    store = MvccStore()
    write(store, ("put", b"a"))
    write(store, ("put", b"a"))
    write(store, ("put", b"x"), ("put", b"y"))  # y at sub-revision 1
    assert isinstance(entry(store, b"a"), KeyHistory) and isinstance(entry(store, b"y"), KeyHistory)
    assert type(entry(store, b"x")) is KeyValue
    assert store.history(b"y").subs == [1] and store.history(b"x").mains == [4]


def test_compaction_returns_a_key_to_the_bare_form_and_reads_do_not_change() -> None:
    store = MvccStore()
    write(store, ("put", b"a"))
    write(store, ("put", b"a"), ("put", b"b"))
    write(store, ("del", b"b"))
    before = [store.get(b"a", r) for r in (2, 3, 4)]
    store.compact(4)
    assert type(entry(store, b"a")) is KeyValue
    assert [store.get(b"a", r) for r in (4,)] == before[2:]
    assert b"b" not in store._histories  # noqa: SLF001  # deleted before the compaction: gone
    assert [kv.key for kv in store.scan(b"", b"\0")] == [b"a"]


def test_bare_and_history_forms_compare_equal_and_snapshot_alike() -> None:
    compacted, fresh = MvccStore(), MvccStore()
    write(compacted, ("put", b"a"))
    write(compacted, ("put", b"z"))
    write(compacted, ("put", b"a"))
    compacted.compact(3)
    # the same logical records, loaded as a snapshot load does
    for key in (b"a", b"z"):
        history = compacted.history(key)
        for main, sub, kv in zip(history.mains, history.subs, history.kvs):
            fresh.load(key, main, sub, kv)
    fresh.finish_load(compacted.revision, compacted.compact_revision)
    assert fresh == compacted and list(fresh.records()) == list(compacted.records())
    assert type(entry(fresh, b"z")) is KeyValue


def test_a_large_compaction_trims_the_change_index_a_bounded_step_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dropping millions of change-index entries at once was ~80 ms of CPU on every
    member at one applied index: at most TRIM_STEP go at once, a step every
    TRIM_EVERY writes after, and reads after the compact revision never notice."""
    monkeypatch.setattr(mvcc, "TRIM_STEP", 10)
    monkeypatch.setattr(mvcc, "TRIM_EVERY", 3)
    store = MvccStore()
    for i in range(60):
        write(store, ("put", b"k%03d" % i))
    assert (store.changes_from, len(store.changes)) == (2, 60)
    store.begin_write()
    store.compact(41)  # revisions 2..41 are dead: 40 entries, 10 dropped now
    store.end_write()
    assert store.changes_from == 12 and store.compact_revision == 41
    lengths = []
    for i in range(12):
        write(store, ("put", b"n%03d" % i))
        lengths.append(len(store.changes))
    # a step every third write until the dead head is gone, never more than 10 at once
    assert [store.changes_from] == [42]
    assert all(a - b <= 10 for a, b in zip(lengths, lengths[1:]))
    assert store.changes[0] == b"k040" and store.changes[-1] == b"n011"
    events = read_events(store, 42, b"", ALL_KEYS_END, max_revisions=100)
    assert [main for main, _ in events.revisions][:2] == [42, 43]
