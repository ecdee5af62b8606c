"""Watch events: what changed in a key range from a revision on, read from the
MVCC history.

An event is etcd's mvccpb.Event: PUT with the new version, or DELETE with the
tombstone (key and the delete's mod_revision, everything else zero), and the
previous live version of the key (None when the key did not exist before).
Events come in revision order, and inside a revision in sub-revision order (the
order of the writes in the transaction).

`read_events` reads a bounded slice: at most `max_revisions` revisions scanned
and (unless a single revision alone is larger) `max_events` events, so a watch
catching up from an old revision costs the node's loop a bounded amount per
turn. A revision is never split between two slices: a transaction's events stay
together.

Cost: a single-key watch walks that key's history only (a bisect, then its
versions); a range walks the change index (`MvccStore.changes`), O(writes in
the scanned revisions). The watch from a revision <= the compact revision is
refused (`Compacted`): events of such revisions may have been compacted away
(a delete at exactly the compact revision is), so no complete stream exists.
"""
from __future__ import annotations

from bisect import bisect_left
from typing import NamedTuple

from cluster.kv.errors import Compacted
from cluster.kv.keys import ALL_KEYS_END
from cluster.kv.keyvalue import KeyValue
from node.statemachine.mvcc import KeyHistory, MvccStore

PUT = 0  # etcd's mvccpb.Event_PUT
DELETE = 1  # etcd's mvccpb.Event_DELETE


class Event(NamedTuple):
    type: int  # PUT or DELETE
    kv: KeyValue
    prev_kv: KeyValue | None


class EventSlice(NamedTuple):
    """Events of the revisions [start, next_revision), grouped by revision
    (revisions with no event in the range are left out)."""

    revisions: list[tuple[int, list[Event]]]
    next_revision: int
    event_count: int


def in_range(key: bytes, start: bytes, range_end: bytes) -> bool:
    """etcd's range convention: b"" the single key, b"\\0" every key >= start."""
    if not range_end:
        return key == start
    if range_end == ALL_KEYS_END:
        return key >= start
    return start <= key < range_end


def read_events(store: MvccStore, start: int, key: bytes, range_end: bytes,
                max_revisions: int = 1000, max_events: int = 1000) -> EventSlice:
    """The events in [key, range_end) of revisions >= `start`, a bounded slice
    (see the module docstring). Raises Compacted if `start` <= the compact revision."""
    assert max_revisions >= 1 and max_events >= 1
    if start <= store.compact_revision:
        raise Compacted(start, store.compact_revision)
    start = max(start, store.changes_from)
    if start > store.revision:
        return EventSlice([], start, 0)
    if not range_end:
        return _single_key(store, start, key, max_revisions, max_events)
    return _range(store, start, key, range_end, max_revisions, max_events)


def _event(history: KeyHistory, i: int) -> Event:
    kv = history.kvs[i]
    prev = history.kvs[i - 1] if i > 0 else None
    if prev is not None and prev.version == 0:
        prev = None
    return Event(DELETE if kv.version == 0 else PUT, kv, prev)


def _single_key(store: MvccStore, start: int, key: bytes, max_revisions: int, max_events: int) -> EventSlice:
    stop = min(store.revision + 1, start + max_revisions)
    history = store.find_history(key)
    if history is None:
        return EventSlice([], stop, 0)
    mains = history.mains
    out: list[tuple[int, list[Event]]] = []
    count = 0
    i = bisect_left(mains, start)
    while i < len(mains) and mains[i] < stop:
        main = mains[i]
        if count >= max_events:
            return EventSlice(out, main, count)
        events = []
        while i < len(mains) and mains[i] == main:  # a txn may write a key twice
            events.append(_event(history, i))
            i += 1
        out.append((main, events))
        count += len(events)
    return EventSlice(out, stop, count)


def _range(store: MvccStore, start: int, key: bytes, range_end: bytes,
           max_revisions: int, max_events: int) -> EventSlice:
    stop = min(store.revision + 1, start + max_revisions)
    changes, base = store.changes, store.changes_from
    out: list[tuple[int, list[Event]]] = []
    count = 0
    every_key_from = range_end == ALL_KEYS_END
    for revision in range(start, stop):
        written = changes[revision - base]
        keys: tuple[bytes, ...] = (written,) if isinstance(written, bytes) else written
        # in_range, inlined: this is the per-write cost of every range watch.
        if every_key_from:
            matching = [k for k in keys if k >= key]
        else:
            matching = [k for k in keys if key <= k < range_end]
        if not matching:
            continue
        if count >= max_events:
            return EventSlice(out, revision, count)
        # The n-th mention of a key at a revision is its n-th record there (a
        # txn may write one key twice); records after the compact revision are
        # all retained, so the history is there.
        seen: dict[bytes, int] = {}
        events = []
        for k in matching:
            nth = seen.get(k, 0)
            seen[k] = nth + 1
            history = store.history(k)
            events.append(_event(history, bisect_left(history.mains, revision) + nth))
        out.append((revision, events))
        count += len(events)
    return EventSlice(out, stop, count)
