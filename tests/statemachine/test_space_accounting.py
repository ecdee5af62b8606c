"""The store's accounted size (node/statemachine/mvcc.py, `size_bytes`): a
running count that always equals the cost of the logically retained records,
whatever the interleaving of writes, compactions and snapshot streams that
defer the physical drop, and that a restored replica counts the same."""
from __future__ import annotations

import random

from cluster.kv import AutoCompact, Compact, DeleteRange, Put, encode_command
from cluster.kv.results import CompactResponse
from node.statemachine.machine import StateMachine
from node.statemachine.mvcc import MvccStore, record_bytes


def recount(store: MvccStore) -> int:
    return sum(record_bytes(kv) for _, _, _, kvs in store.records() for kv in kvs)


def write(store: MvccStore, rng: random.Random) -> None:
    store.begin_write()
    for _ in range(rng.randint(1, 3)):
        key = b"k%d" % rng.randrange(12)
        if rng.random() < 0.25:
            store.delete(key)
        else:
            store.put(key, b"v" * rng.randrange(40), 0)
    store.end_write()


def test_the_running_size_is_the_cost_of_the_retained_records_through_deferred_compactions() -> None:
    rng = random.Random(16)
    store = MvccStore()
    streams = 0
    for _ in range(1500):
        roll = rng.random()
        if roll < 0.75:
            write(store, rng)
        elif roll < 0.85 and store.revision > store.compact_revision:
            store.compact(rng.randint(store.compact_revision + 1, store.revision))
        elif roll < 0.93:
            store.open_stream()
            streams += 1
        elif streams:
            store.close_stream()
            streams -= 1
        assert store.size_bytes == recount(store)


def test_compaction_frees_superseded_versions_but_not_live_ones() -> None:
    machine, index = StateMachine(), 0

    def apply(request: object) -> object:
        nonlocal index
        index += 1
        return machine.apply(index, encode_command(request))  # type: ignore[arg-type]

    for i in range(100):
        apply(Put(b"key", b"x" * 1000))
    full = machine.size_bytes
    assert full >= 100 * 1000
    apply(Compact(machine.revision))
    assert machine.size_bytes == len(b"key") + 1000 + (full // 100 - 1003)  # one version left
    apply(DeleteRange(b"key"))
    apply(AutoCompact(machine.revision))
    assert machine.size_bytes == 0
    restored = StateMachine.restore(machine.snapshot())
    assert restored.size_bytes == machine.size_bytes


def test_a_restored_replica_counts_the_same_size() -> None:
    rng = random.Random(3)
    machine = StateMachine()
    for index in range(1, 400):
        if index % 50 == 0:
            request: object = Compact(machine.revision - 5)
        else:
            request = Put(b"k%d" % rng.randrange(20), b"v" * rng.randrange(100))
        machine.apply(index, encode_command(request))  # type: ignore[arg-type]
    assert StateMachine.restore(machine.snapshot()).size_bytes == machine.size_bytes > 0


def test_auto_compact_at_or_below_the_compact_revision_is_a_no_op_not_an_error() -> None:
    machine = StateMachine()
    for index in range(1, 6):
        machine.apply(index, encode_command(Put(b"k", b"v")))
    assert machine.apply(6, encode_command(AutoCompact(4))) == CompactResponse(6, 4)
    assert machine.apply(7, encode_command(AutoCompact(3))) == CompactResponse(6, 4)
    assert machine.compact_revision == 4
