"""The client protocol: requests and replies between a client and a node, and bytes.

One ZeroMQ frame per message (the node's client socket is a ROUTER; a client
uses a DEALER). Each frame is a msgpack map with string keys:

    request  {"v": 1, "id": request_id, "op": "kv", "cmd": command bytes, "ser": bool}
             {"v": 1, "id": request_id, "op": "status"}
             {"v": 1, "id": request_id, "op": "drop", "peers": [id...], "seconds": s,
              "direction": "both"|"in"|"out"}      (fault injection; replies status)
             {"v": 1, "id": request_id, "op": "members", "leader": bool}
             {"v": 1, "id": request_id, "op": "conf",
              "change": "add-learner"|"add-voter"|"promote"|"remove"|"update",
              "node": id, "peer": address, "client": address,
              "grpc": url, "gateway": url}   (replies members, once applied; grpc/gateway
                                              optional, sent only when set)
             {"v": 1, "id": request_id, "op": "transfer", "to": id}   (replies status)
             {"v": 1, "id": request_id, "op": "snapshot-file", "min": index}
                 (replies status {"path", "index", "term", "size"}: the node's newest
                  committed snapshot file if it covers index, else busy - one is started)
             {"v": 1, "id": request_id, "op": "snapshot-read", "index": index, "off": offset,
              "len": max_bytes}
                 (replies status {"index", "term", "size", "checksum", "offset", "data"}: up
                  to len bytes (at most SNAPSHOT_READ_MAX) of the node's snapshot file at log
                  index `index` from `offset`; `checksum` is the hex SHA-256 in the file's
                  trailer; not-found (invalid-request) once the file is gone: start again)
             {"v": 1, "id": request_id, "op": "hash", "rev": revision, "all": bool}
                 (replies status {"hash", "revision", "compact_revision"}: this replica's
                  digest of its key-value history up to rev (0: now), or with "all" of its
                  whole state; etcd's Maintenance.HashKV and Hash)
    reply    {"v": 1, "id": request_id, "node": node_id, "ok": true, "result": bytes, "ser": bool}
             {"v": 1, "id": request_id, "node": node_id, "ok": true, "status": {...}}
             {"v": 1, "id": request_id, "node": node_id, "ok": true, "members": {...}}
             {"v": 1, "id": request_id, "node": node_id, "ok": false, "code": ErrorCode,
              "reason": str, "leader": leader_id, "leader_client": address,
              "kverr": bytes (optional: a KV API error, encoded as a result)}

Batches: a request frame may instead be a msgpack array of request maps (at
most `MAX_BATCH`), and a reply frame an array of reply maps. A node answers each
request of a batch on its own (a bad element gets its own invalid-request reply,
the others go on) and packs the replies to one client that are ready in the same
loop turn into one frame. A pipelined client thus costs one ZeroMQ message per
turn instead of one per request, which is where per-message time goes (a send
wakes ZeroMQ's I/O thread: two system calls and a thread switch). Clients must
accept both shapes (`decode_replies`).

`cmd` is a key-value command in the KV API's format (`cluster.kv.codec`):
exactly the bytes that become the log entry, carrying the client session
(client_id, seq) that makes a retried write apply once. `result` is the state
machine's result bytes. Errors are typed by a stable code (`ErrorCode`).

Decoding never raises anything but `ProtocolError`: a node reads these bytes
from anyone.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any, Union, cast

import msgpack

from cluster.kv import KeyValue
from cluster.slots import slot_constructor

VERSION = 1
#: Most requests a client may pack into one frame.
MAX_BATCH = 1024
#: Upper bound on a request id: ids are uint64 on the wire.
MAX_ID = 2**64 - 1
#: Longest auth token accepted (a JWT with an RSA-4096 signature fits).
MAX_TOKEN = 4096


class ProtocolError(ValueError):
    """Bytes that are not a valid message of this protocol."""


class ErrorCode(str, Enum):
    """Stable error codes. Which are safe to retry is the client's business:
    NOT_LEADER, NO_LEADER_YET and TOO_MANY_REQUESTS say nothing happened; TIMEOUT
    says the outcome is unknown (a write retried with the same (client_id, seq) is
    applied at most once)."""

    NOT_LEADER = "not-leader"
    NO_LEADER_YET = "no-leader-yet"
    TIMEOUT = "timeout"
    TOO_MANY_REQUESTS = "too-many-requests"
    INVALID_REQUEST = "invalid-request"
    COMPACTED = "compacted"
    SESSION_EXPIRED = "session-expired"
    LEASE_NOT_FOUND = "lease-not-found"  # never granted, revoked or expired
    WATCH_CANCELLED = "watch-cancelled"  # a watch the node ended: resume from the revision given
    #: membership: the leader cannot take the change now (another is pending, or it
    #: has not committed in its term yet); nothing happened, retry shortly
    BUSY = "busy"
    #: membership: refused for a reason that may pass (a learner not caught up yet);
    #: nothing happened, the reason says why
    REFUSED = "refused"
    #: the request's token is missing, unknown or expired, or its user lacks the
    #: permission: `kv_error` holds the AuthError (etcd's message); nothing happened
    UNAUTHORIZED = "unauthorized"


@dataclass(frozen=True, slots=True)
class KvRequest:
    request_id: int
    command: bytes
    serializable: bool = False  # reads only: serve from local state, possibly stale
    #: the client's auth token ("" = none): see cluster/kv/auth.py
    token: str = ""


@dataclass(frozen=True, slots=True)
class StatusRequest:
    request_id: int
    #: the client's auth token ("" = none): see cluster/kv/auth.py
    token: str = ""


@dataclass(frozen=True, slots=True)
class KvReply:
    request_id: int
    node_id: int
    result: bytes
    serializable: bool = False


@dataclass(frozen=True, slots=True)
class StatusReply:
    request_id: int
    node_id: int
    status: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ErrorReply:
    request_id: int
    node_id: int
    code: ErrorCode
    reason: str = ""
    leader_id: int = 0  # NOT_LEADER: the leader this node knows of
    leader_client: str = ""  # NOT_LEADER: that leader's client address
    #: a KV API failure: the KvError as the codec encodes results (`cluster.kv.
    #: decode_result` gives back its exact type, e.g. for etcd's error strings)
    kv_error: bytes = b""


#: Longest a drop-traffic fault may last: chaos is always bounded.
MAX_DROP_SECONDS = 3600.0
DROP_DIRECTIONS = ("both", "in", "out")


@dataclass(frozen=True, slots=True)
class DropTrafficRequest:
    """Fault injection for chaos runs: the node drops every peer frame to ("out"),
    from ("in") or both ways with `peers` for `seconds` (0 lifts it). The reply is a
    StatusReply."""

    request_id: int
    peers: tuple[int, ...]
    seconds: float
    direction: str = "both"
    #: the client's auth token ("" = none): see cluster/kv/auth.py
    token: str = ""


@dataclass(frozen=True, slots=True)
class BadRequest:
    """An element of a request batch that did not decode (its id, if readable)."""

    reason: str
    request_id: int | None = None


CONF_CHANGES = ("add-learner", "promote", "remove", "add-voter", "update")
#: Changes that name the member's addresses (a peer address at least).
ADDRESSED_CHANGES = ("add-learner", "add-voter", "update")
_MAX_ADDRESS = 256
_ETCD_FACES = ("grpc", "gateway")


@dataclass(frozen=True, slots=True)
class MembersRequest:
    """The membership as the answering node sees it; with `leader_only` a follower
    answers not-leader (the leader alone knows how far each learner lags)."""

    request_id: int
    leader_only: bool = False
    #: the client's auth token ("" = none): see cluster/kv/auth.py
    token: str = ""


@dataclass(frozen=True, slots=True)
class ConfChangeRequest:
    """A membership change, answered with a MembersReply once it is applied.
    add-learner, add-voter and update need `peer` (tcp://HOST:PORT); `client`
    (tcp://HOST:PORT), `grpc` and `gateway` (http://HOST:PORT, the etcd faces) are
    optional ("" = none: etcd's MemberAdd knows peer URLs only). An update keeps
    the member's current client/grpc/gateway where it leaves them empty."""

    request_id: int
    change: str
    node: int
    peer: str = ""
    client: str = ""
    grpc: str = ""
    gateway: str = ""
    #: the client's auth token ("" = none): see cluster/kv/auth.py
    token: str = ""


@dataclass(frozen=True, slots=True)
class JointChangeRequest:
    """Several membership changes in one joint-consensus step (a jangada extension:
    etcd's API changes one member per call). Each change is a ConfChangeRequest
    (add-learner, add-voter, promote, remove; its request_id is unused); the leader
    enters the joint configuration and, with `auto_leave`, leaves it by itself once
    that commits. Answered with a MembersReply once the entering entry is applied."""

    request_id: int
    changes: tuple[ConfChangeRequest, ...]
    auto_leave: bool = True
    #: the client's auth token ("" = none): see cluster/kv/auth.py
    token: str = ""


#: The changes a JointChangeRequest may carry (an update changes no voter: use "conf").
JOINT_CHANGES = ("add-learner", "add-voter", "promote", "remove")
#: At most this many changes in one joint step.
MAX_JOINT_CHANGES = 16


@dataclass(frozen=True, slots=True)
class TransferRequest:
    """Move leadership to voter `to` (answered with a StatusReply once started)."""

    request_id: int
    to: int
    #: the client's auth token ("" = none): see cluster/kv/auth.py
    token: str = ""


@dataclass(frozen=True, slots=True)
class SnapshotFileRequest:
    """Where this node's newest committed snapshot file is, if it covers log index
    `min_index`: a StatusReply {"path", "index", "term", "size"}. Otherwise the node
    starts writing a snapshot of its applied state and answers busy: ask again (the
    etcd face streams the file for Maintenance.Snapshot; the file is only read, and
    stays readable once opened even if a newer snapshot prunes it)."""

    request_id: int
    min_index: int
    #: the client's auth token ("" = none): see cluster/kv/auth.py
    token: str = ""


#: Most snapshot bytes one SnapshotReadRequest is answered with (the node also keeps
#: every reply within half of its [limits] max_message_bytes).
SNAPSHOT_READ_MAX = 1 << 20


@dataclass(frozen=True, slots=True)
class SnapshotReadRequest:
    """Bytes of this node's snapshot file at log index `index` (one that
    SnapshotFileRequest named): a StatusReply {"index", "term", "size", "checksum",
    "offset", "data"} with up to `max_bytes` bytes from `offset`. What `python -m
    cluster snapshot save` streams across hosts: one bounded read per request, so
    the node's loop never stalls on a large file."""

    request_id: int
    index: int
    offset: int = 0
    max_bytes: int = SNAPSHOT_READ_MAX
    #: the client's auth token ("" = none): see cluster/kv/auth.py
    token: str = ""


@dataclass(frozen=True, slots=True)
class HashRequest:
    """This replica's digest (node/statemachine/digest.py), answered from its local
    state at once, with a StatusReply {"hash", "revision", "compact_revision"}: the
    key-value history up to `revision` (0: the current one), or with `whole` the
    whole replicated state (`revision` ignored). A compacted or future revision is
    answered with the KV API's error."""

    request_id: int
    revision: int = 0
    whole: bool = False
    #: the client's auth token ("" = none): see cluster/kv/auth.py
    token: str = ""


@dataclass(frozen=True, slots=True)
class MembersReply:
    """`members`: {"voters", "learners", "members": [{"id", "peer", "client", "grpc",
    "gateway", "voter", "match", "lag"}], "leader_id", "term", "last_index", "commit_index",
    "from_leader"} ("" for an address a member does not have; older nodes leave out
    "grpc" and "gateway")
    (`match`/`lag` are null unless the answer comes from the leader)."""

    request_id: int
    node_id: int
    members: dict[str, Any] = field(default_factory=dict)


ClientRequest = Union[KvRequest, StatusRequest, DropTrafficRequest, "WatchRequest", MembersRequest,
                      ConfChangeRequest, JointChangeRequest, TransferRequest, HashRequest, SnapshotFileRequest,
                      SnapshotReadRequest]
Reply = Union[KvReply, StatusReply, ErrorReply, MembersReply]


# --- encoding ----------------------------------------------------------------------


def _pack(obj: dict[str, Any]) -> bytes:
    return cast(bytes, msgpack.packb(obj, use_bin_type=True))


def encode_request(request: ClientRequest) -> bytes:
    return _pack(_request_map(request))


def _request_map(request: ClientRequest) -> dict[str, Any]:
    out = _request_fields(request)
    if request.token:
        out["tok"] = request.token
    return out


def _request_fields(request: ClientRequest) -> dict[str, Any]:
    match request:
        case KvRequest(request_id, command, serializable):
            return {"v": VERSION, "id": request_id, "op": "kv", "cmd": command, "ser": serializable}
        case StatusRequest(request_id):
            return {"v": VERSION, "id": request_id, "op": "status"}
        case DropTrafficRequest(request_id, peers, seconds, direction):
            return {"v": VERSION, "id": request_id, "op": "drop", "peers": list(peers),
                    "seconds": float(seconds), "direction": direction}
        case MembersRequest(request_id, leader_only):
            return {"v": VERSION, "id": request_id, "op": "members", "leader": leader_only}
        case ConfChangeRequest(request_id, change, node, peer, client, grpc, gateway):
            out = {"v": VERSION, "id": request_id, "op": "conf", "change": change, "node": node,
                   "peer": peer, "client": client}
            out.update((key, url) for key, url in (("grpc", grpc), ("gateway", gateway)) if url)
            return out
        case JointChangeRequest(request_id, changes, auto_leave):
            rows = []
            for change in changes:
                row = _request_fields(change)
                for key in ("v", "id", "op"):
                    row.pop(key)
                rows.append(row)
            return {"v": VERSION, "id": request_id, "op": "joint", "changes": rows, "auto": auto_leave}
        case TransferRequest(request_id, to):
            return {"v": VERSION, "id": request_id, "op": "transfer", "to": to}
        case SnapshotFileRequest(request_id, min_index):
            return {"v": VERSION, "id": request_id, "op": "snapshot-file", "min": min_index}
        case SnapshotReadRequest(request_id, index, offset, max_bytes):
            return {"v": VERSION, "id": request_id, "op": "snapshot-read", "index": index, "off": offset,
                    "len": max_bytes}
        case HashRequest(request_id, revision, whole):
            return {"v": VERSION, "id": request_id, "op": "hash", "rev": revision, "all": whole}
        case WatchCreateRequest() | WatchCancelRequest() | WatchProgressRequest():
            return _watch_request_map(request)
    raise TypeError(f"not a request: {request!r}")


def encode_requests(requests: list[ClientRequest]) -> bytes:
    """Several requests in one frame (a msgpack array of request maps)."""
    if not 1 <= len(requests) <= MAX_BATCH:
        raise ValueError(f"a batch holds 1 to {MAX_BATCH} requests, not {len(requests)}")
    if len(requests) == 1:
        return encode_request(requests[0])
    return cast(bytes, msgpack.packb([_request_map(r) for r in requests], use_bin_type=True))


def encode_reply(reply: Reply) -> bytes:
    return _pack(_reply_map(reply))


#: KvRequest(request_id, command, serializable, token) and KvReply(request_id,
#: node_id, result, serializable), every field given, built without their __init__
#: (cluster/slots.py): every KV request and reply makes one.
kv_request = slot_constructor(KvRequest)
kv_reply = slot_constructor(KvReply)


def encode_replies(replies: list[Reply]) -> bytes:
    """Several replies to one client in one frame (one reply: a plain reply frame)."""
    if len(replies) == 1:
        return encode_reply(replies[0])
    return cast(bytes, msgpack.packb([_reply_map(r) for r in replies], use_bin_type=True))


def _reply_map(reply: Reply) -> dict[str, Any]:
    if type(reply) is KvReply:  # the hot path: the same map as below, built at once
        return {"v": VERSION, "id": reply.request_id, "node": reply.node_id, "ok": True, "result": reply.result,
                "ser": reply.serializable}
    head: dict[str, Any] = {"v": VERSION, "id": reply.request_id, "node": reply.node_id}
    match reply:
        case KvReply(_, _, result, serializable):
            return {**head, "ok": True, "result": result, "ser": serializable}
        case StatusReply(_, _, status):
            return {**head, "ok": True, "status": status}
        case MembersReply(_, _, members):
            return {**head, "ok": True, "members": members}
        case ErrorReply(_, _, code, reason, leader_id, leader_client, kv_error):
            out = {**head, "ok": False, "code": code.value, "reason": reason,
                   "leader": leader_id, "leader_client": leader_client}
            if kv_error:
                out["kverr"] = kv_error
            return out
    raise TypeError(f"not a reply: {reply!r}")


# --- decoding ----------------------------------------------------------------------


def _unpack(data: bytes, max_bytes: int) -> Any:
    if len(data) > max_bytes:
        raise ProtocolError(f"frame of {len(data)} bytes exceeds {max_bytes}")
    try:
        return msgpack.unpackb(data, raw=False, use_list=True, strict_map_key=True)
    except (ValueError, TypeError, msgpack.UnpackException) as error:
        raise ProtocolError(f"not msgpack ({type(error).__name__})") from None


def _unpack_map(data: bytes, max_bytes: int) -> dict[str, Any]:
    return _checked_map(_unpack(data, max_bytes))


def _checked_map(obj: Any) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise ProtocolError("not a msgpack map")
    if obj.get("v") != VERSION:
        raise ProtocolError(f"unsupported protocol version {obj.get('v')!r}")
    return obj


def _get(obj: dict[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
    value = obj.get(key)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ProtocolError(f"field {key!r} must be {getattr(kind, '__name__', kind)}, got {type(value).__name__}")
    return value


def _request_id(obj: dict[str, Any]) -> int:
    request_id: int = _get(obj, "id", int)
    if not 0 <= request_id <= MAX_ID:
        raise ProtocolError(f"request id {request_id} out of range")
    return request_id


def decode_request(data: bytes, max_bytes: int = 16 << 20) -> ClientRequest:
    return _request(_unpack_map(data, max_bytes))


def decode_requests(data: bytes, max_bytes: int = 16 << 20) -> list[ClientRequest | BadRequest]:
    """A frame holding one request or a batch: each element decoded on its own,
    so one bad element does not cost the others. Raises ProtocolError only when
    the frame as a whole is unreadable."""
    obj = _unpack(data, max_bytes)
    if not isinstance(obj, list):
        return [_request(_checked_map(obj))]
    if not obj or len(obj) > MAX_BATCH:
        raise ProtocolError(f"a batch must hold 1 to {MAX_BATCH} requests, not {len(obj)}")
    out: list[ClientRequest | BadRequest] = []
    for element in obj:
        try:
            out.append(_request(_checked_map(element)))
        except ProtocolError as error:
            request_id = None
            if isinstance(element, dict):
                try:
                    request_id = _request_id(element)
                except ProtocolError:
                    pass
            out.append(BadRequest(str(error), request_id))
    return out


def _token(obj: dict[str, Any]) -> str:
    token = obj.get("tok", "")
    if type(token) is not str or len(token) > MAX_TOKEN:
        raise ProtocolError(f"field 'tok' must be a string of at most {MAX_TOKEN} characters")
    return token


def _request(obj: dict[str, Any]) -> ClientRequest:
    if obj.get("op") == "kv":
        # The hot path: one combined check (the field-by-field one below gives the
        # message), the slots set directly.
        request_id, command, serializable = obj.get("id"), obj.get("cmd"), obj.get("ser")
        if (type(request_id) is int and 0 <= request_id <= MAX_ID and type(command) is bytes
                and type(serializable) is bool):
            return kv_request(request_id, command, serializable, _token(obj) if "tok" in obj else "")
    request_id = _request_id(obj)
    op = obj.get("op")
    if op == "kv":
        return KvRequest(request_id, _get(obj, "cmd", bytes), bool(_get(obj, "ser", bool)),
                         _token(obj) if "tok" in obj else "")
    request = _other_request(obj, request_id, op)
    if "tok" in obj:
        return replace(request, token=_token(obj))  # type: ignore[type-var]
    return request


def _other_request(obj: dict[str, Any], request_id: int, op: Any) -> ClientRequest:
    if op == "status":
        return StatusRequest(request_id)
    if op == "drop":
        return _drop_request(obj, request_id)
    if op == "members":
        return MembersRequest(request_id, bool(_get(obj, "leader", bool)))
    if op == "conf":
        return _conf_request(obj, request_id)
    if op == "joint":
        return _joint_request(obj, request_id)
    if op == "transfer":
        return TransferRequest(request_id, _node_id(obj, "to"))
    if op == "snapshot-file":
        return SnapshotFileRequest(request_id, _uint(obj, "min", 2**63 - 1))
    if op == "snapshot-read":
        return SnapshotReadRequest(request_id, _uint(obj, "index", 2**63 - 1), _uint(obj, "off", 2**63 - 1),
                                   _uint(obj, "len", SNAPSHOT_READ_MAX))
    if op == "hash":
        return HashRequest(request_id, _uint(obj, "rev", 2**63 - 1), bool(_get(obj, "all", bool)))
    if op in WATCH_OPS:
        return _watch_request(obj, request_id, op)
    raise ProtocolError(f"unknown op {op!r}")


def _drop_request(obj: dict[str, Any], request_id: int) -> DropTrafficRequest:
    peers = _get(obj, "peers", list)
    if not peers or not all(type(p) is int and 1 <= p < 2**31 for p in peers):
        raise ProtocolError("field 'peers' must be a non-empty list of node ids")
    seconds = _get(obj, "seconds", (int, float))
    if isinstance(seconds, bool) or not 0 <= seconds <= MAX_DROP_SECONDS:
        raise ProtocolError(f"field 'seconds' must be in [0, {MAX_DROP_SECONDS:g}]")
    direction = _get(obj, "direction", str)
    if direction not in DROP_DIRECTIONS:
        raise ProtocolError(f"field 'direction' must be one of {', '.join(DROP_DIRECTIONS)}")
    return DropTrafficRequest(request_id, tuple(peers), float(seconds), direction)


def _node_id(obj: dict[str, Any], key: str) -> int:
    value: int = _get(obj, key, int)
    if not 1 <= value < 2**63:
        raise ProtocolError(f"field {key!r} must be a node id >= 1")
    return value


def _conf_request(obj: dict[str, Any], request_id: int) -> ConfChangeRequest:
    change = _get(obj, "change", str)
    if change not in CONF_CHANGES:
        raise ProtocolError(f"field 'change' must be one of {', '.join(CONF_CHANGES)}")
    node = _node_id(obj, "node")
    peer, client = _get(obj, "peer", str), _get(obj, "client", str)
    # Optional keys: requests from before the etcd faces have none.
    grpc, gateway = (_get(obj, key, str) if key in obj else "" for key in _ETCD_FACES)
    if any(len(a) > _MAX_ADDRESS for a in (peer, client, grpc, gateway)):
        raise ProtocolError("addresses must be at most 256 characters")
    if change in ADDRESSED_CHANGES:
        if not peer.startswith("tcp://") or (client and not client.startswith("tcp://")):
            raise ProtocolError(f"{change} needs a 'peer' address and an optional 'client' address "
                                "(tcp://HOST:PORT)")
        if any(url and not url.startswith("http://") for url in (grpc, gateway)):
            raise ProtocolError(f"{change}: 'grpc' and 'gateway' must be http://HOST:PORT URLs")
    return ConfChangeRequest(request_id, change, node, peer, client, grpc, gateway)


def _joint_request(obj: dict[str, Any], request_id: int) -> JointChangeRequest:
    rows = _get(obj, "changes", list)
    if not 1 <= len(rows) <= MAX_JOINT_CHANGES:
        raise ProtocolError(f"field 'changes' must hold 1 to {MAX_JOINT_CHANGES} changes")
    changes = []
    for row in rows:
        if not isinstance(row, dict):
            raise ProtocolError("each change must be a map")
        change = _conf_request(row, 0)
        if change.change not in JOINT_CHANGES:
            raise ProtocolError(f"a joint change may only {', '.join(JOINT_CHANGES)}")
        changes.append(change)
    if len({c.node for c in changes}) != len(changes):
        raise ProtocolError("a joint change names each node at most once")
    return JointChangeRequest(request_id, tuple(changes), bool(_get(obj, "auto", bool)))


def decode_reply(data: bytes, max_bytes: int = 64 << 20) -> Reply:
    return _reply(_unpack_map(data, max_bytes))


def decode_replies(data: bytes, max_bytes: int = 64 << 20) -> list[Reply]:
    """The replies in a frame: one, or a batch (see the module docstring)."""
    obj = _unpack(data, max_bytes)
    if isinstance(obj, list):
        return [_reply(_checked_map(element)) for element in obj]
    return [_reply(_checked_map(obj))]


def _reply(obj: dict[str, Any]) -> Reply:
    request_id = _request_id(obj)
    node_id = _get(obj, "node", int)
    ok = _get(obj, "ok", bool)
    if ok and "status" in obj:
        return StatusReply(request_id, node_id, _get(obj, "status", dict))
    if ok and "members" in obj:
        return MembersReply(request_id, node_id, _get(obj, "members", dict))
    if ok:
        return KvReply(request_id, node_id, _get(obj, "result", bytes), _get(obj, "ser", bool))
    try:
        code = ErrorCode(obj.get("code"))
    except ValueError:
        raise ProtocolError(f"unknown error code {obj.get('code')!r}") from None
    kv_error = obj.get("kverr", b"")
    if not isinstance(kv_error, bytes):
        raise ProtocolError("field 'kverr' must be bytes")
    return ErrorReply(request_id, node_id, code, _get(obj, "reason", str),
                      _get(obj, "leader", int), _get(obj, "leader_client", str), kv_error)


def peek_request_id(data: bytes, max_bytes: int = 16 << 20) -> int | None:
    """The request id of a frame that failed to decode, if it has a readable one (so
    the node can still answer invalid-request instead of leaving the client to time
    out)."""
    try:
        return _request_id(_unpack_map(data, max_bytes))
    except ProtocolError:
        return None


# --- watch (docs/watch.md) ----------------------------------------------------------
#
#   request  {"v": 1, "id", "op": "watch", "wid": watch_id, "key": bytes, "end": bytes,
#             "start": revision (0 = from now), "prev_kv": bool, "progress_ms": int}
#            {"v": 1, "id", "op": "watch-cancel", "wid"}
#            {"v": 1, "id", "op": "watch-progress", "wid", "ack": seq, "notify": bool}
#   pushed   {"v": 1, "id": the create's request id, "node", "ok": bool, "watch": watch_id,
#             "seq": n, "kind": "created"|"events"|"progress"|"cancelled", "rev": r,
#             "head": h, "events": [[type, kv, prev_kv|nil]...], "compact": c,
#             "code": str, "reason": str, "interval_ms": int}
#
# A watch's frames are numbered 0, 1, 2... (`seq`; 0 is "created" or the
# cancellation of a refused create), so a client sees any lost frame as a gap.
# `rev`: every event of a revision <= rev in the watched range has been sent
# (the resume point is rev + 1). `head`: the node's applied revision.
# `watch-progress` acknowledges the frames up to `ack` (flow control and
# keepalive) and, with `notify`, asks for a progress frame now.

WATCH_OPS = ("watch", "watch-cancel", "watch-progress")
WATCH_FRAME_KINDS = ("created", "events", "progress", "cancelled")
#: Bounds of a watch's progress interval (the node's heartbeat to the watcher).
MIN_PROGRESS_MS, MAX_PROGRESS_MS = 20, 60_000
MAX_WATCH_ID = 2**63 - 1
EVENT_PUT, EVENT_DELETE = 0, 1  # etcd's mvccpb.Event.EventType


@dataclass(frozen=True, slots=True)
class WatchCreateRequest:
    request_id: int
    watch_id: int
    key: bytes
    range_end: bytes = b""  # etcd's convention: b"" one key, b"\0" every key >= key
    start_revision: int = 0  # 0: from the node's current revision + 1
    prev_kv: bool = False
    progress_ms: int = 1000
    #: the client's auth token ("" = none): see cluster/kv/auth.py
    token: str = ""


@dataclass(frozen=True, slots=True)
class WatchCancelRequest:
    request_id: int
    watch_id: int
    #: the client's auth token ("" = none): see cluster/kv/auth.py
    token: str = ""


@dataclass(frozen=True, slots=True)
class WatchProgressRequest:
    request_id: int
    watch_id: int
    ack: int = 0  # every frame with seq <= ack was received
    notify: bool = False  # send a progress frame now
    #: the client's auth token ("" = none): see cluster/kv/auth.py
    token: str = ""


WatchRequest = Union[WatchCreateRequest, WatchCancelRequest, WatchProgressRequest]


@dataclass(frozen=True, slots=True)
class WatchEvent:
    type: int  # EVENT_PUT or EVENT_DELETE
    kv: Any  # cluster.kv.KeyValue (a DELETE's kv: key and mod_revision only)
    prev_kv: Any = None  # the key's previous version, if asked for and it existed

    @property
    def type_name(self) -> str:
        return "PUT" if self.type == EVENT_PUT else "DELETE"


@dataclass(frozen=True, slots=True)
class WatchFrame:
    request_id: int
    node_id: int
    watch_id: int
    seq: int
    kind: str
    revision: int
    head: int
    events: tuple[WatchEvent, ...] = ()
    compact_revision: int = 0
    code: str = ""
    reason: str = ""
    interval_ms: int = 0


def encode_watch_request(request: WatchRequest) -> bytes:
    return _pack(_request_map(request))


def _watch_request_map(request: WatchRequest) -> dict[str, Any]:
    head: dict[str, Any] = {"v": VERSION, "id": request.request_id, "wid": request.watch_id}
    match request:
        case WatchCreateRequest(_, _, key, range_end, start, prev_kv, progress_ms):
            return {**head, "op": "watch", "key": key, "end": range_end, "start": start,
                    "prev_kv": prev_kv, "progress_ms": progress_ms}
        case WatchCancelRequest():
            return {**head, "op": "watch-cancel"}
        case WatchProgressRequest(_, _, ack, notify):
            return {**head, "op": "watch-progress", "ack": ack, "notify": notify}
    raise TypeError(f"not a watch request: {request!r}")


def _uint(obj: dict[str, Any], key: str, maximum: int) -> int:
    value: int = _get(obj, key, int)
    if not 0 <= value <= maximum:
        raise ProtocolError(f"field {key!r} must be in [0, {maximum}], got {value}")
    return value


def _watch_request(obj: dict[str, Any], request_id: int, op: str) -> WatchRequest:
    watch_id = _uint(obj, "wid", MAX_WATCH_ID)
    if op == "watch-cancel":
        return WatchCancelRequest(request_id, watch_id)
    if op == "watch-progress":
        return WatchProgressRequest(request_id, watch_id, _uint(obj, "ack", 2**63 - 1), _get(obj, "notify", bool))
    key, end = _get(obj, "key", bytes), _get(obj, "end", bytes)
    if not key and not end:
        raise ProtocolError("field 'key' must not be empty (use end b'\\x00' for every key)")
    progress_ms = _get(obj, "progress_ms", int)
    if isinstance(progress_ms, bool) or not MIN_PROGRESS_MS <= progress_ms <= MAX_PROGRESS_MS:
        raise ProtocolError(f"field 'progress_ms' must be in [{MIN_PROGRESS_MS}, {MAX_PROGRESS_MS}]")
    return WatchCreateRequest(request_id, watch_id, key, end, _uint(obj, "start", 2**62),
                              _get(obj, "prev_kv", bool), progress_ms)


def encode_watch_frame(request_id: int, node_id: int, watch_id: int, seq: int, kind: str, revision: int,
                       head: int, events: Any = (), compact_revision: int = 0, code: str = "",
                       reason: str = "", interval_ms: int = 0) -> bytes:
    """A pushed frame. `events`: `[type, kv, prev_kv|None]` sequences whose kvs are
    `[key, value, create, mod, version, lease]` sequences (the node's KeyValue
    tuples pack as such); a WatchEvent list is converted."""
    if events and isinstance(events[0], WatchEvent):
        events = [[e.type, _kv_fields(e.kv), None if e.prev_kv is None else _kv_fields(e.prev_kv)]
                  for e in events]
    return _pack({"v": VERSION, "id": request_id, "node": node_id, "ok": kind != "cancelled",
                  "watch": watch_id, "seq": seq, "kind": kind, "rev": revision, "head": head,
                  "events": events, "compact": compact_revision, "code": code, "reason": reason,
                  "interval_ms": interval_ms})


def _kv_fields(kv: Any) -> list[Any]:
    return [kv.key, kv.value, kv.create_revision, kv.mod_revision, kv.version, kv.lease]


def decode_watch_frames(data: bytes, max_bytes: int = 256 << 20) -> list[WatchFrame | Reply]:
    """What a watch socket receives: a pushed WatchFrame, or ordinary replies (an
    error answering a watch request; maybe a batch). Raises ProtocolError only."""
    obj = _unpack(data, max_bytes)
    if isinstance(obj, list):
        return list(decode_replies(data, max_bytes))
    return [decode_watch_frame(data, max_bytes)]


def decode_watch_frame(data: bytes, max_bytes: int = 256 << 20) -> WatchFrame | Reply:
    """One pushed WatchFrame, or one ordinary reply. Raises ProtocolError only."""
    obj = _unpack_map(data, max_bytes)
    if "watch" not in obj:
        return decode_reply(data, max_bytes)
    kind = _get(obj, "kind", str)
    if kind not in WATCH_FRAME_KINDS:
        raise ProtocolError(f"unknown watch frame kind {kind!r}")
    raw_events = _get(obj, "events", list)
    try:
        events = tuple(_watch_event(e) for e in raw_events)
    except (TypeError, ValueError, IndexError) as error:
        raise ProtocolError(f"malformed watch event: {error}") from None
    return WatchFrame(_request_id(obj), _get(obj, "node", int), _uint(obj, "watch", MAX_WATCH_ID),
                      _uint(obj, "seq", 2**63 - 1), kind, _uint(obj, "rev", 2**63 - 1),
                      _uint(obj, "head", 2**63 - 1), events, _uint(obj, "compact", 2**63 - 1),
                      _get(obj, "code", str), _get(obj, "reason", str), _uint(obj, "interval_ms", 2**31))


def _watch_event(fields: Any) -> WatchEvent:
    def kv(f: Any) -> Any:
        if not isinstance(f, list) or len(f) != 6 or not isinstance(f[0], bytes) or not isinstance(f[1], bytes):
            raise ValueError("a kv is [key, value, create, mod, version, lease]")
        if not all(type(n) is int for n in f[2:]):
            raise ValueError("kv revisions must be integers")
        return KeyValue(*f)

    if not isinstance(fields, list) or len(fields) != 3 or fields[0] not in (EVENT_PUT, EVENT_DELETE):
        raise ValueError("an event is [type, kv, prev_kv]")
    return WatchEvent(fields[0], kv(fields[1]), None if fields[2] is None else kv(fields[2]))
