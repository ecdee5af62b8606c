"""The revisioned key-value store: every version of every key since the last
compaction, indexed by key.

Theory of operation
-------------------
The store holds a global `revision` that grows by one per write transaction
(etcd's main revision); the writes inside one transaction are numbered by a
sub-revision 0, 1, 2... A write transaction is bracketed by `begin_write()` and
`end_write()`; between the two, writes are visible to reads at the latest
revision (so the later ops of a Txn see the earlier ones) but not to reads at an
explicit revision <= `revision`.

Per key, a `KeyHistory` keeps parallel lists of main revisions, sub-revisions and
`KeyValue` versions, oldest first; a delete appends a tombstone. A key whose
whole retained history is one live version at sub-revision 0 (most keys of a
large store: written once, or compacted down to their last version) is held as
that bare `KeyValue` instead: one object per key rather than five (the history
object and its three lists), which is ~250 bytes less per key and four fewer
objects for every pass of the garbage collector to walk (docs/performance.md,
"Millions of keys"). `history(key)` hands readers a `KeyHistory` either way. Reading a key
at revision R is a `bisect` on the main revisions; reading the latest is the
last element. The set of keys is a `SortedList` (kept until compaction drops a
key's whole history), so a range is O(log n + k) like etcd's B-tree index.

Compaction at C keeps, per key, the last version at or before C if it is live,
and everything after C. Only keys with more than one record can lose anything,
so they are tracked in `_compactable` and compaction never walks the others.
While a snapshot is being streamed the physical drop is deferred (the snapshot
reads the histories lazily); the logical compact revision moves at once.

The change index (for watches) lists, per revision after the compact revision,
the keys written at it in sub-revision order: `changes[r - changes_from]`.
Every revision after the first is made by exactly one write transaction, so the
list is dense. It is what a watch enumerates from: the events of revisions >= R
cost O(writes since R), whatever the number of keys. It is dropped up to the
compact revision by `compact` (at once: a watch from there fails anyway) and
rebuilt from the retained records by `finish_load` (every record after the
compact revision is retained, so the rebuilt index is complete).

The accounted size (`size_bytes`, what the space quota is checked against, as
etcd checks its backend's size) is a running count over the logically retained
records: each costs its key, its value and `RECORD_OVERHEAD_BYTES`. Puts and
tombstones add, compaction subtracts what it drops, a snapshot load counts
what it loads. It follows the logical compaction (not the deferred physical
drop), so every replica at one applied index counts the same number. Only
compaction makes it shrink: the live keys and values stay counted, as etcd's
db size stays until a defragment (here there is no free-page slack to reclaim).
"""
from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterator
from itertools import islice
from operator import itemgetter

from sortedcontainers import SortedList

from cluster.kv.errors import Compacted, FutureRevision, SnapshotCorrupt
from cluster.kv.keys import ALL_KEYS_END
from cluster.kv.keyvalue import KeyValue, tombstone
from node.statemachine.key_table import MASK, KeyTable

#: "No revision bound": reads the latest version, including the writes of the
#: transaction in progress.
LATEST = 1 << 62

_VERSION = itemgetter(4)  # KeyValue.version
_VALUE = itemgetter(1)  # KeyValue.value
#: What one retained record costs beyond its key and value in the accounted
#: size: etcd's per-revision bucket key (17 bytes) and KeyValue fields (revisions,
#: version, lease: ~24 bytes), rounded. A constant, so the size is deterministic.
RECORD_OVERHEAD_BYTES = 48


def _as_history(entry: KeyValue | KeyHistory) -> KeyHistory:
    """A stored entry as a history (a bare KeyValue is one record at sub 0)."""
    return entry if isinstance(entry, KeyHistory) else KeyHistory(entry.mod_revision, 0, entry)


def _latest(entry: KeyValue | KeyHistory) -> KeyValue:
    return entry.kvs[-1] if isinstance(entry, KeyHistory) else entry


def _at(entry: KeyValue | KeyHistory, revision: int) -> KeyValue | None:
    if isinstance(entry, KeyHistory):
        return entry.at(revision)
    return entry if entry.mod_revision <= revision else None


def _has_none(items: list[bytes | None], lo: int, hi: int) -> bool:
    """Whether items[lo:hi] holds None: scanned in C, without copying the slice."""
    try:
        items.index(None, lo, hi)
    except ValueError:
        return False
    return True


def record_bytes(kv: KeyValue) -> int:
    """One record's cost in the accounted size."""
    return len(kv.key) + len(kv.value) + RECORD_OVERHEAD_BYTES


class KeyHistory:
    """The retained versions of one key, oldest first.

    Invariants: `mains` is non-decreasing and (main, sub) pairs strictly
    increase; `kvs[i].mod_revision == mains[i]`; `kvs[0]` is live (a history
    never starts with a tombstone); a tombstone is followed only by a live put.
    """

    __slots__ = ("mains", "subs", "kvs")

    def __init__(self, main: int, sub: int, kv: KeyValue) -> None:
        self.mains = [main]
        self.subs = [sub]
        self.kvs = [kv]

    def at(self, revision: int) -> KeyValue | None:
        """The live version at `revision`, or None if deleted or not yet created."""
        mains = self.mains
        if mains[-1] <= revision:
            kv = self.kvs[-1]
        else:
            i = bisect_right(mains, revision) - 1
            if i < 0:
                return None
            kv = self.kvs[i]
        return None if kv.version == 0 else kv

    def append(self, main: int, sub: int, kv: KeyValue) -> None:
        self.mains.append(main)
        self.subs.append(sub)
        self.kvs.append(kv)

    def retained_from(self, compact_revision: int) -> int:
        """Index of the first record a compaction at `compact_revision` keeps."""
        i = bisect_right(self.mains, compact_revision) - 1
        if i < 0:
            return 0
        return i + 1 if self.kvs[i].version == 0 else i

    def drop_before(self, start: int) -> None:
        del self.mains[:start], self.subs[:start], self.kvs[:start]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, KeyHistory):
            return NotImplemented
        return (self.mains, self.subs, self.kvs) == (other.mains, other.subs, other.kvs)

    __hash__ = None  # type: ignore[assignment]  # mutable


#: Dead change-index entries dropped per step, and write transactions between steps
#: (docs/performance.md, "Millions of keys"): a step is ~2-5 ms of CPU at millions of
#: revisions (the list's tail moves), and one apply batch (~1,000 puts) meets one.
TRIM_STEP = 100_000
TRIM_EVERY = 1_000


class MvccStore:
    """Every key's retained history, the key index and the revision counters."""

    def __init__(self) -> None:
        # A bare KeyValue: the key's only record, live, at sub-revision 0 (module docstring).
        # Sharded: growing one big dict is a stall (node/statemachine/key_table.py).
        self._histories: KeyTable[KeyValue | KeyHistory] = KeyTable()
        # Keys as `load`/`load_singles` brought them (ascending) until `finish_load`:
        # the table's own order follows the hash, so the index is built from these.
        self._loaded: list[bytes] = []
        self._index: SortedList = SortedList()
        # etcd starts at revision 1 (an empty store); the first write makes 2.
        self.revision = 1
        self.compact_revision = 0
        self._sub = 0  # writes so far in the transaction in progress
        self._writing = False
        self._compactable: set[bytes] = set()
        self._streams = 0  # snapshots being streamed: defer physical compaction
        self._compacted_to = 0  # physical compaction done up to this revision
        # The change index (see the module docstring); revision 1 is the empty store.
        # A revision that wrote one key holds that key itself (no container: 8 bytes
        # per revision instead of ~90), else a tuple of keys.
        self.changes: list[bytes | tuple[bytes, ...]] = []
        self.changes_from = 2
        # Entries of revisions <= this are compacted away but may still lead the list:
        # a compaction drops at most TRIM_STEP of them at once, the rest a step every
        # TRIM_EVERY writes (`_trim_changes`). Readers never index them: they start
        # after the compact revision.
        self._changes_dead_to = 1
        self._trim_countdown = 0
        self._changed: list[bytes] = []  # keys written by the transaction in progress
        #: the accounted size of the logically retained records (module docstring)
        self.size_bytes = 0

    # --- write transactions ----------------------------------------------------

    def begin_write(self) -> None:
        assert not self._writing, "write transactions do not nest"
        self._writing = True
        self._sub = 0
        if self._compacted_to < self.compact_revision and not self._streams:
            self._compact_now(self.compact_revision)

    def end_write(self) -> int:
        """Close the transaction; the revision moves only if something was written."""
        assert self._writing
        self._writing = False
        if self._sub:
            self.revision += 1
            self._sub = 0
            changed = self._changed
            self.changes.append(changed[0] if len(changed) == 1 else tuple(changed))
            changed.clear()
            if self.changes_from <= self._changes_dead_to:
                self._trim_countdown -= 1
                if self._trim_countdown <= 0:
                    self._trim_changes()
        return self.revision

    @property
    def observed_revision(self) -> int:
        """The revision as seen by a read now: one more once the transaction in
        progress has written something."""
        return self.revision + 1 if self._sub else self.revision

    def put(self, key: bytes, value: bytes, lease: int) -> KeyValue | None:
        """Write a new version of `key`; return the previous live version."""
        assert self._writing
        main = self.revision + 1
        sub = self._sub
        self._sub = sub + 1
        self._changed.append(key)
        self.size_bytes += len(key) + len(value) + RECORD_OVERHEAD_BYTES
        histories = self._histories.shards[hash(key) & MASK]  # the shard with `key`
        entry = histories.get(key)
        if entry is None:
            kv = KeyValue(key, value, main, main, 1, lease)
            histories[key] = kv if sub == 0 else KeyHistory(main, sub, kv)
            self._index.add(key)
            return None
        self._compactable.add(key)
        if isinstance(entry, KeyHistory):
            history = entry
        else:
            history = histories[key] = _as_history(entry)
        prev = history.kvs[-1]
        if prev.version == 0:
            history.append(main, sub, KeyValue(key, value, main, main, 1, lease))
            return None
        history.append(main, sub, KeyValue(key, value, prev.create_revision, main,
                                           prev.version + 1, lease))
        return prev

    def delete(self, key: bytes) -> KeyValue | None:
        """Delete `key` if it is live; return the deleted version."""
        assert self._writing
        entry = self._histories.get(key)
        if entry is None:
            return None
        prev = _latest(entry)
        if prev.version == 0:
            return None
        history = self._histories[key] = _as_history(entry)
        main = self.revision + 1
        self.size_bytes += len(key) + RECORD_OVERHEAD_BYTES
        history.append(main, self._sub, tombstone(key, main))
        self._sub += 1
        self._changed.append(key)
        self._compactable.add(key)
        return prev

    # --- reads -----------------------------------------------------------------

    def check_revision(self, revision: int) -> None:
        """Raise unless `revision` (0 = latest) can be read."""
        if revision == 0:
            return
        if revision < self.compact_revision:
            raise Compacted(revision, self.compact_revision)
        if revision > self.revision:
            raise FutureRevision(revision, self.revision)

    def get(self, key: bytes, revision: int = LATEST) -> KeyValue | None:
        """The live version of `key` at `revision` (checked by the caller)."""
        entry = self._histories.get(key)
        return None if entry is None else _at(entry, revision)

    def keys(self, key: bytes, range_end: bytes, reverse: bool = False) -> Iterator[bytes]:
        """Every indexed key in the range (etcd convention), in key order."""
        if range_end == ALL_KEYS_END:
            return self._index.irange(minimum=key, reverse=reverse)  # type: ignore[no-any-return]
        if range_end <= key:
            return iter(())
        return self._index.irange(key, range_end, (True, False), reverse)  # type: ignore[no-any-return]

    def scan(
        self, key: bytes, range_end: bytes, revision: int = LATEST, reverse: bool = False
    ) -> Iterator[KeyValue]:
        """The live versions at `revision` of the keys in the range, in key order.

        Built from map/filter over C-level getters rather than a Python loop: a
        range is per-key work on the hot read path, and this runs ~2.5x faster."""
        histories = map(self._histories.__getitem__, self.keys(key, range_end, reverse))
        if revision > self.revision:
            # The latest version is the last record; tombstones have version 0.
            return filter(_VERSION, map(_latest, histories))
        return filter(None, map(lambda entry: _at(entry, revision), histories))

    # --- compaction --------------------------------------------------------------

    def compact(self, revision: int) -> None:
        """Forget history superseded at or before `revision` (checked by the caller)."""
        assert self.compact_revision < revision <= self.revision
        previous, self.compact_revision = self.compact_revision, revision
        self._drop_changes_to(revision)
        now = not self._streams and not self._writing
        if now and self._compacted_to == previous:
            self.size_bytes -= self._compact_now(revision)
            return
        # Some physical drop is or was deferred: account for the logical one here.
        self.size_bytes -= self._superseded_bytes(previous, revision)
        if now:
            self._compact_now(revision)

    def _drop_changes_to(self, revision: int) -> None:
        self._changes_dead_to = max(self._changes_dead_to, revision)
        self._trim_changes()

    def _trim_changes(self) -> None:
        """Drop at most TRIM_STEP dead entries from the change index's head. Dropping
        millions at once is one long turn (a compaction of 2.1M revisions at 4.2M
        keys: ~80 ms of CPU on every member, the same applied index): the list
        moves its tail and releases each dropped reference in one call."""
        drop = min(self._changes_dead_to + 1 - self.changes_from, TRIM_STEP)
        if drop > 0:
            del self.changes[:drop]
            self.changes_from += drop
        self._trim_countdown = TRIM_EVERY

    def _superseded_bytes(self, previous: int, revision: int) -> int:
        """The accounted bytes of the records a compaction from `previous` to
        `revision` drops logically (whether or not they are physically gone)."""
        dropped = 0
        for key in self._compactable:
            history = self._histories[key]
            assert isinstance(history, KeyHistory)  # a compactable key has several records
            kvs = history.kvs
            for i in range(history.retained_from(previous), history.retained_from(revision)):
                dropped += record_bytes(kvs[i])
        return dropped

    def _compact_now(self, revision: int) -> int:
        """Drop the records superseded at `revision`; return their accounted bytes
        (meaningful only when nothing was deferred: `compact` says when)."""
        histories = self._histories
        emptied = []
        dropped = 0
        for key in self._compactable:
            history = histories[key]
            assert isinstance(history, KeyHistory)  # a compactable key has several records
            start = history.retained_from(revision)
            if start:
                kvs = history.kvs
                for i in range(start):
                    dropped += record_bytes(kvs[i])
                history.drop_before(start)
            if len(history.kvs) <= 1:
                emptied.append(key)
        for key in emptied:
            self._compactable.discard(key)
            history = histories[key]
            assert isinstance(history, KeyHistory)
            if not history.kvs:
                del histories[key]
                self._index.remove(key)
            elif history.subs[0] == 0:
                histories[key] = history.kvs[0]  # back to the bare form
        self._compacted_to = revision
        return dropped

    # --- snapshots ---------------------------------------------------------------

    def open_stream(self) -> None:
        self._streams += 1

    def close_stream(self) -> None:
        assert self._streams > 0
        self._streams -= 1

    def last_key(self) -> bytes | None:
        """The greatest indexed key (None: no key)."""
        return self._index[-1] if self._index else None

    def keys_after(self, after: bytes | None, count: int) -> list[bytes]:
        """Up to `count` indexed keys greater than `after` (None: from the start).
        A fresh lookup each time, so the index may change between calls."""
        if after is None:
            keys = self._index.irange()
        else:
            keys = self._index.irange(minimum=after, inclusive=(False, True))
        return [k for _, k in zip(range(count), keys)]

    def history(self, key: bytes) -> KeyHistory:
        """The key's records (a new object for a bare entry: read it, do not keep it)."""
        return _as_history(self._histories[key])

    def stored(self, keys: list[bytes]) -> list[KeyValue | KeyHistory]:
        """The entries of indexed `keys` as stored: a bare KeyValue (one live record
        at sub-revision 0) or a KeyHistory. For the snapshot writer, which streams
        a bare entry without building a history for it."""
        return list(map(self._histories.__getitem__, keys))

    def find_history(self, key: bytes) -> KeyHistory | None:
        entry = self._histories.get(key)
        return None if entry is None else _as_history(entry)

    def load(self, key: bytes, main: int, sub: int, kv: KeyValue) -> None:
        """Restore one history record; keys must come in order (the caller checks)."""
        self.size_bytes += record_bytes(kv)
        histories = self._histories
        entry = histories.get(key)
        if entry is None:
            histories[key] = kv if sub == 0 and kv.version else KeyHistory(main, sub, kv)
            self._loaded.append(key)
            return
        history = _as_history(entry)
        if len(history.kvs) == 1:
            histories[key] = history
            self._compactable.add(key)
        history.append(main, sub, kv)

    def load_singles(self, keys: list[bytes], kvs: list[KeyValue]) -> None:
        """Restore many keys at once, each with one live record at sub-revision 0
        (`kvs[i]` is `keys[i]`'s): keys ascending, after every key loaded so far
        (the caller checks). A restart's bulk path: one dict update, no per-key code."""
        self.size_bytes += sum(map(len, keys)) + sum(map(len, map(_VALUE, kvs))) + RECORD_OVERHEAD_BYTES * len(kvs)
        self._histories.update(zip(keys, kvs))
        self._loaded.extend(keys)

    def finish_load(self, revision: int, compact_revision: int) -> None:
        """After the last `load`: the key index, the counters and the change index."""
        for _ in self.finish_load_steps(revision, compact_revision):
            pass

    def finish_load_steps(self, revision: int, compact_revision: int, step: int | None = None) -> Iterator[None]:
        """`finish_load` in bounded pieces: yields after every `step` keys (or
        slots) of work, so a follower installing a snapshot can spread it over
        loop turns (node/snapshot_install.py). `step` None: one piece, and the key
        index is built by one C-level sort of the (already ordered) keys, 0.07 s at
        1,000,000 keys; key by key it costs 0.5 s, but each `add` is O(log n) and
        the work can stop anywhere. Either way the index holds the same keys."""
        loaded, self._loaded = self._loaded, []
        if len(loaded) != len(self._histories):  # keys that did not come through `load`
            loaded = sorted(self._histories)
        if step is None:
            self._index = SortedList(loaded)  # already sorted: timsort's one pass
        else:
            index = SortedList()
            add = index.add
            keys = iter(loaded)
            for _ in range(0, len(loaded), step):
                for key in islice(keys, step):
                    add(key)  # ascending: appended to the last sublist
                yield
            self._index = index
        self.revision = revision
        self.compact_revision = self._compacted_to = compact_revision
        yield from self._rebuild_changes(step)

    def _rebuild_changes(self, step: int | None) -> Iterator[None]:
        """The change index from the retained records: every record after the
        compact revision (all of them are retained), grouped by revision; yields
        after every `step` keys and every `step` shared revisions (None: never).

        Restart runs this over every key, so it is a counting placement rather than
        a sort of all records: almost every revision has one record (a put), and
        only the few revisions a multi-key transaction made are sorted by sub."""
        start = max(self.compact_revision + 1, 2)
        size = self.revision + 1 - start
        if size <= 0:
            self.changes, self.changes_from = [], start
            return
        changes: list[bytes | None] = [None] * size
        subs = [0] * size
        shared: dict[int, list[tuple[int, bytes]]] = {}  # slot -> its (sub, key) records

        def place(slot: int, sub: int, key: bytes) -> None:
            if changes[slot] is None:
                changes[slot], subs[slot] = key, sub
            elif slot in shared:
                shared[slot].append((sub, key))
            else:
                shared[slot] = [(subs[slot], changes[slot]), (sub, key)]  # type: ignore[list-item]

        items = iter(self._histories.items())
        per = step or max(len(self._histories), 1)
        for _ in range(0, len(self._histories), per):
            for key, entry in islice(items, per):
                if isinstance(entry, KeyHistory):
                    mains, history_subs = entry.mains, entry.subs
                    for i in range(bisect_left(mains, start), len(mains)):
                        place(mains[i] - start, history_subs[i], key)
                elif (main := entry.mod_revision) >= start:
                    slot = main - start
                    if changes[slot] is None:
                        changes[slot] = key  # sub 0: subs[slot] is already 0
                    else:
                        place(slot, 0, key)
            if step is not None:
                yield
        span = size if step is None else step * 32  # a slot costs ~30 ns to check
        for lo in range(0, size, span):
            if _has_none(changes, lo, lo + span):
                raise SnapshotCorrupt("a revision after the compact revision has no record")
            if step is not None:
                yield
        index: list[bytes | tuple[bytes, ...]] = changes  # type: ignore[assignment]
        for n, (slot, records) in enumerate(shared.items(), 1):
            records.sort()
            index[slot] = tuple(key for _, key in records)
            if step is not None and n % step == 0:
                yield
        self.changes = index
        self.changes_from = start

    def teardown_steps(self, step: int) -> Iterator[None]:
        """Empty the store `step` keys at a time: freeing a large store at once is
        a stall (~70 ms of CPU at 300,000 keys). The key index and the change
        index go first, while the dict still holds every key, so dropping them
        frees no key; then the dict's entries go, key and history together."""
        self.changes = []
        self._index = SortedList()
        self._compactable = set()
        histories, self._histories = self._histories, KeyTable()
        popitem = histories.popitem
        while histories:
            for _ in range(min(step, len(histories))):
                popitem()
            yield

    def records(self) -> Iterator[tuple[bytes, list[int], list[int], list[KeyValue]]]:
        """The retained records key by key, in key order: the logical history, the
        same on every replica at one revision (see `_logical`)."""
        return self._logical()

    def __len__(self) -> int:
        """How many keys have retained history (live or not)."""
        return len(self._histories)

    def _logical(self) -> Iterator[tuple[bytes, list[int], list[int], list[KeyValue]]]:
        """The retained records key by key, whether or not a deferred physical
        compaction has run: what equality and snapshots are defined on."""
        for key in self._index:
            history = _as_history(self._histories[key])
            start = history.retained_from(self.compact_revision)
            if start < len(history.kvs):
                yield key, history.mains[start:], history.subs[start:], history.kvs[start:]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, MvccStore):
            return NotImplemented
        return (
            (self.revision, self.compact_revision) == (other.revision, other.compact_revision)
            and list(self._logical()) == list(other._logical())
        )

    __hash__ = None  # type: ignore[assignment]  # mutable
