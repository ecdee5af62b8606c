"""The etcdserverpb.Maintenance service: Status, MoveLeader, Hash, HashKV, Alarm,
Snapshot, Defragment. What each answers, and where it differs from etcd 3.4:

* Status: `version` is the etcd API version jangada implements ("3.4.0"), not a
  jangada release: clients compare it with etcd versions. `dbSize` and
  `dbSizeInUse` are the node's WAL bytes on disk (jangada's store lives in memory;
  the WAL is what grows with writes and what a snapshot compacts); there are no
  free pages, so both are the same. `raftIndex` is the commit index,
  `raftAppliedIndex` the applied one; `errors` holds etcd's "no leader" when the
  node knows none, and each raised alarm as etcd 3.4 lists it ("memberID:N
  alarm:NOSPACE "). The store's accounted size (what the quota counts) is the
  node status's `db_size` (docs/operations.md, "Space").
* MoveLeader: only the leader takes it (etcd's "not leader" elsewhere; `etcdctl
  move-leader` finds the leader among its endpoints itself); the target must be a
  voter (etcd's "bad leader transferee"); the call returns once the target leads,
  or fails as etcd's does when that takes longer than the request timeout.
* HashKV / Hash: this replica's digest of its key-value history up to a revision /
  of its whole replicated state (node/statemachine/digest.py): equal on replicas
  at the same revision, but not etcd's numbers (CRC-32 over jangada's records).
* Alarm: GET, ACTIVATE and DEACTIVATE go through the log as etcd's (root only
  while auth is on) and answer etcd's AlarmResponse: GET every raised alarm (of
  one type unless NONE), ACTIVATE the alarm raised, DEACTIVATE the one cleared
  (none if it was not raised). A NOSPACE alarm is raised by the leader's node
  when the store reaches its quota (node/space_quota.py); while it is, writes get
  etcd's "database space exceeded" (docs/operations.md, "Space").
* Snapshot: streams the node's newest snapshot file, written now if the newest
  does not cover the applied index at the call (so it holds every write applied
  before the call), in 32 KiB messages with `remaining_bytes`, then the SHA-256
  of the bytes sent, as etcd does. The bytes are a jangada snapshot file padded
  with zeros to a multiple of 512 bytes (etcdctl checks that size mod 512 is the
  checksum's 32 bytes, as a bbolt file's is); `etcdctl snapshot status/restore`
  cannot read them (they expect bbolt).
* Defragment: nothing to do (an in-memory store has no free pages); succeeds.
"""
from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator
from typing import Any

import grpc

from cluster import kv
from cluster.etcdpb import rpc_pb2, rpc_pb2_grpc
from node.etcd import calls, errors
from node.etcd.credentials import Credentials
from node.etcd.header import Headers
from node.etcd.link import NodeLink

#: The etcd API version jangada's faces implement (what Status reports).
ETCD_API_VERSION = "3.4.0"
#: etcd's snapshot message size (maintenance.go: snapshotSendBufferSize).
SNAPSHOT_CHUNK_BYTES = 32 * 1024
#: etcdctl's hasChecksum: a snapshot's size modulo this is the checksum's size.
SNAPSHOT_ALIGN = 512
#: How often MoveLeader looks whether the target leads yet.
TRANSFER_POLL = 0.02
#: etcd's ErrTimeoutLeaderTransfer is not in its gRPC error map: it reaches the
#: client as Unknown with the error's text.
TIMEOUT_LEADER_TRANSFER = errors.EtcdStatus(grpc.StatusCode.UNKNOWN,
                                            "etcdserver: request timed out, leader transfer took too long")


def status_message(status: dict[str, Any], header: rpc_pb2.ResponseHeader) -> rpc_pb2.StatusResponse:
    """etcd's StatusResponse for a node status (node/member_status.py)."""
    leader = int(status.get("leader_id") or 0)
    wal_bytes = int(status.get("wal_bytes") or 0)
    return rpc_pb2.StatusResponse(
        header=header, version=ETCD_API_VERSION, dbSize=wal_bytes, dbSizeInUse=wal_bytes, leader=leader,
        raftIndex=int(status.get("commit_index") or 0), raftTerm=int(status.get("term") or 0),
        raftAppliedIndex=int(status.get("applied_index") or 0), isLearner=status.get("role") == "learner",
        errors=([] if leader else [errors.NO_LEADER.message])
        + [f"memberID:{a.get('member_id')} alarm:{a.get('alarm')} " for a in status.get("alarms", ())])


_ALARM_ACTIONS = frozenset(int(a) for a in kv.AlarmAction)
_ALARM_TYPES = frozenset(int(t) for t in kv.AlarmType)


class MaintenanceService(rpc_pb2_grpc.MaintenanceServicer):
    def __init__(self, link: NodeLink, headers: Headers, credentials: Credentials | None = None) -> None:
        self._link = link
        self._headers = headers
        self._credentials = credentials or Credentials(link)

    async def raised_alarms(self) -> list[str]:
        """The names of the alarms raised in the cluster, from this member's status
        (etcd's /health reads them inside the server: no log entry, no auth)."""
        status = await self._link.status()
        return [str(alarm.get("alarm")) for alarm in status.get("alarms", ())]

    def _header(self, status: dict[str, Any]) -> rpc_pb2.ResponseHeader:
        return self._headers.make(int(status.get("revision") or 0))

    async def Status(self, request: rpc_pb2.StatusRequest, context: Any) -> rpc_pb2.StatusResponse:
        status = await self._link.status()
        return status_message(status, self._header(status))

    async def MoveLeader(self, request: rpc_pb2.MoveLeaderRequest, context: Any) -> rpc_pb2.MoveLeaderResponse:
        link = self._link
        status = await link.status()
        if int(status.get("leader_id") or 0) != link.node_id:
            raise errors.EtcdError(errors.NOT_LEADER)
        target = request.targetID
        if target not in [int(v) for v in status.get("voters", [])]:
            raise errors.EtcdError(errors.BAD_LEADER_TRANSFEREE, f"node {target} is not a voter")
        if target != link.node_id:
            try:
                await link.transfer(target, await self._credentials.token(context))
            except errors.EtcdError as error:
                if error.code is grpc.StatusCode.INVALID_ARGUMENT:  # the core's refusal: not a voter now
                    raise errors.EtcdError(errors.BAD_LEADER_TRANSFEREE, error.detail) from None
                raise
            deadline = time.monotonic() + link.request_timeout
            while int(status.get("leader_id") or 0) != target:
                if time.monotonic() >= deadline:
                    raise errors.EtcdError(TIMEOUT_LEADER_TRANSFER, f"node {target} does not lead yet")
                await asyncio.sleep(TRANSFER_POLL)
                status = await link.status()
        return rpc_pb2.MoveLeaderResponse(header=self._header(status))

    async def HashKV(self, request: rpc_pb2.HashKVRequest, context: Any) -> rpc_pb2.HashKVResponse:
        digest = await self._link.hash(request.revision, token=await self._credentials.token(context))
        return rpc_pb2.HashKVResponse(header=self._headers.make(digest["revision"]), hash=digest["hash"],
                                      compact_revision=digest["compact_revision"])

    async def Hash(self, request: rpc_pb2.HashRequest, context: Any) -> rpc_pb2.HashResponse:
        digest = await self._link.hash(whole=True, token=await self._credentials.token(context))
        return rpc_pb2.HashResponse(header=self._headers.make(digest["revision"]), hash=digest["hash"])

    async def Alarm(self, request: rpc_pb2.AlarmRequest, context: Any) -> rpc_pb2.AlarmResponse:
        if request.action not in _ALARM_ACTIONS or request.alarm not in _ALARM_TYPES:
            # etcd's applier ignores an action it does not know (an empty answer) and
            # keeps an alarm type it does not know; here neither reaches the log.
            status = await self._link.status()
            return rpc_pb2.AlarmResponse(header=self._header(status))
        alarm = kv.Alarm(kv.AlarmAction(request.action), request.memberID, kv.AlarmType(request.alarm))
        data = await self._credentials.call(context, lambda token: self._link.kv(
            kv.encode_command(alarm), leader_only=True, token=token))
        result = kv.decode_result(data)
        if isinstance(result, kv.KvError):
            raise errors.from_kv_error(result)
        assert isinstance(result, kv.AlarmResponse)
        return rpc_pb2.AlarmResponse(header=self._headers.make(result.revision), alarms=[
            rpc_pb2.AlarmMember(memberID=a.member_id, alarm=a.alarm.name) for a in result.alarms])

    async def Defragment(self, request: rpc_pb2.DefragmentRequest, context: Any) -> rpc_pb2.DefragmentResponse:
        status = await self._link.status()
        return rpc_pb2.DefragmentResponse(header=self._header(status))

    @calls.streaming
    async def Snapshot(self, request: rpc_pb2.SnapshotRequest,
                       context: Any) -> AsyncIterator[rpc_pb2.SnapshotResponse]:
        try:
            status = await self._link.status()
            found = await self._link.snapshot_file(int(status.get("applied_index") or 0),
                                                   await self._credentials.token(context))
            # Opened at once: the file stays readable even if a newer snapshot prunes it.
            source = open(found["path"], "rb")
        except errors.EtcdError as error:
            await calls.abort(context, error)
            return
        except OSError as error:  # pruned between the answer and the open: rare, retryable
            await calls.abort(context, errors.EtcdError(errors.TIMEOUT, str(error)))
            return
        header = self._header(status)
        with source:
            size = int(found["size"])
            total = -(-size // SNAPSHOT_ALIGN) * SNAPSHOT_ALIGN
            checksum = hashlib.sha256()
            sent = 0
            while sent < total:
                want = min(SNAPSHOT_CHUNK_BYTES, total - sent)
                data = min(want, max(size - sent, 0))
                blob = source.read(data) if data else b""
                if len(blob) < data:
                    await calls.abort(context, errors.EtcdError(errors.CORRUPT, f"{found['path']} is truncated"))
                    return
                blob += bytes(want - data)  # the padding, in the last messages only
                sent += want
                checksum.update(blob)
                yield rpc_pb2.SnapshotResponse(header=header, remaining_bytes=total - sent, blob=blob)
        yield rpc_pb2.SnapshotResponse(header=header, remaining_bytes=0, blob=checksum.digest())
