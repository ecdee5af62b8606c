"""The etcdserverpb.Cluster service: MemberList, MemberAdd, MemberRemove,
MemberUpdate, MemberPromote, over jangada's membership changes (the native
"members" and "conf" requests; docs/operations.md, "Changing membership").

How a jangada member looks to etcd's clients:

* ID: the node id. etcd draws random 64-bit ids; jangada's are small integers
  that are never reused, so MemberAdd takes one larger than any it has seen.
* name: "node-<id>" once the member has started; "" for one added but never
  started, as etcd shows it. As in etcd, a started member is one whose own
  addresses are in the replicated book: an initial member, one added with them,
  or one that published them when it started (node/etcd/publish.py), so the
  name and the client URLs appear together.
* peerURLs: the peer address tcp://HOST:PORT shown as http://HOST:PORT (jangada's
  Raft traffic is ZeroMQ over TCP: one address, no TLS, so a MemberAdd or
  MemberUpdate must name exactly one http:// URL).
* clientURLs: the member's etcd gRPC URL, the endpoint etcd clients dial (empty
  when it has none, or is not known yet).

Membership requests go to the leader (the link carries them there, as etcd's
server forwards them); a change the leader cannot take yet (another is pending)
is retried until the request timeout, as etcd queues it. Failures are etcd's
errors: the face checks the member list first (unknown id, not a learner, a
peer URL in use) as etcd's cluster does, and maps the node's refusals.
"""
from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import grpc

from cluster.etcdpb import rpc_pb2, rpc_pb2_grpc
from node.etcd import errors
from node.etcd.credentials import Credentials
from node.etcd.header import Headers
from node.etcd.link import NodeLink

#: How many fresh ids MemberAdd tries when the leader names one a former member's.
ID_ATTEMPTS = 16
_REUSED_ID = "ids are never reused"


def peer_url(address: str) -> str:
    """A jangada peer address (tcp://HOST:PORT) as etcd shows a peer URL."""
    return "http://" + address.removeprefix("tcp://") if address else ""


def peer_address(url: str) -> str:
    """The peer address for an etcd peer URL; raises EtcdError(MEMBER_BAD_URLS)
    when etcd would refuse it (types.NewURLs) or jangada cannot dial it (only
    http://HOST:PORT: the peer transport is plain TCP)."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise errors.EtcdError(errors.MEMBER_BAD_URLS, f"not a URL: {url!r}") from None
    if parts.scheme != "http" or not parts.hostname or port is None or parts.path or parts.query:
        raise errors.EtcdError(errors.MEMBER_BAD_URLS, f"not an http://HOST:PORT URL: {url!r}")
    return f"tcp://{parts.netloc}"


def member_message(member: dict[str, Any], started: bool) -> rpc_pb2.Member:
    node_id = int(member["id"])
    grpc_url = member.get("grpc") or ""
    return rpc_pb2.Member(ID=node_id, name=f"node-{node_id}" if started else "",
                          peerURLs=[peer_url(member["peer"])] if member.get("peer") else [],
                          clientURLs=[grpc_url] if grpc_url else [], isLearner=not member["voter"])


def is_started(member: dict[str, Any]) -> bool:
    """Whether the member has run: its own addresses are in the book."""
    return bool(member.get("client") or member.get("grpc"))


def member_messages(view: dict[str, Any]) -> list[rpc_pb2.Member]:
    return [member_message(m, is_started(m)) for m in view["members"]]


class ClusterService(rpc_pb2_grpc.ClusterServicer):
    def __init__(self, link: NodeLink, headers: Headers, credentials: Credentials | None = None) -> None:
        self._link = link
        self._headers = headers
        self._credentials = credentials or Credentials(link)
        self._highest_id = 0  # the largest member id this face has seen

    async def _members(self, leader_only: bool = False) -> dict[str, Any]:
        view = await self._link.members(leader_only)
        self._highest_id = max([self._highest_id, *(int(m["id"]) for m in view["members"])])
        return view

    async def _change(self, context: Any, change: str, node_id: int, **addresses: str) -> dict[str, Any]:
        """A membership change, acting with the call's token (root only while auth is on)."""
        try:
            token = await self._credentials.token(context)
            return await self._link.conf_change(change, node_id, token=token, **addresses)
        except errors.EtcdError as error:
            raise _conf_error(change, error) from None

    @staticmethod
    def _find(view: dict[str, Any], node_id: int) -> dict[str, Any]:
        for member in view["members"]:
            if int(member["id"]) == node_id:
                return member
        raise errors.EtcdError(errors.MEMBER_NOT_FOUND, f"no member {node_id}")

    async def MemberList(self, request: rpc_pb2.MemberListRequest, context: Any) -> rpc_pb2.MemberListResponse:
        # The leader's view when there is a leader (it alone knows which learners it
        # has reached: their names); this node's own otherwise, as etcd answers
        # without a leader too.
        status = await self._link.status()
        view = await self._members(leader_only=bool(status.get("leader_id")))
        return rpc_pb2.MemberListResponse(header=self._headers.make(), members=member_messages(view))

    async def MemberAdd(self, request: rpc_pb2.MemberAddRequest, context: Any) -> rpc_pb2.MemberAddResponse:
        if len(request.peerURLs) != 1:
            # etcd: no URL is invalid; jangada's members have exactly one peer address
            raise errors.EtcdError(errors.MEMBER_BAD_URLS, f"{len(request.peerURLs)} peer URLs")
        peer = peer_address(request.peerURLs[0])
        view = await self._members(leader_only=True)
        if any(m.get("peer") == peer for m in view["members"]):
            raise errors.EtcdError(errors.PEER_URL_EXIST, peer)
        change = "add-learner" if request.isLearner else "add-voter"
        node_id = self._highest_id + 1
        for _ in range(ID_ATTEMPTS):
            self._highest_id = max(self._highest_id, node_id)
            try:
                after = await self._change(context, change, node_id, peer=peer)
            except errors.EtcdError as error:
                if _REUSED_ID in error.detail:
                    node_id += 1  # a former member's id this face never saw
                    continue
                raise
            break
        else:
            raise errors.EtcdError(errors.MEMBER_EXIST, f"no fresh id after {node_id}")
        added = rpc_pb2.Member(ID=node_id, peerURLs=[peer_url(peer)], isLearner=request.isLearner)
        return rpc_pb2.MemberAddResponse(header=self._headers.make(), member=added, members=member_messages(after))

    async def MemberRemove(self, request: rpc_pb2.MemberRemoveRequest,
                           context: Any) -> rpc_pb2.MemberRemoveResponse:
        self._find(await self._members(), request.ID)
        after = await self._change(context, "remove", request.ID)
        return rpc_pb2.MemberRemoveResponse(header=self._headers.make(), members=member_messages(after))

    async def MemberUpdate(self, request: rpc_pb2.MemberUpdateRequest,
                           context: Any) -> rpc_pb2.MemberUpdateResponse:
        view = await self._members(leader_only=True)
        member = self._find(view, request.ID)
        if len(request.peerURLs) != 1:
            raise errors.EtcdError(errors.MEMBER_BAD_URLS, f"{len(request.peerURLs)} peer URLs")
        peer = peer_address(request.peerURLs[0])
        if any(m.get("peer") == peer and int(m["id"]) != request.ID for m in view["members"]):
            raise errors.EtcdError(errors.PEER_URL_EXIST, peer)
        # an update replaces the member's addresses: keep the others as they are
        after = await self._change(context, "update", request.ID, peer=peer, client=member.get("client") or "",
                                   grpc=member.get("grpc") or "", gateway=member.get("gateway") or "")
        return rpc_pb2.MemberUpdateResponse(header=self._headers.make(), members=member_messages(after))

    async def MemberPromote(self, request: rpc_pb2.MemberPromoteRequest,
                            context: Any) -> rpc_pb2.MemberPromoteResponse:
        member = self._find(await self._members(leader_only=True), request.ID)
        if member["voter"]:
            raise errors.EtcdError(errors.MEMBER_NOT_LEARNER, f"node {request.ID} is a voter")
        after = await self._change(context, "promote", request.ID)
        return rpc_pb2.MemberPromoteResponse(header=self._headers.make(), members=member_messages(after))


def _conf_error(change: str, error: errors.EtcdError) -> errors.EtcdError:
    """etcd's error for a conf change the leader refused (the checks above make
    these races: the membership changed in between)."""
    detail = error.detail
    if error.status is errors.LEARNER_NOT_READY or (
            change == "promote" and error.code is grpc.StatusCode.FAILED_PRECONDITION):
        return errors.EtcdError(errors.LEARNER_NOT_READY, detail)  # the native `refused`: it lags
    if error.code is not grpc.StatusCode.INVALID_ARGUMENT or _REUSED_ID in detail:
        return error
    if "not a member" in detail:
        return errors.EtcdError(errors.MEMBER_NOT_FOUND, detail)
    if "cannot promote" in detail:
        return errors.EtcdError(errors.MEMBER_NOT_LEARNER, detail)
    if "already" in detail:
        return errors.EtcdError(errors.MEMBER_EXIST, detail)
    if "last voter" in detail:
        return errors.EtcdError(errors.MEMBER_NOT_ENOUGH_STARTED, detail)
    return error
