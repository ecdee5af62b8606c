"""The replicated state machine the node applies committed log entries to.

Theory of operation
-------------------
`apply(index, data)` is called once per committed entry that carries a command,
in log order (`apply_empty(index)` for entries that carry none: a leader's
no-op, a configuration change), and returns the command's result. It is
deterministic: no clock, no I/O, no randomness, no iteration over hash order,
so every replica that applies the same entries holds the same state and
produces byte-identical snapshots.

Command bytes come from clients, so `apply` never raises because of them: a
malformed or failing command yields a `KvError` as its result, with nothing
applied. It raises only when its own invariants break (a bug: fail stop).

Each applied index first expires idle client sessions, then decodes and checks
the command (shape and `Limits`), consults the session table (exactly-once:
see `sessions`), and runs the request against the MVCC store (see `mvcc`,
`txn`). Reads can also be served without a log entry (`read`, `query`, `get`):
serializable, from the state applied so far.

Leases (see `lease_table`): `LeaseGrant`, `LeaseRevoke` and the leader's
`LeaseExpire` are log commands; a revoke or an expiry deletes every attached key
in one revision. Keepalives and TTL queries need a clock, so the leader's node
answers them (`lease`, `lease_ids` give it the replicated half); applied through
the log they are refused.

Alarms (see `alarm_table`, cluster/kv/alarms.py): `Alarm` commands raise and
clear them; while one is raised, commands are refused as etcd's capped (NOSPACE)
and corrupt (CORRUPT) appliers refuse them, at apply time and for reads.

Auth (see `auth_store`, `authorization`): the auth requests of
cluster/kv/auth.py are log commands too (the read-only ones are also served by
`query`); while auth is enabled every command is checked, at apply time,
against the auth state of that entry for the user it names (`Command.user`),
and so are the reads of `query`/`read`. With auth disabled that costs one
attribute check per command. Auth changes the node must act on (issued simple
tokens, users whose tokens die, enable/disable) wait in `drain_auth_events`.
"""
from __future__ import annotations

from collections.abc import Generator, Iterable, Iterator

from cluster.kv.alarms import Alarm, AlarmMember
from cluster.kv.auth import AUTH_REQUESTS
from cluster.kv.codec import Command, decode_command
from cluster.kv.errors import Compacted, FutureRevision, InvalidCommand, KvError, LeaseNotFound
from cluster.kv.keyvalue import KeyValue
from cluster.kv.limits import Limits, check_request
from cluster.kv.requests import (
    LEASE_QUERIES,
    AutoCompact,
    CloseSession,
    Command,
    Compact,
    DeleteRange,
    LeaseExpire,
    LeaseGrant,
    LeaseRevoke,
    OpenSession,
    Put,
    Range,
    Request,
    Txn,
    is_read_only,
)
from cluster.kv.results import (
    CompactResponse, LeaseGrantResponse, LeaseRevokeResponse, PutResponse, Result, SessionClosed, SessionOpened,
)
from node.statemachine import digest
from node.statemachine.alarm_table import AlarmTable
from node.statemachine.auth_store import AuthEvent, AuthStore
from node.statemachine.authorization import authorize, authorize_op
from node.statemachine.events import EventSlice, read_events
from node.statemachine.lease_table import Lease, LeaseEvent, LeaseTable
from node.statemachine.mvcc import MvccStore
from node.statemachine.sessions import SessionTable
from node.statemachine.snapshot_stream import DEFAULT_CHUNK_BYTES, load_snapshot_steps, run_steps, stream_snapshot
from node.statemachine.txn import run_read, run_write


class StateMachine:
    """The etcd-style MVCC key-value store, the client session table and the leases."""

    def __init__(self, limits: Limits = Limits()) -> None:
        self.limits = limits
        self.applied_index = 0
        self._store = MvccStore()
        self._sessions = SessionTable(limits.max_sessions, limits.session_ttl_entries)
        self._leases = LeaseTable(limits.max_leases)
        self._auth = AuthStore()
        self._alarms = AlarmTable()

    @property
    def revision(self) -> int:
        return self._store.revision

    @property
    def compact_revision(self) -> int:
        return self._store.compact_revision

    @property
    def key_count(self) -> int:
        """Keys with retained history, live or deleted-not-yet-compacted (/metrics)."""
        return len(self._store)

    @property
    def size_bytes(self) -> int:
        """The store's accounted size (see `MvccStore.size_bytes`): what the space
        quota ([maintenance] quota_bytes) is checked against."""
        return self._store.size_bytes

    @property
    def auth(self) -> AuthStore:
        """The auth state as applied so far (read it; never change it)."""
        return self._auth

    @property
    def alarms(self) -> tuple[AlarmMember, ...]:
        """The raised alarms, ascending (member, type)."""
        return tuple(self._alarms)

    def clear_alarms(self) -> None:
        """Forget every raised alarm, outside the log: only for a state that starts a
        NEW cluster (node/backup/restore.py), whose members are not the ones the
        alarms named."""
        self._alarms.load(())

    # --- the log ----------------------------------------------------------------

    def apply(self, index: int, data: bytes, decoded: Command | None = None) -> Result:
        """Apply the command of committed entry `index`; return its result.
        `decoded`: `data` decoded already (the leader's router did), or None."""
        self._advance(index)
        try:
            command = decode_command(data) if decoded is None else decoded
            request = command.request
            check_request(request, self.limits)
        except KvError as error:
            return error
        if (type(request) is Put and command.client_id and not (
                request.lease or request.ignore_value or request.ignore_lease)
                and not self._auth.enabled and not self._alarms.any):
            return self._apply_plain_put(index, command, request)
        return self._apply_command(index, command)

    def _apply_plain_put(self, index: int, command: Command, put: Put) -> Result:
        """`_apply_command` for the command nearly every entry of a write load is: a
        session's put with no lease and nothing kept, auth off, no alarm raised. The
        same rules in the same order (the session's retry cache, one write
        transaction, the previous version's lease let go, the result cached), without
        the general dispatch (~2.5% of an apply alone; with decode_command's fast path
        for the same command, 6.05 -> 5.2 us per put: docs/performance.md section 12).
        tests/statemachine/test_plain_put.py runs both paths side by side."""
        sessions = self._sessions
        try:
            cached = sessions.cached(command.client_id, command.seq, index)
        except KvError as error:
            return error
        if cached is not None:
            return cached
        store = self._store
        store.begin_write()
        key = put.key
        prev = store.put(key, put.value, 0)
        if prev is not None and prev.lease:
            self._leases.detach(prev.lease, key)
        store.end_write()
        result = PutResponse(store.revision, prev if put.prev_kv else None)
        sessions.record(command.client_id, command.seq, index, result)
        return result

    def apply_empty(self, index: int) -> None:
        """Entry `index` is committed but carries no command."""
        self._advance(index)

    def _advance(self, index: int) -> None:
        assert index > self.applied_index, f"apply {index} after {self.applied_index}"
        self.applied_index = index
        self._sessions.expire(index)

    def _apply_command(self, index: int, command: Command) -> Result:
        """The session rules (see `sessions`), then the request itself."""
        request, client_id = command.request, command.client_id
        if isinstance(request, (Range, OpenSession, CloseSession)) or not client_id:
            # Reads are not cached (re-running one is harmless); opening and
            # closing sessions are not deduplicated.
            self._sessions.touch(client_id, index)
            return self._execute(index, request, command.user)
        try:
            cached = self._sessions.cached(client_id, command.seq, index)
        except KvError as error:
            return error
        if cached is not None:
            return cached
        result = self._execute(index, request, command.user)
        self._sessions.record(client_id, command.seq, index, result)
        return result

    def _execute(self, index: int, request: Request, user: str) -> Result:
        try:
            if self._auth.enabled:
                authorize(self._auth, self._leases, user, request)
            if self._alarms.any:
                self._alarms.check(request)
            match request:
                case Put() | DeleteRange() | Txn():
                    return run_write(self._store, self._leases, request)
                case Range():
                    return run_read(self._store, request)
                case Compact(revision):
                    return self._compact(revision)
                case AutoCompact(revision):
                    if revision <= self._store.compact_revision:  # done already: etcd's ErrCompacted = success
                        return CompactResponse(self._store.revision, self._store.compact_revision)
                    return self._compact(revision)
                case OpenSession():
                    return SessionOpened(self._sessions.open(index))
                case CloseSession(client_id):
                    return SessionClosed(client_id, self._sessions.close(client_id))
                case LeaseGrant(ttl, lease_id):
                    granted = self._leases.grant(index, lease_id, ttl)
                    return LeaseGrantResponse(self._store.revision, granted.id, ttl)
                case LeaseRevoke(lease_id):
                    return self._revoke(lease_id, None)
                case LeaseExpire(lease_id, granted_index):
                    return self._revoke(lease_id, granted_index)
                case _ if isinstance(request, LEASE_QUERIES):
                    raise InvalidCommand(f"{type(request).__name__} is answered by the leader, not the log")
                case Alarm():
                    return self._alarms.apply(request, self._store.revision)
                case _ if isinstance(request, AUTH_REQUESTS):
                    return self._auth.apply(user, request, self._store.revision)  # type: ignore[return-value]
        except KvError as error:
            return error
        raise AssertionError(f"not a request: {request!r}")

    def _revoke(self, lease_id: int, granted_index: int | None) -> LeaseRevokeResponse:
        """Delete the lease and all its keys in one revision (none if it had no
        live keys). An expiry applies only to the grant it was decided for."""
        lease = self._leases.get(lease_id)
        if lease is None or (granted_index is not None and lease.granted_index != granted_index):
            raise LeaseNotFound(lease_id)
        store = self._store
        store.begin_write()
        deleted = sum(store.delete(key) is not None for key in sorted(lease.keys))
        store.end_write()
        self._leases.remove(lease_id)
        return LeaseRevokeResponse(store.revision, deleted)

    # --- leases for the node (which keeps their clocks) ---------------------------------

    def lease(self, lease_id: int) -> Lease | None:
        """The lease `lease_id` as applied so far (do not mutate)."""
        return self._leases.get(lease_id)

    def leases(self) -> list[Lease]:
        """Every lease, ascending id."""
        return list(self._leases)

    def drain_lease_events(self) -> list[LeaseEvent]:
        """Grants ("grant", id, ttl, granted_index) and removals ("remove", id,
        0, 0) applied since the last call, in order."""
        return self._leases.drain_events()

    def drain_auth_events(self) -> list[AuthEvent]:
        """Auth changes applied since the last call, in order, for the node's
        tokens: ("issue", token, user, issued_ms) for an AuthIssue;
        ("user-changed", user) when a user is deleted or its password changed;
        ("enabled",) and ("disabled",)."""
        return self._auth.drain_events()

    def _compact(self, revision: int) -> CompactResponse:
        store = self._store
        if revision <= store.compact_revision:
            raise Compacted(revision, store.compact_revision)
        if revision > store.revision:
            raise FutureRevision(revision, store.revision)
        store.compact(revision)
        return CompactResponse(store.revision, revision)

    # --- serializable reads (no log entry) -----------------------------------------

    def read(self, request: Request, user: str = "") -> Result:
        """Serve a read-only request (`is_read_only`: a Range, a Txn of reads,
        an auth read) from the applied state, possibly stale, for `user`
        (checked while auth is enabled, as etcd checks its reads)."""
        try:
            if not is_read_only(request):
                raise InvalidCommand("only reads can be served without the log")
            check_request(request, self.limits)
            if type(request) is not Range and type(request) is not Txn:  # an auth read (AUTH_READS)
                return self._auth.read(user, request, self._store.revision)  # type: ignore[return-value]
            if self._auth.enabled:
                authorize_op(self._auth, None, user, request)  # type: ignore[arg-type]
            if self._alarms.any:
                self._alarms.check(request)
            return run_read(self._store, request)  # type: ignore[arg-type]
        except KvError as error:
            return error

    def query(self, data: bytes, decoded: Command | None = None) -> Result:
        """`read` for command bytes, for the user the command names (`decoded`:
        those bytes decoded already, or None)."""
        if decoded is not None:
            return self.read(decoded.request, decoded.user)
        try:
            command = decode_command(data)
        except KvError as error:
            return error
        return self.read(command.request, command.user)

    def get(self, key: bytes, revision: int = 0) -> KeyValue | None:
        """The live version of `key` at `revision` (0 = latest); raises
        Compacted or FutureRevision."""
        self._store.check_revision(revision)
        return self._store.get(key) if revision == 0 else self._store.get(key, revision)

    def events(self, start: int, key: bytes, range_end: bytes = b"",
               max_revisions: int = 1000, max_events: int = 1000) -> EventSlice:
        """Watch events in [key, range_end) from revision `start` on, a bounded
        slice (see `events`); raises Compacted if `start` <= the compact revision."""
        return read_events(self._store, start, key, range_end, max_revisions, max_events)

    # --- digests (etcd's Maintenance.HashKV and Hash) ------------------------------------

    def hash_kv(self, revision: int, max_records: int | None = None) -> tuple[int, int, int]:
        """(hash, revision, compact revision) of the key-value history up to
        `revision` (0: the current one); see node/statemachine/digest.py."""
        return digest.hash_kv(self._store, revision, max_records)

    def history_records(self) -> int:
        """How many key-value records the store retains (one per key and revision,
        tombstones included): `snapshot status`'s TOTAL KEYS."""
        return sum(len(mains) for _, mains, _, _ in self._store.records())

    def hash_all(self) -> tuple[int, int]:
        """(hash, revision) of the whole replicated state; see digest.py."""
        return digest.hash_all(self._store, self._leases, self._auth, self._alarms)

    # --- snapshots -------------------------------------------------------------------

    def snapshot(self, chunk_bytes: int = DEFAULT_CHUNK_BYTES) -> Iterator[bytes]:
        """The whole state as msgpack chunks (see `snapshot` for the format)."""
        return stream_snapshot(self._store, self._sessions, self._leases, self._auth, self._alarms,
                               self.applied_index, chunk_bytes)

    @classmethod
    def restore(cls, chunks: Iterable[bytes], limits: Limits = Limits()) -> StateMachine:
        """A state machine holding the state of a snapshot stream; raises
        SnapshotCorrupt if the stream is bad or truncated."""
        return run_steps(cls.restore_steps(chunks, limits))

    @classmethod
    def restore_steps(cls, chunks: Iterable[bytes], limits: Limits = Limits(),
                      step: int | None = None) -> Generator[None, None, StateMachine]:
        """`restore` in bounded pieces (see snapshot_stream.load_snapshot_steps):
        each `next` does at most `step` records' worth of work; the generator
        returns the state machine. Nothing is shared with any other machine, so
        dropping the generator half way drops the partial state."""
        machine = cls(limits)
        machine.applied_index = yield from load_snapshot_steps(
            chunks, machine._store, machine._sessions, machine._leases, machine._auth, machine._alarms, step)
        machine._leases.drain_events()
        return machine

    def teardown_steps(self, step: int) -> Iterator[None]:
        """Empty a machine nobody reads any more (one a snapshot install replaced),
        `step` keys at a time (see MvccStore.teardown_steps). The lease table's key
        sets go first: the store still holds those keys, so that frees none."""
        self._leases = LeaseTable(self.limits.max_leases)
        self._sessions = SessionTable(self.limits.max_sessions, self.limits.session_ttl_entries)
        yield from self._store.teardown_steps(step)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, StateMachine):
            return NotImplemented
        return (
            self.applied_index == other.applied_index
            and self._store == other._store
            and self._sessions == other._sessions
            and self._leases == other._leases
            and self._auth == other._auth
            and self._alarms == other._alarms
        )

    __hash__ = None  # type: ignore[assignment]  # mutable
