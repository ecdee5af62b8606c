"""This node's side of the peer network: who it talks to, sending Raft messages
(and snapshot streams) to them, and vetting what arrives from them.

The transport (node/transport.py) moves frames and knows nothing about members;
this object decides which peers get a connection (`connect_members`), encodes
messages (node/wire.py), and turns an incoming frame into a message only if it
comes from someone allowed to talk to us (`receive`). It is `handle_ready`'s
peers port (node/ready_handler.py).
"""
from __future__ import annotations

from collections.abc import Callable

from node.address_book import Membership
from node.dropped_frames import DroppedFrames
from node.eventlog import EventLog
from node.raft import ConfState, Entry, InstallSnapshot, Message, RaftCore
from node.snapshot_transfer import SnapshotSenders
from node.transport import Transport
from node import wire
from node.wire import (
    AlarmReport, HashKVRequest, HashKVResponse, PeerMessage, SnapshotChunk, SnapshotChunkAck, WireError,
)


class PeerLink:
    def __init__(self, node_id: int, transport: Transport, membership: Membership, core: RaftCore,
                 cluster_id: str, max_message_bytes: int, chunk_bytes: int, clock: Callable[[], float],
                 dropped: DroppedFrames, log: EventLog) -> None:
        self.id = node_id
        self._transport = transport
        self._membership = membership
        self._core = core
        self._cluster_id = cluster_id
        self._max_message_bytes = max_message_bytes
        self._dropped = dropped
        self._log = log
        self.unreachable: set[int] = set()  # told to the core after `advance`
        self.senders = SnapshotSenders(chunk_bytes, clock, self.send_chunk, log)

    # -- who we talk to ----------------------------------------------------------------

    def peers(self) -> set[int]:
        """Who we talk to: the members of the configuration in effect, plus those of
        the last *applied* one and the leader we follow. A member being removed stays
        reachable until its removal commits: a leader removing itself still needs
        the followers' acknowledgements to commit that very change (thesis §4.2.2)."""
        core = self._core
        conf, applied = core.conf, self._membership.applied_conf
        return {*conf.ids(), *applied.ids(), core.lead} - {self.id, 0}  # outgoing voters too, while joint

    def connect_members(self) -> None:
        """One DEALER per peer (`peers`); none for anyone else. A member whose
        address is unknown is logged (messages to it are dropped and counted)."""
        members = self.peers()
        transport = self._transport
        for peer in list(transport.dealers):
            if peer not in members:
                transport.remove_peer(peer)
                self._log.info(f"disconnected from node {peer}: no longer a member")
        for peer in sorted(members):
            address = self._membership.address(peer)
            if address is None:
                self._log.warning(f"node {peer} is a member but its address is unknown")
            elif transport.addresses.get(peer) != address.peer:
                transport.add_peer(peer, address.peer)
                self._log.info(f"connected to node {peer} at {address.peer}")

    def update_members(self, appended: list[Entry], conf: ConfState | None) -> None:
        """Ready step 1: addresses from appended conf changes, then connect to every
        member of the configuration in effect."""
        if appended:
            self._membership.on_appended(appended)
        if conf is not None:
            self._log.info(f"membership in effect: voters {list(conf.voters)}, learners {list(conf.learners)}")
            self.connect_members()

    def dial(self, peer: int) -> bool:
        """Connect to a peer that is not (yet) a member of our configuration: a
        joining node answers the leader before its log says who the leader is."""
        address = self._membership.address(peer)
        if address is None or peer == self.id:
            return False
        self._transport.add_peer(peer, address.peer)
        return True

    # -- sending -------------------------------------------------------------------------

    def send(self, m: Message) -> None:
        """One Raft message; a snapshot becomes a stream of chunks (`senders`)."""
        if isinstance(m, InstallSnapshot):
            self.senders.start(m)
            return
        transport = self._transport
        if m.dst not in transport.dealers and not self.dial(m.dst):
            self._dropped.drop("peer-no-address", f"{type(m).__name__} to node {m.dst}")
            return
        if not transport.send_peer(m.dst, wire.encode(self._cluster_id, m)):
            self.unreachable.add(m.dst)

    def send_check(self, m: HashKVRequest | HashKVResponse | AlarmReport) -> None:
        """A corruption-check message (node/corruption_check.py): dropped and counted
        when the peer has no known address; lost like any frame when unreachable (the
        check skips members that do not answer)."""
        if m.dst not in self._transport.dealers and not self.dial(m.dst):
            self._dropped.drop("peer-no-address", f"{type(m).__name__} to node {m.dst}")
            return
        self._transport.send_peer(m.dst, wire.encode(self._cluster_id, m))

    def send_chunk(self, chunk: SnapshotChunk) -> bool:
        return self._transport.send_peer(chunk.dst, wire.encode(self._cluster_id, chunk))

    def acknowledge_chunk(self, chunk: SnapshotChunk, received: int) -> None:
        """Flow control for the leader's stream (node/snapshot_transfer.py): bytes written."""
        if chunk.src not in self._transport.dealers and not self.dial(chunk.src):
            return
        ack = SnapshotChunkAck(self.id, chunk.src, chunk.term, chunk.meta.index, received)
        self._transport.send_peer(chunk.src, wire.encode(self._cluster_id, ack))

    def report_unreachable(self) -> None:
        """Feedback for the core (after `advance`): peers whose queue was full."""
        core = self._core
        for peer in self.unreachable:
            core.report_unreachable(peer)
        self.unreachable.clear()

    # -- receiving -----------------------------------------------------------------------

    def receive(self, frames: list[bytes]) -> PeerMessage | None:
        """The message in one peer frame, or None if it is dropped (malformed, from
        someone not allowed to talk to us, spoofed, or cut by an injected partition).

        With CURVE the transport appends the member id the connection authenticated
        as (node/zap.py): a frame whose envelope names another sender is spoofed.
        Without CURVE nothing proves a sender (docs/security.md): the envelope's
        `src` is taken at its word, as the routing identity means nothing."""
        dropped = self._dropped
        authenticated = self._transport.curve is not None
        if authenticated:
            *frames, user = frames
        if len(frames) != 2:
            dropped.drop("peer-frame-count", f"{len(frames)} frames")
            return None
        data = frames[1]
        try:
            message = wire.decode(data, self._cluster_id, self._max_message_bytes)
        except WireError as error:
            dropped.drop(f"peer-{error.kind}", error.detail)
            return None
        if authenticated and user != str(message.src).encode():
            dropped.drop("peer-spoofed", f"{type(message).__name__} claiming node {message.src} "
                         f"on a connection authenticated as node {user.decode('ascii', 'replace') or '?'}")
            return None
        if not self._transport.accepts_from(message.src):
            return None  # an injected partition (drop-traffic request)
        if message.dst != self.id or message.src == self.id or not self._accepts_src(message.src):
            dropped.drop("peer-misaddressed", f"{type(message).__name__} {message.src}->{message.dst}")
            return None
        return message

    def _accepts_src(self, src: int) -> bool:
        """Only peers (`peers`: members, a member whose removal is not applied
        yet, the leader) may talk to us, so a removed node that keeps running cannot
        disturb the cluster -- unless we are not a member ourselves: a joining node
        hears from the leader before its log names anyone."""
        if src in self._transport.dealers or src in self.peers():
            return True
        conf = self._core.conf
        return self.id not in conf.ids()
