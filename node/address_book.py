"""Who is in the cluster and how to reach each member: the node's address book.

Theory of operation
-------------------
The Raft core knows the membership as ids (`ConfState`); the node must also know
each member's peer and client addresses. There are three sources, and together
they are complete and durable without a file of their own:

1. the cluster config's `[[members]]`: the *initial* cluster (a voter set the core
   boots with; nodes started with `--join` boot with an empty one);
2. every CONF_CHANGE entry's context: an ADD_LEARNER or ADD_VOTER carries the new
   member's addresses (`encode_context`), so whoever holds the log knows how to
   reach every member added since index 1; an UPDATE carries a member's new
   addresses (etcd's MemberUpdate), which replace its old ones once applied;
3. the snapshot: a log compacted past those entries would lose them, so every
   snapshot the node writes starts with one extra framed chunk, the *members
   frame* (`members_frame`): the membership and the addresses as of the
   snapshot's index. A node restored from a snapshot - a learner with an empty
   data directory, or a restart after compaction - reads it back first
   (`split_members`).

So on restart, config + snapshot + WAL give back every address; a node that joins
with an empty data directory asks an existing member (`python -m node --join`)
for the addresses it needs to answer the leader before it holds any log.

Two books are kept. `applied` is replicated state: the members as of the applied
index (it is deterministic, so every replica writes byte-identical members frames).
`known` is everything this node has heard of (applied, appended but not yet
committed, fetched at join time): the transport dials from it. An address is only
a way to reach an id, so knowing one too early or too long is harmless; which ids
are members is always the core's `ConfState`.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, cast

import msgpack

from cluster.protocol import ConfChangeRequest, ErrorCode, JointChangeRequest
from node.raft import ConfState, Entry, EntryKind, InvalidRequest, ProposalDropped, Role, Status
from node.raft.errors import LearnerLagging
from node.raft.types import ConfChange, ConfChangeKind, ConfChangeSingle, decode_conf_change, enter_joint

#: The members frame's first field: tells it from the state machine's header chunk
#: (["jangada-kv", ...]) so snapshots written before membership changes still load.
MEMBERS_MAGIC = "jangada-members"
MEMBERS_FORMAT = 1
#: Longest address of any kind; a context holds at most four of them plus their keys.
MAX_ADDRESS = 256
_MAX_CONTEXT = 6 * MAX_ADDRESS
#: The optional faces, in context-key and members-frame order.
_ETCD_FACES = ("grpc", "gateway")


@dataclass(frozen=True, slots=True)
class Address:
    """How to reach one member: its peer (Raft traffic) and client addresses, and its
    etcd v3 faces (gRPC and HTTP gateway URLs). Only `peer` is always known: a member
    added through etcd's MemberAdd names peer URLs only, and "" means "none"
    (never dialled)."""

    peer: str
    client: str
    grpc: str = ""
    gateway: str = ""


def encode_context(address: Address) -> bytes:
    """An ADD_LEARNER's, ADD_VOTER's or UPDATE's context: the member's addresses. The
    etcd faces' keys appear only when set, so a context without them is byte for
    byte what older nodes wrote and read."""
    body = {"peer": address.peer, "client": address.client}
    body.update({key: getattr(address, key) for key in _ETCD_FACES if getattr(address, key)})
    return cast(bytes, msgpack.packb(body, use_bin_type=True))


def decode_context(data: bytes) -> Address | None:
    """The addresses in a conf change's context; None for anything else (a peer's
    bytes never raise). `peer` is required; the others may be empty or absent."""
    if not data or len(data) > _MAX_CONTEXT:
        return None
    try:
        obj = msgpack.unpackb(data, raw=False)
    except (ValueError, TypeError, msgpack.UnpackException):
        return None
    if not isinstance(obj, dict):
        return None
    peer, client = obj.get("peer"), obj.get("client", "")
    faces = [obj.get(key, "") for key in _ETCD_FACES]
    values = [peer, client, *faces]
    if not all(isinstance(v, str) and len(v) <= MAX_ADDRESS for v in values) or not peer:
        return None
    return Address(*values)


def updated(old: Address | None, new: Address) -> Address:
    """A member's addresses after an UPDATE (etcd's MemberUpdate changes peer URLs):
    the new peer, and each other address the update names; those it leaves empty
    stay as they were."""
    if old is None:
        return new
    return Address(new.peer, new.client or old.client, new.grpc or old.grpc, new.gateway or old.gateway)


def conf_change_of(entry: Entry) -> ConfChange | None:
    """The change a CONF_CHANGE entry carries (None if it does not decode: the core
    wrote it, so that would be a bug, but an address book must not fail-stop)."""
    if entry.kind is not EntryKind.CONF_CHANGE:
        return None
    try:
        return decode_conf_change(entry.data)
    except ValueError:
        return None


_KINDS = {"add-learner": ConfChangeKind.ADD_LEARNER, "promote": ConfChangeKind.PROMOTE,
          "remove": ConfChangeKind.REMOVE, "add-voter": ConfChangeKind.ADD_VOTER,
          "update": ConfChangeKind.UPDATE}
#: Changes whose context names the member's addresses.
ADDRESSED = frozenset({ConfChangeKind.ADD_LEARNER, ConfChangeKind.ADD_VOTER, ConfChangeKind.UPDATE})
#: Changes whose addresses may be dialled as soon as the entry is appended (an added
#: member counts as one from append on); an UPDATE's take effect when applied.
_ADDED = frozenset({ConfChangeKind.ADD_LEARNER, ConfChangeKind.ADD_VOTER})


def singles(cc: ConfChange) -> tuple[ConfChangeSingle, ...]:
    """The member-level changes `cc` makes: an ENTER_JOINT's list, else itself."""
    if cc.kind is ConfChangeKind.ENTER_JOINT:
        return cc.changes
    return (ConfChangeSingle(cc.kind, cc.node_id, cc.context),)


def conf_change_for(request: ConfChangeRequest) -> ConfChange:
    """The core's change for a client's request (addresses go into the context)."""
    kind = _KINDS[request.change]
    address = Address(request.peer, request.client, request.grpc, request.gateway)
    return ConfChange(kind, request.node, encode_context(address) if kind in ADDRESSED else b"")


def joint_change_for(request: JointChangeRequest) -> ConfChange:
    """The core's ENTER_JOINT for a client's multi-member change."""
    singles_ = []
    for ch in request.changes:
        kind = _KINDS[ch.change]
        address = Address(ch.peer, ch.client, ch.grpc, ch.gateway)
        singles_.append(ConfChangeSingle(kind, ch.node, encode_context(address) if kind in ADDRESSED else b""))
    return enter_joint(singles_, request.auto_leave)


def refusal_code(error: ProposalDropped | InvalidRequest) -> ErrorCode:
    """The client's code for a change (or transfer) the core refused: `refused` for
    a lagging learner (the reason says by how much), `busy` for what passes by
    itself (a change pending, a leader not ready yet, a transfer, backpressure),
    `invalid-request` for what makes no sense (adding twice, removing an unknown id
    or the last voter, promoting a voter, transferring to a learner)."""
    if isinstance(error, LearnerLagging):
        return ErrorCode.REFUSED
    if isinstance(error, ProposalDropped):
        return ErrorCode.BUSY
    return ErrorCode.INVALID_REQUEST


class Membership:
    """The address book (see the module docstring)."""

    def __init__(self, node_id: int, initial: Mapping[int, Address], conf: ConfState) -> None:
        self.id = node_id
        self.applied_conf = conf
        self.applied: dict[int, Address] = dict(initial)
        self.known: dict[int, Address] = dict(initial)

    # -- sources -------------------------------------------------------------------

    def learn(self, addresses: Mapping[int, Address]) -> None:
        """Addresses heard of outside the log (fetched at join time)."""
        for node_id, address in addresses.items():
            self.known.setdefault(node_id, address)

    def restore(self, conf: ConfState, addresses: Mapping[int, Address]) -> None:
        """A snapshot was installed: its members frame is the applied state now."""
        self.applied_conf = conf
        self.applied.update(addresses)
        self.known.update(addresses)

    def on_appended(self, entries: Iterable[Entry]) -> None:
        """Entries went into the log: an added member may be dialled at once (the
        core counts it as a member from append on)."""
        for entry in entries:
            cc = conf_change_of(entry)
            for ch in singles(cc) if cc is not None else ():
                if ch.kind in _ADDED:
                    address = decode_context(ch.context)
                    if address is not None:
                        self.known[ch.node_id] = address

    def on_applied(self, entry: Entry) -> ConfChange | None:
        """A committed CONF_CHANGE entry is applied: it is replicated state now."""
        cc = conf_change_of(entry)
        if cc is None:
            return None
        for ch in singles(cc):
            if ch.kind not in ADDRESSED:
                continue
            address = decode_context(ch.context)
            if address is not None:
                if ch.kind is ConfChangeKind.UPDATE:
                    address = updated(self.applied.get(ch.node_id), address)
                self.applied[ch.node_id] = address
                self.known[ch.node_id] = address
        if cc.result is not None:
            self.applied_conf = cc.result
        return cc

    # -- lookups -------------------------------------------------------------------

    def address(self, node_id: int) -> Address | None:
        return self.known.get(node_id)

    def client_address(self, node_id: int) -> str:
        found = self.known.get(node_id)
        return found.client if found else ""

    def members_frame(self, conf: ConfState) -> bytes:
        """The first chunk of every snapshot: `conf` (the membership at the snapshot's
        index) and its members' addresses as of the applied index (sorted: replicas
        at one index write identical bytes)."""
        ids = sorted(conf.ids())  # outgoing voters too, while joint
        rows = [[i, *(self._row(i))] for i in ids]
        return cast(bytes, msgpack.packb([MEMBERS_MAGIC, MEMBERS_FORMAT, sorted(conf.voters),
                                          sorted(conf.learners), rows], use_bin_type=True))

    def _row(self, node_id: int) -> tuple[str, ...]:
        """[peer, client], plus [grpc, gateway] when either is set: a cluster without
        etcd faces writes the rows older nodes read."""
        address = self.applied.get(node_id) or self.known.get(node_id)
        if address is None:
            return ("", "")
        if address.grpc or address.gateway:
            return (address.peer, address.client, address.grpc, address.gateway)
        return (address.peer, address.client)

    def view(self, st: Status) -> dict[str, Any]:
        """A MembersReply's body: the configuration in effect (`st` is the core's
        status), every member's addresses and, from the leader, each learner's
        match index and lag."""
        rows = []
        for node_id in sorted(set(st.voters) | set(st.learners) | set(st.voters_outgoing)):
            address = self.known.get(node_id)
            rows.append({"id": node_id, "peer": address.peer if address else "",
                         "client": address.client if address else "", "grpc": address.grpc if address else "",
                         "gateway": address.gateway if address else "",
                         "voter": node_id in st.voters or node_id in st.voters_outgoing,
                         "match": (st.learner_match or {}).get(node_id),
                         "lag": (st.learner_lag or {}).get(node_id)})
        return {"node_id": self.id, "voters": list(st.voters), "learners": list(st.learners),
                "voters_outgoing": list(st.voters_outgoing), "learners_next": list(st.learners_next),
                "members": rows, "leader_id": st.lead, "term": st.term, "last_index": st.last_index,
                "commit_index": st.commit, "from_leader": st.role is Role.LEADER}


def parse_members_frame(chunk: bytes) -> tuple[ConfState, dict[int, Address]] | None:
    """A members frame's content, or None if `chunk` is not one."""
    try:
        obj = msgpack.unpackb(chunk, raw=False, strict_map_key=False)
    except (ValueError, TypeError, msgpack.UnpackException):
        return None
    if not (isinstance(obj, list) and len(obj) == 5 and obj[0] == MEMBERS_MAGIC and obj[1] == MEMBERS_FORMAT):
        return None
    try:
        _, _, voters, learners, rows = obj
        addresses = {}
        for row in rows:
            # [id, peer, client] (older frames) or [id, peer, client, grpc, gateway].
            if not isinstance(row, list) or len(row) not in (3, 3 + len(_ETCD_FACES)):
                return None
            node_id, peer, *rest = row
            if peer:
                addresses[int(node_id)] = Address(*(str(v) for v in (peer, *rest)))
        return ConfState(tuple(int(v) for v in voters), tuple(int(v) for v in learners)), addresses
    except (ValueError, TypeError):
        return None


def split_members(chunks: Iterable[bytes]) -> tuple[tuple[ConfState, dict[int, Address]] | None, Iterator[bytes]]:
    """Separate a snapshot's members frame (if it has one: older snapshots do not)
    from the state machine's chunks that follow."""
    it = iter(chunks)
    first = next(it, None)
    if first is None:
        return None, iter(())
    members = parse_members_frame(first)
    if members is not None:
        return members, it
    return None, _prepend(first, it)


def _prepend(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    yield first
    yield from rest


def with_members(frame: bytes, chunks: Iterator[bytes]) -> Iterator[bytes]:
    """The chunk stream of a snapshot: the members frame, then the state machine's.
    Keeps `close` reaching the state machine's stream (it runs deferred compaction)."""
    return _WithMembers(frame, chunks)


class _WithMembers(Iterator[bytes]):
    def __init__(self, frame: bytes, chunks: Iterator[bytes]) -> None:
        self._frame: bytes | None = frame
        self._chunks = chunks

    def __next__(self) -> bytes:
        if self._frame is not None:
            frame, self._frame = self._frame, None
            return frame
        return next(self._chunks)

    def close(self) -> None:
        close = getattr(self._chunks, "close", None)
        if close is not None:
            close()
