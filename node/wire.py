"""The peer wire format: where Raft messages meet bytes.

Every peer frame is one msgpack array, the envelope:

    [VERSION, cluster_id, sender_id, type_tag, payload]

where `payload` is a msgpack array of the message's fields (below; `src` is the
envelope's sender). Entries travel as `[term, index, kind, data]` and snapshot
metadata as `[index, term, voters, learners]`.

| tag | message | payload |
| --- | --- | --- |
| 1 | RequestVote | dst, term, last_log_index, last_log_term, pre_vote, transfer |
| 2 | RequestVoteResponse | dst, term, granted, pre_vote |
| 3 | AppendEntries | dst, term, prev_log_index, prev_log_term, [entry...], leader_commit |
| 4 | AppendEntriesResponse | dst, term, success, index, hint_index, hint_term |
| 5 | Heartbeat | dst, term, commit, ctx |
| 6 | HeartbeatResponse | dst, term, ctx |
| 7 | InstallSnapshot | dst, term, meta (the data travels as SnapshotChunks) |
| 8 | TimeoutNow | dst, term |
| 9 | ReadIndexRequest | dst, term, ctx |
| 10 | ReadIndexResponse | dst, term, ctx, index |
| 11 | SnapshotChunk | dst, term, meta, offset, data, done |
| 12 | SnapshotChunkAck | dst, term, index, received |
| 13 | HashKVRequest | dst, check, revision |
| 14 | HashKVResponse | dst, check, revision, outcome, hash, current_revision, compact_revision |
| 15 | AlarmReport | dst, alarm |

Tags 13-15 are the corruption checks' (node/corruption_check.py), not Raft's:
members asking each other for HashKV as etcd's members do over their peer URLs
(/members/hashkv), so the peer channel's CURVE authentication covers them and
no client token is needed.

Decoding checks the envelope and every field's type and range and raises only
`WireError` (whose `kind` names the counter the node bumps): bytes from the
network are never trusted, and a node never crashes on them.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any, Callable, Union, cast

import msgpack

from cluster.slots import slot_constructor
from node.raft import (
    AppendEntries, AppendEntriesResponse, ConfState, Entry, EntryKind, Heartbeat,
    HeartbeatResponse, InstallSnapshot, Message, ReadIndexRequest, ReadIndexResponse,
    RequestVote, RequestVoteResponse, Snapshot, SnapshotMeta, TimeoutNow,
)

VERSION = 1
_U64 = 2**64 - 1


class WireError(ValueError):
    """A peer frame we refuse. `kind` is one of: oversized, malformed, version,
    wrong-cluster, unknown-type, bad-field."""

    def __init__(self, kind: str, detail: str) -> None:
        self.kind = kind
        self.detail = detail
        super().__init__(f"{kind}: {detail}")


@dataclass(frozen=True, slots=True)
class SnapshotChunk:
    """Leader -> follower: `data` is the snapshot file's bytes at `offset`. The chunk
    with `done` completes the file; the follower then verifies it and steps the core
    with the InstallSnapshot the leader's core asked for (Raft §7)."""

    src: int
    dst: int
    term: int
    meta: SnapshotMeta
    offset: int
    data: bytes
    done: bool


@dataclass(frozen=True, slots=True)
class SnapshotChunkAck:
    """Follower -> leader: `received` bytes of the snapshot at `index` are written
    (the whole file once the last chunk is verified). The leader keeps a bounded
    window of unacknowledged bytes per stream (node/snapshot_transfer.py): flow control."""

    src: int
    dst: int
    term: int
    index: int
    received: int


class HashOutcome(IntEnum):
    """How a member answered a HashKVRequest: with its hash, or why not."""

    OK = 0
    COMPACTED = 1  # its compact revision is past the revision asked for
    BEHIND = 2  # it has not applied the revision asked for (in time)
    UNAVAILABLE = 3  # its store holds too much history to hash (digest.MAX_RECORDS)


@dataclass(frozen=True, slots=True)
class HashKVRequest:
    """Member -> member: the receiver's HashKV (node/statemachine/digest.py) at
    `revision`. `check` numbers the asker's round, so a late answer to an earlier
    round is told apart."""

    src: int
    dst: int
    check: int
    revision: int


@dataclass(frozen=True, slots=True)
class HashKVResponse:
    """Member -> asker: the answer to a HashKVRequest. `hash`, `current_revision`
    and `compact_revision` are meaningful with outcome OK only (0 otherwise)."""

    src: int
    dst: int
    check: int
    revision: int
    outcome: HashOutcome
    hash: int = 0
    current_revision: int = 0
    compact_revision: int = 0


@dataclass(frozen=True, slots=True)
class AlarmReport:
    """Member -> leader: raise `alarm` (an AlarmType number) for the sender. Only
    the leader proposes; a member whose start-up check found its own state
    diverged reports itself this way (a member reports nobody else)."""

    src: int
    dst: int
    alarm: int


PeerMessage = Union[Message, SnapshotChunk, SnapshotChunkAck, HashKVRequest, HashKVResponse, AlarmReport]

_TAGS: dict[type, int] = {
    RequestVote: 1, RequestVoteResponse: 2, AppendEntries: 3, AppendEntriesResponse: 4,
    Heartbeat: 5, HeartbeatResponse: 6, InstallSnapshot: 7, TimeoutNow: 8,
    ReadIndexRequest: 9, ReadIndexResponse: 10, SnapshotChunk: 11, SnapshotChunkAck: 12,
    HashKVRequest: 13, HashKVResponse: 14, AlarmReport: 15,
}


# --- encoding ------------------------------------------------------------------------


def encode(cluster_id: str, message: PeerMessage) -> bytes:
    """The frame for `message`, sent by `message.src`."""
    kind = type(message)
    fast = _FAST_PAYLOADS.get(kind)
    payload = fast(message) if fast is not None else _payload(message)  # type: ignore[arg-type]
    return cast(bytes, _pack([VERSION, cluster_id, message.src, _TAGS[kind], payload]))


#: One Packer for every frame instead of one per `packb` call. Shared by the threads
#: of a process running several nodes: `pack` is C code that keeps the GIL from
#: reset to return, so one frame's bytes never mix with another's.
_pack = msgpack.Packer(use_bin_type=True, autoreset=True).pack


def _append_payload(m: AppendEntries) -> list[Any]:
    return [m.dst, m.term, m.prev_log_index, m.prev_log_term,
            [[e.term, e.index, int(e.kind), e.data] for e in m.entries], m.leader_commit]


#: The messages of every put and heartbeat, encoded without `_payload`'s match
#: (whose class patterns are tried in order: ~4x the instructions for the last ones).
_FAST_PAYLOADS: dict[type, Callable[[Any], list[Any]]] = {
    AppendEntries: _append_payload,
    AppendEntriesResponse: lambda m: [m.dst, m.term, m.success, m.index, m.hint_index, m.hint_term],
    Heartbeat: lambda m: [m.dst, m.term, m.commit, m.ctx],
    HeartbeatResponse: lambda m: [m.dst, m.term, m.ctx],
}


def _payload(m: PeerMessage) -> list[Any]:
    match m:
        case RequestVote():
            return [m.dst, m.term, m.last_log_index, m.last_log_term, m.pre_vote, m.transfer]
        case RequestVoteResponse():
            return [m.dst, m.term, m.granted, m.pre_vote]
        case AppendEntries():
            return [m.dst, m.term, m.prev_log_index, m.prev_log_term,
                    [[e.term, e.index, int(e.kind), e.data] for e in m.entries], m.leader_commit]
        case AppendEntriesResponse():
            return [m.dst, m.term, m.success, m.index, m.hint_index, m.hint_term]
        case Heartbeat():
            return [m.dst, m.term, m.commit, m.ctx]
        case HeartbeatResponse():
            return [m.dst, m.term, m.ctx]
        case InstallSnapshot():
            return [m.dst, m.term, _meta_fields(m.snapshot.meta)]
        case TimeoutNow():
            return [m.dst, m.term]
        case ReadIndexRequest():
            return [m.dst, m.term, m.ctx]
        case ReadIndexResponse():
            return [m.dst, m.term, m.ctx, m.index]
        case SnapshotChunk():
            return [m.dst, m.term, _meta_fields(m.meta), m.offset, m.data, m.done]
        case SnapshotChunkAck():
            return [m.dst, m.term, m.index, m.received]
        case HashKVRequest():
            return [m.dst, m.check, m.revision]
        case HashKVResponse():
            return [m.dst, m.check, m.revision, int(m.outcome), m.hash, m.current_revision, m.compact_revision]
        case AlarmReport():
            return [m.dst, m.alarm]
    raise TypeError(f"not a peer message: {m!r}")


def _meta_fields(meta: SnapshotMeta) -> list[Any]:
    return [meta.index, meta.term, list(meta.conf.voters), list(meta.conf.learners), *meta.conf.joint_fields()]


# --- decoding ------------------------------------------------------------------------


def decode(data: bytes, cluster_id: str, max_bytes: int) -> PeerMessage:
    """The message in a peer frame; raises WireError for anything else."""
    if len(data) > max_bytes:
        raise WireError("oversized", f"{len(data)} bytes > {max_bytes}")
    try:
        obj = msgpack.unpackb(data, raw=False, use_list=True)
    except (ValueError, TypeError, msgpack.UnpackException) as error:
        raise WireError("malformed", f"not msgpack ({type(error).__name__})") from None
    if not isinstance(obj, list) or len(obj) != 5:
        raise WireError("malformed", "envelope is not a 5-element array")
    version, cluster, sender, tag, payload = obj
    if version != VERSION:
        raise WireError("version", f"format version {version!r}, expected {VERSION}")
    if cluster != cluster_id:
        raise WireError("wrong-cluster", f"cluster {cluster!r}, expected {cluster_id!r}")
    if not isinstance(payload, list):
        raise WireError("malformed", "payload is not an array")
    decoder = _DECODERS.get(tag) if type(tag) is int or (isinstance(tag, int) and not isinstance(tag, bool)) \
        else None
    if decoder is None:
        raise WireError("unknown-type", f"type tag {tag!r}")
    src = sender if type(sender) is int and 0 <= sender <= _U64 else _uint(sender, "sender")
    try:
        return decoder(src, payload)
    except (IndexError, TypeError, ValueError) as error:
        if isinstance(error, WireError):
            raise
        raise WireError("bad-field", f"tag {tag}: {error}") from None


def _uint(value: Any, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= _U64:
        raise WireError("bad-field", f"{what} must be an unsigned integer, got {value!r}")
    return value


def _bool(value: Any, what: str) -> bool:
    if not isinstance(value, bool):
        raise WireError("bad-field", f"{what} must be a boolean, got {value!r}")
    return value


def _bytes(value: Any, what: str) -> bytes:
    if not isinstance(value, bytes):
        raise WireError("bad-field", f"{what} must be bytes, got {type(value).__name__}")
    return value


def _arity(p: list[Any], n: int, name: str) -> None:
    if len(p) != n:
        raise WireError("bad-field", f"{name} has {len(p)} fields, expected {n}")


_KINDS = {int(kind): kind for kind in EntryKind}
#: Entry built with its slots set directly (cluster/slots.py): per entry received.
_new_entry = slot_constructor(Entry)  # (term, index, data, kind)


def _entry(fields: Any) -> Entry:
    # The fast path for a well-formed entry (the common case, per entry on the hot
    # path: ~2x cheaper than the checks below, which name what is wrong).
    if type(fields) is list and len(fields) == 4:
        term, index, kind, data = fields
        if (type(term) is int and type(index) is int and type(data) is bytes
                and 1 <= term <= _U64 and 1 <= index <= _U64 and type(kind) is int and kind in _KINDS):
            return _new_entry(term, index, data, _KINDS[kind])  # type: ignore[no-any-return]
    return _checked_entry(fields)


def _checked_entry(fields: Any) -> Entry:
    if not isinstance(fields, list) or len(fields) != 4:
        raise WireError("bad-field", "entry must be [term, index, kind, data]")
    term, index = _uint(fields[0], "entry term"), _uint(fields[1], "entry index")
    if term < 1 or index < 1:
        raise WireError("bad-field", f"entry {term}/{index}: term and index must be >= 1")
    try:
        kind = EntryKind(_uint(fields[2], "entry kind"))
    except ValueError:
        raise WireError("bad-field", f"unknown entry kind {fields[2]!r}") from None
    return Entry(term, index, _bytes(fields[3], "entry data"), kind)


def _meta(fields: Any) -> SnapshotMeta:
    if not isinstance(fields, list) or len(fields) not in (4, 7):
        raise WireError("bad-field", "snapshot meta must be [index, term, voters, learners] "
                        "(+ [outgoing, learners_next, auto_leave] while joint)")
    voters, learners = fields[2], fields[3]
    if not isinstance(voters, list) or not isinstance(learners, list):
        raise WireError("bad-field", "voters and learners must be arrays")
    try:
        conf = ConfState.from_fields(voters, learners, fields[4:])
    except ValueError as exc:
        raise WireError("bad-field", f"snapshot conf: {exc}") from None
    return SnapshotMeta(_uint(fields[0], "snapshot index"), _uint(fields[1], "snapshot term"), conf)


def _request_vote(src: int, p: list[Any]) -> RequestVote:
    _arity(p, 6, "RequestVote")
    return RequestVote(src, _uint(p[0], "dst"), _uint(p[1], "term"), _uint(p[2], "last_log_index"),
                       _uint(p[3], "last_log_term"), _bool(p[4], "pre_vote"), _bool(p[5], "transfer"))


def _vote_response(src: int, p: list[Any]) -> RequestVoteResponse:
    _arity(p, 4, "RequestVoteResponse")
    return RequestVoteResponse(src, _uint(p[0], "dst"), _uint(p[1], "term"), _bool(p[2], "granted"),
                               _bool(p[3], "pre_vote"))


def _append(src: int, p: list[Any]) -> AppendEntries:
    _arity(p, 6, "AppendEntries")
    dst, term, prev, prev_term, raw, commit = p
    if not (type(dst) is int and type(term) is int and type(prev) is int and type(prev_term) is int
            and type(commit) is int and 0 <= dst <= _U64 and 0 <= term <= _U64 and 0 <= prev <= _U64
            and 0 <= prev_term <= _U64 and 0 <= commit <= _U64):  # else the checks name the field
        dst, term, prev = _uint(dst, "dst"), _uint(term, "term"), _uint(prev, "prev_log_index")
        prev_term, commit = _uint(prev_term, "prev_log_term"), _uint(commit, "leader_commit")
    if type(raw) is not list:
        raise WireError("bad-field", "entries must be an array")
    if raw:
        entries = tuple([_entry(e) for e in raw])
        expected = prev
        for e in entries:
            expected += 1
            if e.index != expected:
                raise WireError("bad-field", f"entries not contiguous after {prev}: {e.index}")
    else:
        entries = ()
    return AppendEntries(src, dst, term, prev, prev_term, entries, commit)


def _append_response(src: int, p: list[Any]) -> AppendEntriesResponse:
    # Fast path (every put's acknowledgement): exact types and ranges in one go; any
    # doubt takes the checks below, which name what is wrong.
    if len(p) == 6:
        dst, term, success, index, hint_index, hint_term = p
        if (type(dst) is int and type(term) is int and type(success) is bool and type(index) is int
                and type(hint_index) is int and type(hint_term) is int and 0 <= dst <= _U64
                and 0 <= term <= _U64 and 0 <= index <= _U64 and 0 <= hint_index <= _U64
                and 0 <= hint_term <= _U64):
            return AppendEntriesResponse(src, dst, term, success, index, hint_index, hint_term)
    _arity(p, 6, "AppendEntriesResponse")
    return AppendEntriesResponse(src, _uint(p[0], "dst"), _uint(p[1], "term"), _bool(p[2], "success"),
                                 _uint(p[3], "index"), _uint(p[4], "hint_index"), _uint(p[5], "hint_term"))


def _heartbeat(src: int, p: list[Any]) -> Heartbeat:
    if len(p) == 4:  # fast path, as in _append_response
        dst, term, commit, ctx = p
        if (type(dst) is int and type(term) is int and type(commit) is int and type(ctx) is bytes
                and 0 <= dst <= _U64 and 0 <= term <= _U64 and 0 <= commit <= _U64):
            return Heartbeat(src, dst, term, commit, ctx)
    _arity(p, 4, "Heartbeat")
    return Heartbeat(src, _uint(p[0], "dst"), _uint(p[1], "term"), _uint(p[2], "commit"), _bytes(p[3], "ctx"))


def _heartbeat_response(src: int, p: list[Any]) -> HeartbeatResponse:
    if len(p) == 3:  # fast path, as in _append_response
        dst, term, ctx = p
        if type(dst) is int and type(term) is int and type(ctx) is bytes and 0 <= dst <= _U64 and 0 <= term <= _U64:
            return HeartbeatResponse(src, dst, term, ctx)
    _arity(p, 3, "HeartbeatResponse")
    return HeartbeatResponse(src, _uint(p[0], "dst"), _uint(p[1], "term"), _bytes(p[2], "ctx"))


def _install_snapshot(src: int, p: list[Any]) -> InstallSnapshot:
    _arity(p, 3, "InstallSnapshot")
    meta = _meta(p[2])
    return InstallSnapshot(src, _uint(p[0], "dst"), _uint(p[1], "term"), Snapshot(meta, None))


def _timeout_now(src: int, p: list[Any]) -> TimeoutNow:
    _arity(p, 2, "TimeoutNow")
    return TimeoutNow(src, _uint(p[0], "dst"), _uint(p[1], "term"))


def _read_index_request(src: int, p: list[Any]) -> ReadIndexRequest:
    _arity(p, 3, "ReadIndexRequest")
    return ReadIndexRequest(src, _uint(p[0], "dst"), _uint(p[1], "term"), _bytes(p[2], "ctx"))


def _read_index_response(src: int, p: list[Any]) -> ReadIndexResponse:
    _arity(p, 4, "ReadIndexResponse")
    return ReadIndexResponse(src, _uint(p[0], "dst"), _uint(p[1], "term"), _bytes(p[2], "ctx"),
                             _uint(p[3], "index"))


def _snapshot_chunk(src: int, p: list[Any]) -> SnapshotChunk:
    _arity(p, 6, "SnapshotChunk")
    return SnapshotChunk(src, _uint(p[0], "dst"), _uint(p[1], "term"), _meta(p[2]), _uint(p[3], "offset"),
                         _bytes(p[4], "data"), _bool(p[5], "done"))


def _snapshot_chunk_ack(src: int, p: list[Any]) -> SnapshotChunkAck:
    _arity(p, 4, "SnapshotChunkAck")
    return SnapshotChunkAck(src, _uint(p[0], "dst"), _uint(p[1], "term"), _uint(p[2], "index"),
                            _uint(p[3], "received"))


def _hash_kv_request(src: int, p: list[Any]) -> HashKVRequest:
    _arity(p, 3, "HashKVRequest")
    return HashKVRequest(src, _uint(p[0], "dst"), _uint(p[1], "check"), _uint(p[2], "revision"))


def _hash_kv_response(src: int, p: list[Any]) -> HashKVResponse:
    _arity(p, 7, "HashKVResponse")
    outcome = _uint(p[3], "outcome")
    if outcome not in HashOutcome._value2member_map_:
        raise WireError("bad-field", f"HashKVResponse outcome {outcome}")
    return HashKVResponse(src, _uint(p[0], "dst"), _uint(p[1], "check"), _uint(p[2], "revision"),
                          HashOutcome(outcome), _uint(p[4], "hash"), _uint(p[5], "current_revision"),
                          _uint(p[6], "compact_revision"))


def _alarm_report(src: int, p: list[Any]) -> AlarmReport:
    _arity(p, 2, "AlarmReport")
    return AlarmReport(src, _uint(p[0], "dst"), _uint(p[1], "alarm"))


_DECODERS: dict[int, Callable[[int, list[Any]], PeerMessage]] = {
    1: _request_vote, 2: _vote_response, 3: _append, 4: _append_response, 5: _heartbeat,
    6: _heartbeat_response, 7: _install_snapshot, 8: _timeout_now, 9: _read_index_request,
    10: _read_index_response, 11: _snapshot_chunk, 12: _snapshot_chunk_ack,
    13: _hash_kv_request, 14: _hash_kv_response, 15: _alarm_report,
}
