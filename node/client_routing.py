"""Client requests, from decoded frame to reply: routing, read batching and
proposal bookkeeping.

* Writes become proposals; the reply is made when the entry is applied
  (`answer_write`, from the Ready's apply step) -- or a redirect if another
  leader's entry took its index.
* Linearizable reads of one drain share one ReadIndex request (`_register_reads`,
  as etcd's server batches them) and are served once the state machine has
  applied the read index (`serve_reads`); serializable reads are answered at once
  from this replica.
* Lease queries go to the leader's clock (node/lease_expiry.py); status, members,
  conf changes, leadership transfers, fault injection and watches are answered or
  handed on here too, so every request has one way in.
* Auth (cluster/kv/auth.py says who checks what): while auth is on, every
  request's token is resolved to a user first (node/auth_gate.py); a command
  acts for that user (spliced in with `with_user`; naming another is refused),
  maintenance and fault injection need root, a watch needs READ on its range, a
  lease query any valid token. Password requests go through the password worker
  (node/password_requests.py). With auth off the only cost is one attribute check
  (`AuthGate.enabled`) per request; tokens are then ignored, as in etcd.

Replies go to the outbox (node/outbox.py) and leave at the end of the turn.
"""
from __future__ import annotations

import os
import struct
from collections.abc import Callable

from cluster.kv import (
    LEASE_QUERIES, AutoCompact, Command, KvError, LeaseExpire, LeaseLeases, LeaseLeasesResponse, Result, decode_command,
    encode_command, encode_result, is_read_only,
)
from cluster.kv.alarms import Alarm
from cluster.kv.auth import AUTH_REQUESTS, AuthIssue, Authenticate, UserAdd, UserChangePassword
from cluster.kv.codec import with_user
from cluster.kv.errors import AuthError, InvalidAuthToken, LimitExceeded, NoSpace
from cluster.protocol import (
    BadRequest, ClientRequest, ConfChangeRequest, DropTrafficRequest, ErrorCode, ErrorReply, HashRequest, JointChangeRequest,
    KvRequest,
    MembersReply, MembersRequest, ProtocolError, Reply, SnapshotFileRequest, SnapshotReadRequest, StatusReply,
    StatusRequest,
    TransferRequest, decode_requests, peek_request_id,
)
from cluster.protocol import WatchCancelRequest, WatchCreateRequest, WatchProgressRequest
from cluster.spec import ClusterSpec
from node import address_book
from node.answers import Answers
from node.auth_gate import AuthGate
from node.dropped_frames import DroppedFrames
from node.eventlog import EventLog
from node.fault_injection import FaultInjection
from node.local_disk import LocalDisk
from node.lease_expiry import LeaseExpiry
from node.member_status import MemberStatus
from node.outbox import Outbox
from node.password_requests import PasswordRequests
from node.raft import (
    Entry, EntryKind, InvalidRequest, LeadershipTransferInProgress, NotLeader, ProposalDropped, RaftCore, Role,
    UncommittedBytesExceeded,
)
from node.raft.errors import InvalidConfChange
from node.replica import Replica
from node.snapshot_reads import SnapshotReads, SnapshotUnavailable
from node.statemachine import TooLargeToHash
from node.requests import PendingRequests, Waiter
from node.space_quota import SpaceQuota
from node.transport import Transport
from node.watches import WatchHub


#: Membership, leadership and maintenance requests (`_on_admin`).
_ADMIN = (MembersRequest, ConfChangeRequest, JointChangeRequest, TransferRequest, HashRequest, SnapshotFileRequest, SnapshotReadRequest)
#: KV requests that do not take the plain read/write path (`_on_routed`): one set
#: lookup on the hot path instead of an isinstance chain.
_ROUTED = frozenset((*LEASE_QUERIES, LeaseExpire, AutoCompact, *AUTH_REQUESTS, Alarm))
_WATCH_REQUESTS = (WatchCreateRequest, WatchCancelRequest, WatchProgressRequest)
#: Why drop-traffic is refused on a cluster whose config does not allow it.
FAULTS_OFF = "fault injection is not enabled in this cluster's config ([faults] injection = true)"


class ClientRouter:
    def __init__(self, spec: ClusterSpec, node_id: int, core: RaftCore, replica: Replica,
                 requests: PendingRequests, outbox: Outbox, answers: Answers, leases: LeaseExpiry,
                 views: MemberStatus, faults: FaultInjection, watches: WatchHub, transport: Transport,
                 dropped: DroppedFrames, clock: Callable[[], float], log: EventLog, disk: LocalDisk,
                 gate: AuthGate, passwords: Callable[[ClientRouter], PasswordRequests],
                 quota: SpaceQuota | None = None) -> None:
        """`passwords`: makes the password-request handler, given this router (it
        proposes through `propose_command`). `quota`: the space quota's front door
        (node/space_quota.py); None or a zero quota: no check."""
        self.id = node_id
        self._max_batch = spec.limits.max_batch
        self._max_message_bytes = spec.limits.max_message_bytes
        self._max_request_bytes = spec.limits.max_request_bytes
        self._quota = quota if quota is not None and quota.quota else None
        self._request_timeout = spec.timing.request_timeout_ms / 1000
        self._core = core
        self._replica = replica
        self.requests = requests
        self._reply = outbox.reply
        self._answers = answers
        self._leases = leases
        self._views = views
        self._faults = faults
        self._watches = watches
        self._transport = transport
        self._drop = dropped.drop
        self._clock = clock
        self._log = log
        self._disk = disk
        self._snapshot_reads = SnapshotReads(lambda index: self._disk.storage.snapshot_file(index), spec.cluster_id,
                                             spec.limits.max_message_bytes)
        self._ctx_prefix = os.urandom(8)  # ReadIndex contexts unique across restarts
        self._ctx_counter = 0
        #: proposals the core refused (leadership transfer, uncommitted bytes) and
        #: writes a snapshot replaced: etcd's proposals_failed_total (/metrics)
        self.proposals_failed = 0
        self._turn_reads: list[Waiter] = []  # linearizable reads of the drain in progress
        #: barriers whose read index is applied, run after the auth state is synced
        #: (`run_deferred`: the core may not be called during a Ready)
        self.deferred: list[Callable[[], None]] = []
        self._fault_injection = spec.faults.injection
        self._simple_tokens = spec.auth.token == "simple"
        self.gate = gate
        self._refusals = gate.refusals
        self._passwords = passwords(self)
        #: while set, KV requests are answered with this instead of served (a member
        #: whose start-up corruption check runs or failed: node/corruption_check.py)
        self.refusing: Callable[[int], Reply] | None = None

    # -- requests in -------------------------------------------------------------------

    def drain(self) -> None:
        """Up to `max_batch` frames from the client socket, then one ReadIndex
        request for the linearizable reads among them."""
        transport = self._transport
        answers = self._answers
        for frames in transport.receive_batch(transport.client_router, self._max_batch):
            if len(frames) != 2:
                self._drop("client-frame-count", f"{len(frames)} frames")
                continue
            identity, data = frames
            try:
                requests = decode_requests(data, self._max_message_bytes)
            except ProtocolError as error:
                self._drop("client-malformed", str(error))
                request_id = peek_request_id(data, self._max_message_bytes)
                if request_id is not None:
                    self._reply(identity, answers.error(request_id, ErrorCode.INVALID_REQUEST, str(error)))
                continue
            for request in requests:
                if isinstance(request, BadRequest):
                    self._drop("client-malformed", request.reason)
                    if request.request_id is not None:
                        self._reply(identity, answers.error(request.request_id, ErrorCode.INVALID_REQUEST,
                                                            request.reason))
                else:
                    self._on_request(identity, request)
        self._register_reads()

    def _on_request(self, identity: bytes, request: ClientRequest) -> None:
        if type(request) is KvRequest:  # the common case first
            self._on_kv(identity, request)
            return
        if isinstance(request, StatusRequest):  # open to all, as etcd's Status
            self._reply(identity, StatusReply(request.request_id, self.id, self._views.status()))
            return
        try:
            if isinstance(request, DropTrafficRequest):
                if self.gate.enabled:  # strangers learn nothing of the config
                    self.gate.require_root(request.token)
                if not self._fault_injection:
                    self._refusals.count("fault_injection_refused", "drop-traffic")
                    self._reply(identity, self._answers.error(request.request_id, ErrorCode.INVALID_REQUEST,
                                                              FAULTS_OFF))
                    return
                self._reply(identity, self._faults.drop_traffic(request))
            elif isinstance(request, _ADMIN):  # one check on the KV path for every rare request kind
                if self.gate.enabled and not isinstance(request, MembersRequest):
                    self.gate.require_root(request.token)  # etcd: IsAdminPermitted
                self._on_admin(identity, request)
            elif isinstance(request, _WATCH_REQUESTS):
                if self.gate.enabled and isinstance(request, WatchCreateRequest):
                    self.gate.check_read(request.token, request.key, request.range_end)
                self._watches.on_request(identity, request, self._replica.sm, self._clock())
        except AuthError as error:
            self.refuse_auth(identity, request.request_id, error, type(request).__name__)

    def refuse_auth(self, identity: bytes, request_id: int, error: AuthError, what: str) -> None:
        """Count the refusal (a rate-limited log line) and answer it with the AuthError."""
        self._refusals.count_error(error, what)
        self._reply(identity, ErrorReply(request_id, self.id, ErrorCode.UNAUTHORIZED, str(error),
                                         kv_error=encode_result(error)))

    def _snapshot_file(self, request: SnapshotFileRequest) -> Reply:
        ref = self._disk.snapshot_covering(request.min_index)
        if ref is None:
            return self._answers.error(request.request_id, ErrorCode.BUSY,
                                       f"writing a snapshot covering index {request.min_index}")
        return StatusReply(request.request_id, self.id, {"path": str(ref.path), "index": ref.meta.index,
                                                         "term": ref.meta.term, "size": ref.file_size})

    def _snapshot_read(self, request: SnapshotReadRequest) -> Reply:
        try:
            body = self._snapshot_reads.read(request, self._clock())
        except SnapshotUnavailable as error:
            return self._answers.error(request.request_id, ErrorCode.INVALID_REQUEST, str(error))
        return StatusReply(request.request_id, self.id, body)

    def _hash(self, request: HashRequest) -> Reply:
        """This replica's digest, from its local state (node/statemachine/digest.py)."""
        sm = self._replica.sm
        try:
            if request.whole:
                digest, revision = sm.hash_all()
                compact = sm.compact_revision
            else:
                digest, revision, compact = sm.hash_kv(request.revision)
        except KvError as error:  # a compacted or future revision
            return self._answers.result(request.request_id, error)
        except TooLargeToHash as error:
            return self._answers.error(request.request_id, ErrorCode.INVALID_REQUEST, str(error))
        return StatusReply(request.request_id, self.id,
                           {"hash": digest, "revision": revision, "compact_revision": compact})

    def refuse_kv(self, reply: Callable[[int], Reply] | None) -> None:
        """Answer KV requests with `reply(request_id)` from now on (None: serve them again)."""
        self.refusing = reply

    def _on_kv(self, identity: bytes, request: KvRequest) -> None:
        rid = request.request_id
        answers = self._answers
        if self.refusing is not None:
            self._reply(identity, self.refusing(rid))
            return
        try:
            command = decode_command(request.command)
        except KvError as error:
            self._reply(identity, answers.error(rid, ErrorCode.INVALID_REQUEST, str(error)))
            return
        if type(command.request) in _ROUTED:
            self._on_routed(identity, request, command)
            return
        data = request.command
        if len(data) > self._max_request_bytes:  # etcd's ErrRequestTooLarge, before proposing
            self._reply(identity, answers.result(rid, LimitExceeded("max_request_bytes", len(data),
                                                                    self._max_request_bytes)))
            return
        if self._quota is not None and self._quota.refuses(command.request, len(data)):
            self._reply(identity, answers.result(rid, NoSpace()))  # etcd's quotaKVServer
            return
        decoded: Command | None = command
        if self.gate.enabled or command.user:
            try:
                acting = self._acting(request, command)
            except AuthError as error:
                self.refuse_auth(identity, rid, error, type(command.request).__name__)
                return
            if acting is not data:
                data, decoded = acting, None
        self._serve(identity, rid, data, is_read_only(command.request), request.serializable, decoded)

    def _serve(self, identity: bytes, rid: int, data: bytes, read_only: bool, serializable: bool,
               decoded: Command | None = None) -> None:
        """A read (from this replica, or linearizable) or a write (a proposal).
        `decoded`: `data` decoded, if the caller has it (then nothing decodes it again)."""
        if read_only and serializable:
            self._reply(identity, self._answers.result(rid, self._replica.sm.query(data, decoded), serializable=True))
            return
        requests = self.requests
        if len(requests) + len(self._turn_reads) >= requests.limit:
            self._reply(identity, self._answers.error(rid, ErrorCode.TOO_MANY_REQUESTS,
                                                      f"{len(requests)} requests already waiting"))
            return
        waiter = Waiter(identity, rid, data, self._clock() + self._request_timeout, decoded=decoded)
        if read_only:
            self._turn_reads.append(waiter)  # registered together at the end of the drain
        else:
            self._propose(waiter)

    def _acting(self, request: KvRequest, command: Command) -> bytes:
        """The command bytes to execute: acting for the user `request.token`
        proves. Raises AuthError (InvalidAuthToken for a command naming a user its
        token does not prove)."""
        if not self.gate.enabled:
            # Tokens are ignored; a named user is dropped, so that auth turned on
            # before this entry applies cannot let it act as that user unproven.
            return encode_command(command.request, command.client_id, command.seq)
        user = self.gate.user_of(request.token)
        if command.user:
            if command.user != user:
                raise InvalidAuthToken()
            return request.command
        return with_user(request.command, user) if user else request.command

    def _on_routed(self, identity: bytes, request: KvRequest, command: Command) -> None:
        """Lease queries, LeaseExpire and the auth requests."""
        rid = request.request_id
        answers = self._answers
        body = command.request
        if isinstance(body, (LeaseExpire, AutoCompact)):
            self._reply(identity, answers.error(rid, ErrorCode.INVALID_REQUEST,
                                                f"{type(body).__name__} is proposed by the leader only"))
            return
        if isinstance(body, AuthIssue):
            self._reply(identity, answers.error(rid, ErrorCode.INVALID_REQUEST,
                                                "AuthIssue is proposed by a node only (send Authenticate)"))
            return
        if isinstance(body, UserAdd) and body.no_password and (body.password or body.hashed):
            # (proposed as is otherwise: a clear password must never reach the log)
            self._reply(identity, answers.error(rid, ErrorCode.INVALID_REQUEST,
                                                "a user added with no_password takes no password"))
            return
        try:
            if isinstance(body, Alarm):
                # etcd's admin check, here (the state machine does not check alarms:
                # a node's own NOSPACE/CORRUPT proposals carry no user).
                if self.gate.enabled:
                    self.gate.require_root(request.token)
                self._serve(identity, rid, encode_command(body, command.client_id, command.seq), False, False)
                return
            if isinstance(body, Authenticate):
                # Linearizable, as etcd's (a raft request there): the password is checked
                # against the state a read now would see, so an Authenticate right after
                # an acknowledged AuthEnable or UserAdd on any member finds them.
                if self.requests.full():
                    self._reply(identity, answers.error(rid, ErrorCode.TOO_MANY_REQUESTS,
                                                        f"{len(self.requests)} requests already waiting"))
                    return
                token = request.token
                self._turn_reads.append(Waiter(identity, rid, b"", self._clock() + self._request_timeout,
                                               lambda: self._authenticate(identity, rid, token, body)))
                return
            if isinstance(body, LEASE_QUERIES):
                if self.gate.enabled:
                    self.gate.require_user(request.token)
                self._lease_query(identity, request, body)
                return
            data = self._acting(request, command) if self.gate.enabled or command.user else request.command
            # Every password is hashed here, the empty one too (as etcd's bcrypt of
            # ""); a `hashed` sent by a client is replaced, never trusted.
            if isinstance(body, UserChangePassword) or (isinstance(body, UserAdd) and not body.no_password):
                acting = ""
                if self.gate.enabled:
                    acting = command.user or self.gate.user_of(request.token)
                    self._replica.sm.auth.check_admin(acting)  # before the costly hash
                if self._core.role is not Role.LEADER:
                    self._reply(identity, answers.redirect(rid, self._core.lead))
                    return
                self._passwords.hash_then_propose(identity, rid, body, command.client_id, command.seq, acting)
                return
        except AuthError as error:
            self.refuse_auth(identity, rid, error, type(body).__name__)
            return
        self._serve(identity, rid, data, is_read_only(body), request.serializable)

    def _authenticate(self, identity: bytes, rid: int, token: str, body: Authenticate) -> None:
        """Authenticate's second half, once this member applied its read index."""
        if self.gate.enabled and self._simple_tokens and self._core.role is not Role.LEADER:
            # The token is issued through the log: check the password where it is proposed.
            self._reply(identity, self._answers.redirect(rid, self._core.lead))
            return
        self._passwords.authenticate(identity, rid, token, body)

    def run_deferred(self) -> None:
        """The barriers `serve_reads` found ready (from the actor loop, outside any Ready)."""
        deferred, self.deferred = self.deferred, []
        for then in deferred:
            then()

    def _lease_query(self, identity: bytes, request: KvRequest, body: object) -> None:
        rid = request.request_id
        if request.serializable and isinstance(body, LeaseLeases):
            # This replica's lease ids, possibly stale (e.g. to compare replicas).
            sm = self._replica.sm
            listing = LeaseLeasesResponse(sm.revision, tuple(lease.id for lease in sm.leases()))
            self._reply(identity, self._answers.result(rid, listing, serializable=True))
            return
        self._reply(identity, self._leases.query(rid, body))

    def propose_command(self, identity: bytes, rid: int, data: bytes) -> None:
        """Propose `data` for a client and answer it once applied (the password
        requests' second half)."""
        if self.requests.full():
            self._reply(identity, self._answers.error(rid, ErrorCode.TOO_MANY_REQUESTS,
                                                      f"{len(self.requests)} requests already waiting"))
            return
        self._propose(Waiter(identity, rid, data, self._clock() + self._request_timeout))

    def _register_reads(self) -> None:
        """One ReadIndex request for every linearizable read of this drain (as etcd's
        server batches them): the core's per-read work is per batch."""
        waiters, self._turn_reads = self._turn_reads, []
        if not waiters:
            return
        self._ctx_counter += 1
        ctx = self._ctx_prefix + struct.pack(">Q", self._ctx_counter)
        try:
            self._core.read_index(ctx)
        except NotLeader as error:
            for waiter in waiters:
                self._reply(waiter.identity, self._answers.redirect(waiter.request_id, error.leader_hint))
            return
        self.requests.add_reads(ctx, waiters)

    def _propose(self, waiter: Waiter) -> None:
        core = self._core
        answers = self._answers
        try:
            index = core.propose(waiter.command)
        except NotLeader as error:  # a redirect, not a failure: the client retries at the leader
            self._reply(waiter.identity, answers.redirect(waiter.request_id, error.leader_hint))
            return
        except LeadershipTransferInProgress as error:
            self.proposals_failed += 1
            self._reply(waiter.identity, answers.error(waiter.request_id, ErrorCode.NO_LEADER_YET, str(error)))
            return
        except UncommittedBytesExceeded as error:
            self.proposals_failed += 1
            self._reply(waiter.identity, answers.error(waiter.request_id, ErrorCode.TOO_MANY_REQUESTS, str(error)))
            return
        self.requests.add_write(index, core.term, waiter)

    # -- membership requests (docs/operations.md, "Changing membership") ----------------

    def _on_admin(self, identity: bytes, request: MembersRequest | ConfChangeRequest | JointChangeRequest
                  | TransferRequest | HashRequest
                  | SnapshotFileRequest | SnapshotReadRequest) -> None:
        if isinstance(request, HashRequest):
            self._reply(identity, self._hash(request))
            return
        if isinstance(request, SnapshotFileRequest):
            self._reply(identity, self._snapshot_file(request))
            return
        if isinstance(request, SnapshotReadRequest):
            self._reply(identity, self._snapshot_read(request))
            return
        rid = request.request_id
        core = self._core
        answers = self._answers
        leader = core.role is Role.LEADER
        if isinstance(request, MembersRequest):
            if request.leader_only and not leader:
                self._reply(identity, answers.redirect(rid, core.lead))
            else:
                self._reply(identity, MembersReply(rid, self.id, self._views.members()))
            return
        if self.requests.full():
            self._reply(identity, answers.error(rid, ErrorCode.TOO_MANY_REQUESTS,
                                                f"{len(self.requests)} requests already waiting"))
            return
        try:
            if isinstance(request, TransferRequest):
                core.transfer_leadership(request.to)
                self._log.info(f"leadership transfer to node {request.to} requested by a client")
                self._reply(identity, StatusReply(rid, self.id, self._views.status()))
                return
            changes = request.changes if isinstance(request, JointChangeRequest) else (request,)
            for change in changes:
                if change.change in ("add-learner", "add-voter") and self._views.was_member(change.node):
                    raise InvalidConfChange(
                        f"node {change.node} was a member before: ids are never reused (a fresh node "
                        f"under a removed id could vote as its old incarnation); add it under a new id")
            index = core.propose_conf_change(address_book.joint_change_for(request)
                                             if isinstance(request, JointChangeRequest)
                                             else address_book.conf_change_for(request))
        except NotLeader as error:
            self._reply(identity, answers.redirect(rid, error.leader_hint))
            return
        except (ProposalDropped, InvalidRequest) as error:
            self._reply(identity, answers.error(rid, address_book.refusal_code(error), str(error)))
            return
        what = (", ".join(f"{c.change} {c.node}" for c in request.changes) if isinstance(request, JointChangeRequest)
                else f"{request.change} of node {request.node}")
        self._log.info(f"proposed {what} at index {index}")
        waiter = Waiter(identity, rid, b"", self._clock() + self._request_timeout)
        self.requests.add_write(index, core.term, waiter)

    # -- outcomes (from the Ready handling) ------------------------------------------------

    def answer_write(self, entry: Entry, result: Result | None) -> None:
        """The entry at `entry.index` was applied with `result`: answer whoever proposed there."""
        found = self.requests.write_applied(entry.index, entry.term)
        if found is None:
            return
        waiter, ours = found
        if ours and entry.kind is EntryKind.CONF_CHANGE:
            self._reply(waiter.identity, MembersReply(waiter.request_id, self.id, self._views.members()))
        elif ours and result is not None:
            self._reply(waiter.identity, self._answers.result(waiter.request_id, result))
        else:
            # Another leader's entry took this index: ours was never applied.
            self._reply(waiter.identity, self._answers.redirect(waiter.request_id, self._core.lead))

    def serve_reads(self) -> None:
        """Answer the reads whose read index the state machine has applied."""
        sm = self._replica.sm
        for waiter in self.requests.reads_ready(sm.applied_index):
            if waiter.then is not None:
                self.deferred.append(waiter.then)
                continue
            self._reply(waiter.identity, self._answers.result(waiter.request_id, sm.query(waiter.command,
                                                                                          waiter.decoded)))

    def reads_lost(self, leader: int) -> None:
        """The role or leader changed: a ReadIndex request still waiting for its
        ReadState was lost with the old leader: tell the client now (a read is
        always safe to retry)."""
        for waiter in self.requests.reads_without_index():
            self._reply(waiter.identity, self._answers.redirect(waiter.request_id, leader))

    def writes_replaced(self, index: int) -> None:
        """A snapshot up to `index` was installed: the writes waiting at or below it
        will never be applied here."""
        for waiter in self.requests.writes_up_to(index):
            self.proposals_failed += 1
            self._reply(waiter.identity, self._answers.error(
                waiter.request_id, ErrorCode.TIMEOUT, "replaced by a snapshot: outcome unknown"))

    def expire(self, now: float) -> None:
        for waiter in self.requests.expired(now):
            self._reply(waiter.identity, self._answers.error(
                waiter.request_id, ErrorCode.TIMEOUT, "no outcome before the deadline: unknown"))

    def shutdown(self) -> None:
        for waiter in self.requests.drain():
            self._reply(waiter.identity, self._answers.error(
                waiter.request_id, ErrorCode.TIMEOUT, "node shutting down: outcome unknown"))
