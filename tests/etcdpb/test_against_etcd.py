"""Our generated stubs and messages against a real etcd 3.4 server: if etcd understands
our bytes and we understand etcd's, every etcd client will understand a member that
serves these modules. One single-member etcd per test module, on free loopback ports in
a tmp dir, ended by pid; skipped when the `etcd` binary is not installed."""
from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest

from cluster.etcdpb import kv_pb2, rpc_pb2, rpc_pb2_grpc, v3election_pb2, v3election_pb2_grpc, v3lock_pb2, v3lock_pb2_grpc
from tests.etcd.reference_etcd import ETCD, reference_etcd

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.skipif(ETCD is None, reason="the etcd 3.4 server binary is not installed"),
]
RPC_TIMEOUT = 5.0


@pytest.fixture(scope="module")
def etcd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[grpc.Channel]:
    with reference_etcd(tmp_path_factory.mktemp("etcd")) as server, grpc.insecure_channel(server.endpoint) as channel:
        yield channel


def test_put_then_range_returns_the_value_and_etcds_header(etcd: grpc.Channel) -> None:
    kv = rpc_pb2_grpc.KVStub(etcd)
    put = kv.Put(rpc_pb2.PutRequest(key=b"pb/a", value=b"\x00one"), timeout=RPC_TIMEOUT)
    got = kv.Range(rpc_pb2.RangeRequest(key=b"pb/a"), timeout=RPC_TIMEOUT)
    assert put.header.revision > 1 and put.header.cluster_id != 0 and put.header.raft_term >= 2
    assert [(item.key, item.value, item.mod_revision) for item in got.kvs] == [(b"pb/a", b"\x00one", put.header.revision)]
    assert got.count == 1


def test_a_txn_with_a_compare_and_both_branches(etcd: grpc.Channel) -> None:
    kv = rpc_pb2_grpc.KVStub(etcd)
    kv.Put(rpc_pb2.PutRequest(key=b"pb/t", value=b"v1"), timeout=RPC_TIMEOUT)
    compare = rpc_pb2.Compare(result=rpc_pb2.Compare.EQUAL, target=rpc_pb2.Compare.VALUE, key=b"pb/t", value=b"v1")
    txn = rpc_pb2.TxnRequest(
        compare=[compare],
        success=[rpc_pb2.RequestOp(request_put=rpc_pb2.PutRequest(key=b"pb/t", value=b"v2", prev_kv=True))],
        failure=[rpc_pb2.RequestOp(request_range=rpc_pb2.RangeRequest(key=b"pb/t"))],
    )
    first = kv.Txn(txn, timeout=RPC_TIMEOUT)
    second = kv.Txn(txn, timeout=RPC_TIMEOUT)
    assert first.succeeded and first.responses[0].response_put.prev_kv.value == b"v1"
    assert not second.succeeded and second.responses[0].response_range.kvs[0].value == b"v2"


def test_a_watch_stream_sees_a_put_and_a_delete(etcd: grpc.Channel) -> None:
    kv = rpc_pb2_grpc.KVStub(etcd)
    start = kv.Put(rpc_pb2.PutRequest(key=b"pb/w/x", value=b"1"), timeout=RPC_TIMEOUT).header.revision
    kv.DeleteRange(rpc_pb2.DeleteRangeRequest(key=b"pb/w/x"), timeout=RPC_TIMEOUT)
    create = rpc_pb2.WatchCreateRequest(key=b"pb/w/", range_end=b"pb/w0", start_revision=start, prev_kv=True)
    stream = rpc_pb2_grpc.WatchStub(etcd).Watch(iter([rpc_pb2.WatchRequest(create_request=create)]), timeout=RPC_TIMEOUT)
    events: list[kv_pb2.Event] = []
    for response in stream:
        assert not response.canceled, response.cancel_reason
        events.extend(response.events)
        if len(events) >= 2:
            stream.cancel()
            break
    assert [(e.type, e.kv.key) for e in events] == [(kv_pb2.Event.PUT, b"pb/w/x"), (kv_pb2.Event.DELETE, b"pb/w/x")]
    assert events[1].prev_kv.value == b"1"


def test_lease_grant_time_to_live_and_keep_alive(etcd: grpc.Channel) -> None:
    lease = rpc_pb2_grpc.LeaseStub(etcd)
    granted = lease.LeaseGrant(rpc_pb2.LeaseGrantRequest(TTL=30), timeout=RPC_TIMEOUT)
    rpc_pb2_grpc.KVStub(etcd).Put(rpc_pb2.PutRequest(key=b"pb/l", value=b"v", lease=granted.ID), timeout=RPC_TIMEOUT)
    ttl = lease.LeaseTimeToLive(rpc_pb2.LeaseTimeToLiveRequest(ID=granted.ID, keys=True), timeout=RPC_TIMEOUT)
    kept = next(iter(lease.LeaseKeepAlive(iter([rpc_pb2.LeaseKeepAliveRequest(ID=granted.ID)]), timeout=RPC_TIMEOUT)))
    assert (granted.TTL, ttl.grantedTTL, list(ttl.keys)) == (30, 30, [b"pb/l"])
    assert (kept.ID, kept.TTL) == (granted.ID, 30)
    lease.LeaseRevoke(rpc_pb2.LeaseRevokeRequest(ID=granted.ID), timeout=RPC_TIMEOUT)


def test_member_list_and_status_parse(etcd: grpc.Channel) -> None:
    members = rpc_pb2_grpc.ClusterStub(etcd).MemberList(rpc_pb2.MemberListRequest(), timeout=RPC_TIMEOUT).members
    status = rpc_pb2_grpc.MaintenanceStub(etcd).Status(rpc_pb2.StatusRequest(), timeout=RPC_TIMEOUT)
    assert [(m.name, m.isLearner) for m in members] == [("ref", False)]
    assert status.version.startswith("3.4.") and status.leader == members[0].ID and not status.isLearner


def test_lock_and_election_services(etcd: grpc.Channel) -> None:
    lease_id = rpc_pb2_grpc.LeaseStub(etcd).LeaseGrant(rpc_pb2.LeaseGrantRequest(TTL=30), timeout=RPC_TIMEOUT).ID
    lock = v3lock_pb2_grpc.LockStub(etcd)
    held = lock.Lock(v3lock_pb2.LockRequest(name=b"pb-lock", lease=lease_id), timeout=RPC_TIMEOUT)
    assert held.key.startswith(b"pb-lock/")
    lock.Unlock(v3lock_pb2.UnlockRequest(key=held.key), timeout=RPC_TIMEOUT)
    election = v3election_pb2_grpc.ElectionStub(etcd)
    won = election.Campaign(v3election_pb2.CampaignRequest(name=b"pb-vote", lease=lease_id, value=b"me"),
                            timeout=RPC_TIMEOUT)
    leader = election.Leader(v3election_pb2.LeaderRequest(name=b"pb-vote"), timeout=RPC_TIMEOUT)
    assert (leader.kv.key, leader.kv.value, leader.kv.create_revision) == (won.leader.key, b"me", won.leader.rev)
    election.Resign(v3election_pb2.ResignRequest(leader=won.leader), timeout=RPC_TIMEOUT)
    rpc_pb2_grpc.LeaseStub(etcd).LeaseRevoke(rpc_pb2.LeaseRevokeRequest(ID=lease_id), timeout=RPC_TIMEOUT)
