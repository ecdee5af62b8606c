"""The store's sharded key table (node/statemachine/key_table.py): a dict's
behaviour, and growth that never resizes one big table."""
from __future__ import annotations

import sys

from node.statemachine.key_table import MASK, SHARDS, KeyTable
from node.statemachine.mvcc import MvccStore


def test_it_behaves_as_the_dict_the_store_used() -> None:
    table: KeyTable[int] = KeyTable()
    plain: dict[bytes, int] = {}
    for i in range(3000):
        key = b"k%05d" % (i * 7919 % 3000)
        table[key] = plain[key] = i
    for i in range(0, 3000, 3):
        key = b"k%05d" % i
        del table[key]
        del plain[key]
    table.update([(b"extra", -1)])
    plain.update([(b"extra", -1)])
    assert len(table) == len(plain) and bool(table)
    assert sorted(table) == sorted(plain) and sorted(table.items()) == sorted(plain.items())
    assert all(table[k] == v and table.get(k) == v and k in table for k, v in plain.items())
    assert table.get(b"k00000") is None and b"k00000" not in table
    while table:
        key, value = table.popitem()
        assert plain.pop(key) == value
    assert not plain and len(table) == 0


def test_a_key_lives_in_the_shard_its_hash_names() -> None:
    table: KeyTable[int] = KeyTable()
    keys = [b"key/%06d" % i for i in range(5000)]
    table.update((k, 1) for k in keys)
    assert len(table.shards) == SHARDS
    assert all(k in table.shards[hash(k) & MASK] for k in keys)
    assert max(map(len, table.shards)) < 5000 // SHARDS * 3  # spread, not piled up


def test_growing_the_store_never_resizes_one_table_of_every_key() -> None:
    """The stall this prevents: one dict of N keys is rebuilt whole when it grows
    (129 ms of CPU at 1.4M keys). Here the largest table is a shard's: its size in
    bytes, checked against one dict of every key, stays a small fraction."""
    store = MvccStore()
    n = 50_000
    for i in range(n):
        store.begin_write()
        store.put(b"k%07d" % i, b"v", 0)
        store.end_write()
    one_dict = sys.getsizeof(dict.fromkeys(b"k%07d" % i for i in range(n)))
    largest_shard = max(map(sys.getsizeof, store._histories.shards))  # noqa: SLF001  # the layout is the point
    assert len(store) == n and largest_shard * 32 < one_dict
