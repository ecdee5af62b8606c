"""The etcdserverpb.Lease service: LeaseGrant, LeaseRevoke, LeaseKeepAlive,
LeaseTimeToLive, LeaseLeases, on the KV API's lease requests (docs/leases.md).

Grant and revoke are commands that go through the log (written by the leader,
carried there by the link). Keepalive, time-to-live and the lease list are
answered by the leader from its clock and applied state, never logged; the
link carries them to the leader, as an etcd follower forwards them to its
leader. The keepalive stream asks the *current* leader for each request, so a
stream opened on a follower outlives a leader change: a keepalive that met a
dead leader is asked again of whoever leads now, within the request timeout.

etcd's answers where a lease is missing are not errors: a keepalive answers
TTL 0 and a time-to-live answers TTL -1 (etcdserver/api/v3rpc/lease.go); only
revoke fails with "requested lease not found". A TTL below etcd's minimum
(1.5 election timeouts, rounded up to whole seconds: etcdserver/server.go
minTTL) is raised to it, as etcd's lessor does, rather than refused.
"""
from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator
from typing import Any

from cluster import kv
from cluster.etcdpb import rpc_pb2, rpc_pb2_grpc
from cluster.spec import TimingSpec
from node.etcd import calls, errors
from node.etcd.credentials import Credentials
from node.etcd.header import Headers
from node.etcd.link import NodeLink

#: A lease query that met a dead leader is asked again after this pause (the
#: link has forgotten that leader, so the next try asks this node who leads).
REQUERY_PAUSE = 0.05
#: What a query may be asked again for: the leader it was sent to is unreachable.
#: A query changes nothing but a deadline, so asking twice is harmless; grants
#: and revokes are not retried (their outcome is unknown), as etcd's are not.
_REQUERY = (errors.TIMEOUT_LEADER_FAIL,)


def min_lease_ttl(timing: TimingSpec) -> int:
    """etcd's minimum lease TTL: 1.5 election timeouts in whole seconds, rounded
    up (etcd: (3*ElectionTicks)/2 heartbeats). A shorter lease could expire
    during an election, before any leader could renew it."""
    return max(1, math.ceil((3 * timing.election_ticks // 2) * timing.tick_ms / 1000))


class LeaseService(rpc_pb2_grpc.LeaseServicer):
    def __init__(self, link: NodeLink, headers: Headers, min_ttl: int = 1,
                 credentials: Credentials | None = None) -> None:
        self._link = link
        self._headers = headers
        self._min_ttl = min_ttl
        self._credentials = credentials or Credentials(link)

    async def _run(self, request: kv.Request, token: str = "") -> kv.Response:
        """One lease request at the leader, acting with `token`; a KV API failure becomes etcd's error."""
        result = kv.decode_result(await self._link.kv(kv.encode_command(request), leader_only=True, token=token))
        if isinstance(result, kv.KvError):
            raise errors.from_kv_error(result)
        return result

    async def _query(self, request: kv.Request, token: str = "") -> kv.Response:
        """A lease query (never logged) at the current leader, asked again while
        the leader it went to is gone. A new try starts only within the request
        timeout; one that started in time may end later (a leader that died with
        the query in flight is noticed by the link's own timeout)."""
        deadline = time.monotonic() + self._link.request_timeout
        while True:
            try:
                return await self._run(request, token)
            except errors.EtcdError as error:
                if error.status not in _REQUERY:
                    raise
                await asyncio.sleep(REQUERY_PAUSE)
                if time.monotonic() >= deadline:
                    raise

    async def _local_revision(self) -> int:
        """This member's revision, for the header of an answer that read no lease
        (etcd fills it from its own store: v3rpc header.fill)."""
        return int((await self._link.status()).get("revision", 0))

    async def LeaseGrant(self, request: rpc_pb2.LeaseGrantRequest, context: Any) -> rpc_pb2.LeaseGrantResponse:
        if request.ID < 0:
            # etcd accepts any int64 id; jangada's lease ids are non-negative.
            raise errors.invalid("jangada lease IDs are non-negative")
        ttl = max(request.TTL, self._min_ttl)
        grant = kv.LeaseGrant(ttl, request.ID)
        result = await self._credentials.call(context, lambda token: self._run(grant, token))
        assert isinstance(result, kv.LeaseGrantResponse)
        return rpc_pb2.LeaseGrantResponse(header=self._headers.make(result.revision), ID=result.id, TTL=result.ttl)

    async def LeaseRevoke(self, request: rpc_pb2.LeaseRevokeRequest, context: Any) -> rpc_pb2.LeaseRevokeResponse:
        if request.ID <= 0:
            raise errors.EtcdError(errors.LEASE_NOT_FOUND)  # no lease ever has such an id
        revoke = kv.LeaseRevoke(request.ID)
        result = await self._credentials.call(context, lambda token: self._run(revoke, token))
        assert isinstance(result, kv.LeaseRevokeResponse)
        return rpc_pb2.LeaseRevokeResponse(header=self._headers.make(result.revision))

    async def LeaseTimeToLive(self, request: rpc_pb2.LeaseTimeToLiveRequest,
                              context: Any) -> rpc_pb2.LeaseTimeToLiveResponse:
        try:
            if request.ID <= 0:
                raise errors.EtcdError(errors.LEASE_NOT_FOUND)
            query = kv.LeaseTimeToLive(request.ID, request.keys)
            result = await self._credentials.call(context, lambda token: self._query(query, token))
        except errors.EtcdError as error:
            if error.status is not errors.LEASE_NOT_FOUND:
                raise
            # etcd 3.4 answers a missing lease with TTL -1, not an error.
            return rpc_pb2.LeaseTimeToLiveResponse(header=self._headers.make(await self._local_revision()),
                                                   ID=request.ID, TTL=-1)
        assert isinstance(result, kv.LeaseTimeToLiveResponse)
        return rpc_pb2.LeaseTimeToLiveResponse(header=self._headers.make(result.revision), ID=result.id,
                                               TTL=result.ttl, grantedTTL=result.granted_ttl, keys=result.keys)

    async def LeaseLeases(self, request: rpc_pb2.LeaseLeasesRequest, context: Any) -> rpc_pb2.LeaseLeasesResponse:
        result = await self._credentials.call(context, lambda token: self._query(kv.LeaseLeases(), token))
        assert isinstance(result, kv.LeaseLeasesResponse)
        return rpc_pb2.LeaseLeasesResponse(header=self._headers.make(result.revision),
                                           leases=[rpc_pb2.LeaseStatus(ID=lease_id) for lease_id in result.ids])

    async def keepalive(self, lease_id: int, token: str = "") -> rpc_pb2.LeaseKeepAliveResponse:
        """One renewal; a lease that is gone answers TTL 0, as etcd's does."""
        try:
            if lease_id <= 0:
                raise errors.EtcdError(errors.LEASE_NOT_FOUND)
            result = await self._query(kv.LeaseKeepAlive(lease_id), token)
        except errors.EtcdError as error:
            if error.status is not errors.LEASE_NOT_FOUND:
                raise
            return rpc_pb2.LeaseKeepAliveResponse(header=self._headers.make(await self._local_revision()),
                                                  ID=lease_id, TTL=0)
        assert isinstance(result, kv.LeaseKeepAliveResponse)
        return rpc_pb2.LeaseKeepAliveResponse(header=self._headers.make(result.revision), ID=lease_id, TTL=result.ttl)

    @calls.streaming
    async def LeaseKeepAlive(self, requests: AsyncIterator[rpc_pb2.LeaseKeepAliveRequest],
                             context: Any) -> AsyncIterator[rpc_pb2.LeaseKeepAliveResponse]:
        """Each request answered in turn; a failure other than a missing lease
        (no leader within the request timeout) ends the stream with etcd's
        status, as etcd's server does, and clientv3 opens a new one. The stream's
        token (its metadata at the start) is every renewal's."""
        token = await self._credentials.token(context)
        async for request in requests:
            try:
                response = await self.keepalive(request.ID, token)
            except errors.EtcdError as error:
                await calls.abort(context, error)
                return
            yield response
