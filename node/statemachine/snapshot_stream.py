"""Snapshots of the state machine as a stream of bounded msgpack chunks.

Stream layout, one msgpack array per chunk:

    ["jangada-kv", FORMAT, applied_index, revision, compact_revision]   header
    ["kvcols", [sub...], [key...], [value...], [create_revision...],
     [mod_revision...], [version...], [lease...]]
                                       history records as columns (FORMAT 5), keys
                                       ascending, then revisions ascending
                                       (main = mod_revision)
    ["leases", [[id, ttl, granted_index], ...]]       ids ascending (FORMAT 2)
    ["auth", enabled, auth_revision, [user...], [role...]]     exactly once (FORMAT 3)
    ["alarms", [[member_id, alarm], ...]]      exactly once, ascending (FORMAT 4)
        user = [name, hashed, [role...], no_password]     names ascending
        role = [name, [[perm_type, key, range_end], ...]] names ascending
    ["sessions", [[client_id, last_seq, last_index, result|nil], ...]]
                                       least recently used first
    ["end", record_count, session_count, lease_count]               trailer

FORMAT 5 writes the history records as columns, one array per KeyValue field
plus the sub-revisions: a chunk decodes in one msgpack call into arrays that are
checked in bulk (types, ranges and order by C-level passes) and turned into
KeyValues by `map`, not record by record, so a restart restores a record in
~0.3 us instead of ~2.5 (docs/performance.md, "Restart"). FORMAT 1-4 streams
hold `["kvs", [[sub, kv], ...]]` record chunks instead, and still load.
FORMAT 4 added the raised alarms (cluster/kv/alarms.py); older streams load
with none. FORMAT 3 added the auth state (cluster/kv/auth.py: password hashes, never
passwords); FORMAT 1 and 2 streams load with auth disabled and no users or
roles. The auth chunk is one chunk whatever `chunk_bytes` (users and roles are
few and small). FORMAT 2 added the leases. Which keys are attached to a lease is not written: it
is each live key's latest `lease` field, re-attached on load (a key naming a
lease that is not in the table stays unattached). FORMAT 1 streams (no leases
chunk, a 3-field trailer) still load, with no leases.

A chunk holds records until it reaches `chunk_bytes`, so no chunk is larger
than `chunk_bytes` plus one record (a key and value within `Limits`). Equal
states give equal bytes: keys are in key order, sessions in activity order,
and the records are exactly those a compaction at `compact_revision` keeps
(whether or not a deferred physical compaction has run).

The stream is lazy and may be consumed while later commands are applied: the
header fixes the state it describes (revision R), records above R are skipped,
sessions are copied at once, and physical compaction is deferred until the
stream is exhausted or closed (see `MvccStore`). Consume it from the thread
that applies commands.
"""
from __future__ import annotations

from bisect import bisect_right
from collections.abc import Generator, Iterable, Iterator
from itertools import chain, islice, repeat
from operator import itemgetter, lt
from typing import Any, TypeVar, cast

import msgpack

from cluster.kv.codec import (
    DECODE_ERRORS,
    kv_from_fields,
    pack,
    result_from_fields,
    result_fields,
)
from cluster.kv.alarms import AlarmMember, AlarmType
from cluster.kv.auth import Permission, PermType
from cluster.kv.errors import KvError, SnapshotCorrupt
from cluster.kv.keys import ALL_KEYS_END
from cluster.kv.keyvalue import KeyValue
from node.statemachine.alarm_table import AlarmTable
from node.statemachine.auth_store import AuthStore, Role, User
from node.statemachine.lease_table import INT64_MAX, LeaseTable
from node.statemachine.mvcc import KeyHistory, MvccStore
from node.statemachine.sessions import Session, SessionTable

MAGIC = "jangada-kv"
FORMAT = 5
READABLE_FORMATS = (1, 2, 3, 4, 5)
_LEASE_RECORD_BYTES = 32  # an upper bound: an array header and three int64s
DEFAULT_CHUNK_BYTES = 256 * 1024
_KEYS_PER_LOOKUP = 512
# An upper bound on a record's msgpack bytes beyond its key and value: two array
# headers, two bin headers (<= 5 bytes each) and five integers (<= 9 bytes each).
# Overestimating keeps every chunk within chunk_bytes plus one record.
_RECORD_OVERHEAD = 64
_new_tuple = tuple.__new__
_value = itemgetter(1)  # KeyValue.value (a NamedTuple: by index is the cheapest read)
assert KeyValue._fields[1] == "value", "update _value"

T = TypeVar("T")


def stream_snapshot(
    store: MvccStore, sessions: SessionTable, leases: LeaseTable, auth: AuthStore, alarms: AlarmTable,
    applied_index: int, chunk_bytes: int
) -> Iterator[bytes]:
    """The chunks of a snapshot of the state as it is now."""
    chunks = _chunks(store, sessions, leases, auth, alarms, applied_index, chunk_bytes)
    # Run up to the first yield now: this fixes the state the stream describes
    # and enters the try block, so dropping the iterator closes the stream.
    header = next(chunks)
    return chain((header,), chunks)


def auth_fields(auth: AuthStore) -> list[Any]:
    """The auth chunk's fields after its name (also what digest.hash_all hashes)."""
    users = [[user.name, user.hashed, list(user.roles), user.no_password] for user in auth.users()]
    roles = [[role.name, [[int(p.perm_type), p.key, p.range_end] for p in role.perms]] for role in auth.roles()]
    return [auth.enabled, auth.revision, users, roles]


def _chunks(
    store: MvccStore, sessions: SessionTable, leases: LeaseTable, auth: AuthStore, alarms: AlarmTable,
    applied_index: int, chunk_bytes: int
) -> Iterator[bytes]:
    revision, compact_revision = store.revision, store.compact_revision
    last_key = store.last_key()
    saved_auth = pack(["auth", *auth_fields(auth)])
    saved_alarms = pack(["alarms", [[a.member_id, int(a.alarm)] for a in alarms]])
    saved_sessions = list(sessions)
    saved_leases = [[lease.id, lease.ttl, lease.granted_index] for lease in leases]
    store.open_stream()
    try:
        yield pack([MAGIC, FORMAT, applied_index, revision, compact_revision])
        count = 0
        for subs, kvs in _record_batches(store, revision, compact_revision, last_key, chunk_bytes):
            count += len(subs)
            yield pack(["kvcols", subs, *zip(*kvs)])
        per_chunk = max(1, chunk_bytes // _LEASE_RECORD_BYTES)
        for start in range(0, len(saved_leases), per_chunk):
            yield pack(["leases", saved_leases[start:start + per_chunk]])
        yield saved_auth
        yield saved_alarms
        for batch in _session_batches(saved_sessions, chunk_bytes):
            yield pack(["sessions", batch])
        yield pack(["end", count, len(saved_sessions), len(saved_leases)])
    finally:
        store.close_stream()


def _record_batches(
    store: MvccStore, revision: int, compact_revision: int, last_key: bytes | None, chunk_bytes: int
) -> Iterator[tuple[list[int], list[KeyValue]]]:
    """The retained records up to `revision`, in stream order, as (subs, kvs) batches.

    `last_key` is the greatest key at `revision`: every key after it was created
    later and has no record to stream. Without that stop, a store filled in key
    order (new keys at the end) had the stream's last step walk every key written
    while it streamed, all skipped, in one loop turn (106 ms of CPU at 3.5M keys)."""
    subs: list[int] = []
    batch: list[KeyValue] = []
    size = 0
    after = None
    if last_key is None:
        return
    while keys := store.keys_after(after, _KEYS_PER_LOOKUP):
        if keys[-1] > last_key:
            keys = keys[:bisect_right(keys, last_key)]
            if not keys:
                break
        after = keys[-1]
        for key, entry in zip(keys, store.stored(keys)):
            if type(entry) is KeyValue:  # one live record at sub 0: always retained
                if entry.mod_revision <= revision:
                    subs.append(0)
                    batch.append(entry)
                    size += len(key) + len(entry.value) + _RECORD_OVERHEAD
                    if size >= chunk_bytes:
                        yield subs, batch
                        subs, batch, size = [], [], 0
                continue
            history = cast(KeyHistory, entry)
            start = history.retained_from(compact_revision)
            end = bisect_right(history.mains, revision)
            kvs = history.kvs[start:end]
            # A history that fits in the chunk goes in whole, in C loops (a store of
            # few keys written often is all histories); one that would end the chunk
            # goes record by record.
            grown = size + (len(key) + _RECORD_OVERHEAD) * len(kvs) + sum(map(len, map(_value, kvs)))
            if grown < chunk_bytes:
                subs += history.subs[start:end]
                batch += kvs
                size = grown
                continue
            for sub, kv in zip(history.subs[start:end], kvs):
                subs.append(sub)
                batch.append(kv)
                size += len(key) + len(kv.value) + _RECORD_OVERHEAD
                if size >= chunk_bytes:
                    yield subs, batch
                    subs, batch, size = [], [], 0
    if batch:
        yield subs, batch


def _session_batches(sessions: list[Session], chunk_bytes: int) -> Iterator[list[Any]]:
    batch: list[Any] = []
    size = 0
    for session in sessions:
        result = None if session.last_result is None else result_fields(session.last_result)
        record = [session.client_id, session.last_seq, session.last_index, result]
        batch.append(record)
        size += len(pack(record))
        if size >= chunk_bytes:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def run_steps(steps: Generator[None, None, T]) -> T:
    """Do all the work of a step generator at once; its result."""
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]


def load_snapshot_steps(chunks: Iterable[bytes], store: MvccStore, sessions: SessionTable, leases: LeaseTable,
                        auth: AuthStore, alarms: AlarmTable | None = None,
                        step: int | None = None) -> Generator[None, None, int]:
    """Fill an empty store, session table, lease table and auth store from a
    snapshot stream, in bounded pieces; return its applied index. Raises
    SnapshotCorrupt on a bad or truncated stream.

    `chunks` is a byte stream split anywhere: storage and transport re-chunk the
    file (SnapshotRef.iter_data), so record boundaries are found by the unpacker,
    not assumed to coincide with the pieces.

    The generator yields after every `step` records (keys, slots) of work and
    after every chunk (None: once per chunk only). The same code restores at once
    (restart) and a step per loop turn (a follower's install,
    node/snapshot_install.py), so both build the same state. A piece's cost is
    bounded by `step` and by one chunk's bytes (`chunk_bytes` plus one record)."""
    stream = _unpack_stream(chunks)
    header = next(stream, None)
    if not (type(header) is list and len(header) == 5 and header[0] == MAGIC
            and type(header[1]) is int and header[1] in READABLE_FORMATS):
        raise SnapshotCorrupt(f"bad header {header!r:.80}")
    applied_index, revision, compact_revision = _ints(header[2:], "header")
    loader = _Loader(store, revision, compact_revision, header[1])
    for chunk in stream:
        if loader.done:
            raise SnapshotCorrupt("data after the end chunk")
        yield from loader.take(chunk, sessions, leases, auth, step)
        yield
    if not loader.done:
        raise SnapshotCorrupt("truncated: no end chunk")
    yield from store.finish_load_steps(revision, compact_revision, step)
    if alarms is not None:
        alarms.load(loader.alarms)
    if len(leases):  # a pass over every key, for nothing when no lease exists
        live = store.scan(b"", ALL_KEYS_END)
        per = step or max(len(store), 1)
        for _ in range(0, len(store), per):
            for kv in islice(live, per):
                if kv.lease and leases.exists(kv.lease):
                    leases.attach(kv.lease, kv.key)
            if step is not None:
                yield
    return applied_index


def _unpack_stream(pieces: Iterable[bytes]) -> Iterator[Any]:
    """The msgpack values of a byte stream, whatever its split into pieces."""
    unpacker = msgpack.Unpacker(raw=False, use_list=True)
    fed = 0
    try:
        for piece in pieces:
            unpacker.feed(piece)
            fed += len(piece)
            yield from unpacker
    except DECODE_ERRORS as error:
        raise SnapshotCorrupt(f"chunk is not msgpack ({type(error).__name__})") from None
    if unpacker.tell() != fed:
        raise SnapshotCorrupt(f"truncated: {fed - unpacker.tell()} bytes of an unfinished chunk")


def _ints(values: list[Any], what: str) -> list[int]:
    if not all(type(v) is int and v >= 0 for v in values):
        raise SnapshotCorrupt(f"{what}: expected non-negative integers")
    return values


class _Loader:
    """Checks the order of a snapshot's chunks and records while loading them."""

    def __init__(self, store: MvccStore, revision: int, compact_revision: int, version: int) -> None:
        self.store = store
        self.revision = revision
        self.compact_revision = compact_revision
        self.version = version
        self.records = 0
        self.last: tuple[bytes, int, int] = (b"", 0, 0)
        self.sessions: list[Session] = []
        self.leases: list[list[int]] = []
        self.auth: tuple[bool, int, list[User], list[Role]] | None = None
        self.alarms: list[AlarmMember] = []
        self.alarms_seen = version < 4  # FORMAT 4 has exactly one alarms chunk, after auth
        # 0 kvs, 1 leases, 2 auth, 3 sessions, 4 done: sections come in this order
        self.phase = 0

    @property
    def done(self) -> bool:
        return self.phase == 4

    def take(self, chunk: Any, sessions: SessionTable, leases: LeaseTable, auth: AuthStore,
             step: int | None) -> Iterator[None]:
        """Load one chunk; a records chunk yields after every `step` records."""
        if type(chunk) is not list or len(chunk) < 2:
            raise SnapshotCorrupt(f"bad chunk {chunk!r:.80}")
        match chunk[0]:
            case "kvcols" if self.phase == 0 and self.version >= 5:
                yield from self._load_columns(chunk, step)
            case "kvs" if self.phase == 0 and self.version <= 4:
                records = _records(chunk[1])
                per = step or max(len(records), 1)
                remaining = iter(records)
                for _ in range(0, len(records), per):
                    for record in islice(remaining, per):
                        self._load_record(record)
                    if step is not None:
                        yield
            case "leases" if self.version >= 2 and self.phase <= 1:
                self.phase = 1
                self.leases.extend(self._lease(record) for record in _records(chunk[1]))
            case "auth" if self.version >= 3 and self.phase <= 1:
                self.phase = 2
                self.auth = _auth(chunk)
            case "alarms" if self.version >= 4 and self.phase == 2 and not self.alarms_seen:
                self.alarms_seen = True
                self.alarms = _alarms(chunk)
            case "sessions" if self.phase <= 3 and (self.version < 3 or self.phase >= 2) and self.alarms_seen:
                self.phase = 3
                self.sessions.extend(_session(record) for record in _records(chunk[1]))
            case "end" if (len(chunk) == (4 if self.version >= 2 else 3) and (self.version < 3 or self.phase >= 2)
                           and self.alarms_seen):
                counts = [self.records, len(self.sessions)] + ([len(self.leases)] if self.version >= 2 else [])
                if _ints(chunk[1:], "end") != counts:
                    raise SnapshotCorrupt("record counts do not match the end chunk")
                sessions.load(self.sessions)
                for lease_id, ttl, granted_index in self.leases:
                    leases.load(lease_id, ttl, granted_index)
                if self.auth is not None:
                    auth.load(*self.auth)
                self.phase = 4
            case _:
                raise SnapshotCorrupt(f"unexpected chunk {chunk[0]!r:.40}")

    def _lease(self, record: Any) -> list[int]:
        if type(record) is not list or len(record) != 3:
            raise SnapshotCorrupt(f"bad lease {record!r:.80}")
        lease_id, ttl, granted_index = _ints(record, "lease")
        previous = self.leases[-1][0] if self.leases else 0
        if not previous < lease_id <= INT64_MAX or ttl < 1:
            raise SnapshotCorrupt(f"lease out of order or out of range: {record!r:.80}")
        return record

    def _load_columns(self, chunk: list[Any], step: int | None) -> Iterator[None]:
        """A FORMAT 5 chunk of records, checked and loaded column by column.

        Every check is a C-level pass over a column (set of types, min/max,
        pairwise order by `map`), so a record costs no Python bytecode of its
        own. The common chunk, single live versions of keys not seen before (a
        store whose keys were written once, or compacted), goes into the store
        in one `MvccStore.load_singles`; any other chunk loads record by record
        with the per-record checks of the older formats, yielding after every
        `step` records as they do (the bulk path is C-level work on one chunk's
        bytes: bounded by the chunk size)."""
        if len(chunk) != 8 or not all(type(column) is list for column in chunk[1:]):
            raise SnapshotCorrupt(f"bad record columns {chunk!r:.80}")
        subs, keys, values, creates, mods, versions, leases = chunk[1:]
        count = len(subs)
        if count == 0 or any(len(column) != count for column in chunk[2:]):
            raise SnapshotCorrupt("record columns of different lengths, or none")
        if not (_all_of_type(keys, bytes) and _all_of_type(values, bytes)):
            raise SnapshotCorrupt("record columns: a key or value is not bytes")
        numbers = (subs, creates, mods, versions, leases)
        if not (_all_of_type(chain(*numbers), int) and min(chain(*numbers)) >= 0
                and max(chain(*numbers)) <= INT64_MAX):
            raise SnapshotCorrupt("record columns: a revision, version or lease is not a uint64")
        kvs = list(map(_new_tuple, repeat(KeyValue), zip(keys, values, creates, mods, versions, leases)))
        if (keys[0] > self.last[0] and max(mods) <= self.revision and min(versions) > 0 and max(subs) == 0
                and all(map(lt, keys, islice(keys, 1, None)))):
            self.store.load_singles(keys, kvs)
            self.last = (keys[-1], mods[-1], 0)
            self.records += count
            return
        per = step or count
        pairs = zip(subs, kvs)
        for _ in range(0, count, per):
            for sub, kv in islice(pairs, per):
                self._load_checked(sub, kv)
            if step is not None:
                yield

    def _load_record(self, record: Any) -> None:
        if type(record) is not list or len(record) != 2 or type(record[0]) is not int:
            raise SnapshotCorrupt(f"bad record {record!r:.80}")
        self._load_checked(record[0], _kv(record[1]))

    def _load_checked(self, sub: int, kv: KeyValue) -> None:
        position = (kv.key, kv.mod_revision, sub)
        if position <= self.last or kv.mod_revision > self.revision:
            raise SnapshotCorrupt(f"record out of order at {position!r:.80}")
        if kv.key != self.last[0] and kv.version == 0:
            raise SnapshotCorrupt(f"history of {kv.key!r:.40} starts with a tombstone")
        self.store.load(kv.key, kv.mod_revision, sub, kv)
        self.last = position
        self.records += 1


def _all_of_type(column: Iterable[Any], kind: type) -> bool:
    """Every element's type is exactly `kind` (a bool is not an int here)."""
    return set(map(type, column)) <= {kind}


def _records(obj: Any) -> list[Any]:
    if type(obj) is not list:
        raise SnapshotCorrupt("records: expected an array")
    return obj


def _kv(obj: Any) -> Any:
    try:
        return kv_from_fields(obj)
    except KvError as error:
        raise SnapshotCorrupt(str(error)) from None


def _session(record: Any) -> Session:
    if type(record) is not list or len(record) != 4:
        raise SnapshotCorrupt(f"bad session {record!r:.80}")
    client_id, last_seq, last_index = _ints(record[:3], "session")
    try:
        result = None if record[3] is None else result_from_fields(record[3])
    except KvError as error:
        raise SnapshotCorrupt(f"session {client_id}: {error}") from None
    return Session(client_id, last_seq, last_index, result)


def _alarms(chunk: list[Any]) -> list[AlarmMember]:
    if len(chunk) != 2:
        raise SnapshotCorrupt("bad alarms chunk")
    out: list[AlarmMember] = []
    for record in _records(chunk[1]):
        if type(record) is not list or len(record) != 2:
            raise SnapshotCorrupt(f"bad alarm {record!r:.80}")
        member_id, kind = _ints(record, "alarm")
        if kind not in {int(t) for t in AlarmType} or kind == AlarmType.NONE:
            raise SnapshotCorrupt(f"unknown alarm type {kind}")
        alarm = AlarmMember(member_id, AlarmType(kind))
        if out and alarm <= out[-1]:
            raise SnapshotCorrupt(f"alarms out of order at {record!r:.80}")
        out.append(alarm)
    return out


def _auth(chunk: list[Any]) -> tuple[bool, int, list[User], list[Role]]:
    """The auth chunk's state, checked: names ascending and unique, roles of
    a user sorted, permissions well-typed."""
    if len(chunk) != 5 or type(chunk[1]) is not bool or type(chunk[2]) is not int or chunk[2] < 1:
        raise SnapshotCorrupt(f"bad auth chunk {chunk!r:.80}")
    users = [_user(record) for record in _records(chunk[3])]
    roles = [_role(record) for record in _records(chunk[4])]
    for named in (users, roles):
        names = [item.name for item in named]
        if names != sorted(set(names)):
            raise SnapshotCorrupt("auth: names out of order or repeated")
    return chunk[1], chunk[2], users, roles


def _user(record: Any) -> User:
    if not (type(record) is list and len(record) == 4 and type(record[0]) is str and type(record[1]) is str
            and type(record[2]) is list and all(type(r) is str for r in record[2])
            and record[2] == sorted(set(record[2])) and type(record[3]) is bool):
        raise SnapshotCorrupt(f"bad user {record!r:.80}")
    return User(record[0], record[1], tuple(record[2]), record[3])


def _role(record: Any) -> Role:
    if not (type(record) is list and len(record) == 2 and type(record[0]) is str and type(record[1]) is list):
        raise SnapshotCorrupt(f"bad role {record!r:.80}")
    perms = []
    for perm in record[1]:
        if not (type(perm) is list and len(perm) == 3 and type(perm[0]) is int
                and perm[0] in PermType._value2member_map_ and type(perm[1]) is bytes and type(perm[2]) is bytes):
            raise SnapshotCorrupt(f"bad permission {perm!r:.80}")
        perms.append(Permission(PermType(perm[0]), perm[1], perm[2]))
    return Role(record[0], tuple(perms))
