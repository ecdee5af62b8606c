"""The store's key -> history mapping, split over many dicts so that growing it
never stalls the loop.

A CPython dict grows by building a table twice the size and re-inserting every
entry, in one call: with bytes keys that was 129 ms of CPU at 1,398,101 keys,
272 ms at 2,796,202 and 417 ms at 5,592,405 (thread time, this 2-core VM). The
leader meets it while applying a put, a follower while applying or installing a
snapshot: at 2.8M keys one resize is most of the 300 ms minimum election timeout
(docs/performance.md, "Millions of keys"). Split over `SHARDS` dicts by the
key's hash, each resize moves 1/SHARDS of the keys: ~2 ms at 5M keys.

The price is one Python call per lookup (~0.1 us against ~10 us to apply a put)
and an iteration order that follows the hash (randomized per process), not the
insertion order: nothing replicated may depend on it. The store's order is its
`SortedList` index; `iter` here is for whole-table passes whose result does not
depend on order (the change-index rebuild sorts what it shares).
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import chain
from typing import Generic, TypeVar

#: Shards: a power of two (the hash is masked). 256 keeps a shard's resize
#: under ~2 ms up to 5M keys and adds ~60 KiB of empty dicts to a store.
SHARDS = 256
#: `shards[hash(key) & MASK]` is the dict holding `key` (the store's hot path
#: indexes it directly: a method call per lookup costs more than the lookup).
MASK = SHARDS - 1
_MASK = MASK

V = TypeVar("V")


class KeyTable(Generic[V]):
    """A dict[bytes, V] in `SHARDS` parts: the dict methods the store uses."""

    __slots__ = ("_shards",)

    def __init__(self) -> None:
        self._shards: list[dict[bytes, V]] = [{} for _ in range(SHARDS)]

    @property
    def shards(self) -> list[dict[bytes, V]]:
        """The dicts themselves: `shards[hash(key) & MASK]` holds `key`."""
        return self._shards

    def get(self, key: bytes) -> V | None:
        return self._shards[hash(key) & _MASK].get(key)

    def __getitem__(self, key: bytes) -> V:
        return self._shards[hash(key) & _MASK][key]

    def __setitem__(self, key: bytes, value: V) -> None:
        self._shards[hash(key) & _MASK][key] = value

    def __delitem__(self, key: bytes) -> None:
        del self._shards[hash(key) & _MASK][key]

    def __contains__(self, key: object) -> bool:
        return key in self._shards[hash(key) & _MASK]

    def __len__(self) -> int:
        return sum(map(len, self._shards))

    def __bool__(self) -> bool:
        return any(self._shards)

    def __iter__(self) -> Iterator[bytes]:
        """Every key, in no particular order (see the module docstring)."""
        return chain.from_iterable(self._shards)

    def items(self) -> Iterator[tuple[bytes, V]]:
        """Every (key, value), in no particular order."""
        return chain.from_iterable(shard.items() for shard in self._shards)

    def update(self, pairs: Iterable[tuple[bytes, V]]) -> None:
        shards = self._shards
        for key, value in pairs:
            shards[hash(key) & _MASK][key] = value

    def popitem(self) -> tuple[bytes, V]:
        for shard in self._shards:
            if shard:
                return shard.popitem()
        raise KeyError("popitem(): the table is empty")
