"""etcdserverpb.Cluster on real jangada clusters (node/etcd/cluster.py): member
list, add, promote, remove and update through etcdctl and the Python stubs, and
the errors compared with a real etcd 3.4's."""
from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import grpc
import pytest

from cluster.etcdpb import rpc_pb2, rpc_pb2_grpc
from node.etcd import errors
from node.etcd.cluster import ClusterService
from node.etcd.gatewaycontext import GatewayContext
from node.etcd.header import Headers
from node.localcluster import LocalCluster, wait_for
from tests.etcd.conftest import etcdctl
from tests.etcd.reference_etcd import ReferenceEtcd, reference_etcd
from tests.etcd.stubs import RPC_TIMEOUT, failure, ready_channel

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def shared_cluster(shared_etcd_cluster: LocalCluster) -> LocalCluster:
    """The module's cluster, for the tests that only list members or are refused:
    the ones that add, remove or update members make their own (`etcd_cluster`)."""
    return shared_etcd_cluster


@pytest.fixture(scope="module")
def shared_ref(tmp_path_factory: pytest.TempPathFactory, shared_etcd_cluster: LocalCluster) -> Iterator[ReferenceEtcd]:
    """One etcd 3.4 for the module: it is only listed and refused. Started after the
    module's cluster, in the order the per-test fixtures had."""
    with reference_etcd(tmp_path_factory.mktemp("etcd-cluster")) as ref:
        yield ref


def cluster_stub(endpoint: str) -> tuple[grpc.Channel, rpc_pb2_grpc.ClusterStub]:
    channel = ready_channel(endpoint)
    return channel, rpc_pb2_grpc.ClusterStub(channel)


def peer_url(cluster: LocalCluster, node_id: int) -> str:
    return cluster.member(node_id).peer.replace("tcp://", "http://")


def member_list(endpoints: list[str]) -> list[dict[str, Any]]:
    return json.loads(etcdctl(endpoints, "member", "list", "-w", "json").stdout)["members"]


def test_member_list_shows_every_member_with_its_name_and_peer_url(shared_cluster: LocalCluster) -> None:
    etcd_cluster = shared_cluster
    members = member_list(etcd_cluster.grpc_endpoints()[:1])
    assert [m["ID"] for m in members] == [1, 2, 3]
    for member in members:
        node_id = member["ID"]
        assert member["name"] == f"node-{node_id}"
        assert member["peerURLs"] == [peer_url(etcd_cluster, node_id)]
        assert not member.get("isLearner", False)
    table = etcdctl(etcd_cluster.grpc_endpoints()[:1], "member", "list", "-w", "table").stdout
    assert "| ID | STATUS  |  NAME  |" in table
    assert f"|  2 | started | node-2 | {peer_url(etcd_cluster, 2)} |" in table


def test_member_list_client_urls_are_the_grpc_urls(shared_cluster: LocalCluster) -> None:
    etcd_cluster = shared_cluster
    members = member_list(etcd_cluster.grpc_endpoints()[:1])
    assert {m["ID"]: m.get("clientURLs") for m in members} == {
        i: [etcd_cluster.member(i).grpc] for i in etcd_cluster.ids}


def test_member_list_agrees_with_etcds_table_columns(shared_cluster: LocalCluster, shared_ref: ReferenceEtcd) -> None:
    etcd_cluster = shared_cluster
    etcd_ref = shared_ref
    ours = etcdctl(etcd_cluster.grpc_endpoints()[:1], "member", "list", "-w", "table").stdout.splitlines()
    theirs = etcdctl([etcd_ref.endpoint], "member", "list", "-w", "table").stdout.splitlines()
    columns = ["ID", "STATUS", "NAME", "PEER ADDRS", "CLIENT ADDRS", "IS LEARNER"]
    for table in (ours, theirs):
        assert [c.strip() for c in table[1].strip("|").split("|")] == columns


def test_member_errors_are_etcds(shared_cluster: LocalCluster, shared_ref: ReferenceEtcd) -> None:
    """The same wrong requests, to etcd and to jangada: the same code and message."""
    etcd_cluster = shared_cluster
    etcd_ref = shared_ref
    ours_channel, ours = cluster_stub(etcd_cluster.grpc_endpoint(2))
    theirs_channel, theirs = cluster_stub(etcd_ref.endpoint)
    with ours_channel, theirs_channel:
        cases = [
            ("MemberRemove", rpc_pb2.MemberRemoveRequest(ID=12345), rpc_pb2.MemberRemoveRequest(ID=12345)),
            ("MemberPromote", rpc_pb2.MemberPromoteRequest(ID=1), rpc_pb2.MemberPromoteRequest(ID=etcd_ref.member_id)),
            ("MemberPromote", rpc_pb2.MemberPromoteRequest(ID=12345), rpc_pb2.MemberPromoteRequest(ID=12345)),
            ("MemberUpdate", rpc_pb2.MemberUpdateRequest(ID=12345, peerURLs=["http://127.0.0.1:1"]),
             rpc_pb2.MemberUpdateRequest(ID=12345, peerURLs=["http://127.0.0.1:1"])),
            ("MemberAdd", rpc_pb2.MemberAddRequest(peerURLs=["not a url"]),
             rpc_pb2.MemberAddRequest(peerURLs=["not a url"])),
            ("MemberAdd", rpc_pb2.MemberAddRequest(peerURLs=["ftp://127.0.0.1:1"]),
             rpc_pb2.MemberAddRequest(peerURLs=["ftp://127.0.0.1:1"])),
            ("MemberAdd", rpc_pb2.MemberAddRequest(peerURLs=[peer_url(etcd_cluster, 3)], isLearner=True),
             rpc_pb2.MemberAddRequest(peerURLs=[etcd_ref.peer_url], isLearner=True)),
        ]
        for method, our_request, their_request in cases:
            expected = failure(getattr(theirs, method), their_request)
            assert failure(getattr(ours, method), our_request) == expected, (method, our_request)


def test_member_errors_name_etcds_statuses(shared_cluster: LocalCluster) -> None:
    etcd_cluster = shared_cluster
    channel, stub = cluster_stub(etcd_cluster.grpc_endpoint(1))
    with channel:
        assert failure(stub.MemberRemove, rpc_pb2.MemberRemoveRequest(ID=99)) == (
            grpc.StatusCode.NOT_FOUND, "etcdserver: member not found")
        assert failure(stub.MemberPromote, rpc_pb2.MemberPromoteRequest(ID=2)) == (
            grpc.StatusCode.FAILED_PRECONDITION, "etcdserver: can only promote a learner member")
        assert failure(stub.MemberAdd, rpc_pb2.MemberAddRequest(peerURLs=[peer_url(etcd_cluster, 1)])) == (
            grpc.StatusCode.FAILED_PRECONDITION, "etcdserver: Peer URLs already exists")
        assert failure(stub.MemberAdd, rpc_pb2.MemberAddRequest(peerURLs=["http://127.0.0.1"])) == (
            grpc.StatusCode.INVALID_ARGUMENT, "etcdserver: given member URLs are invalid")


def test_removing_a_member_through_a_follower(etcd_cluster: LocalCluster) -> None:
    leader = etcd_cluster.wait_for_leader()
    follower = next(i for i in etcd_cluster.ids if i != leader)
    gone = next(i for i in etcd_cluster.ids if i not in (leader, follower))
    done = etcdctl([etcd_cluster.grpc_endpoint(follower)], "member", "remove", f"{gone:x}")
    assert f"Member {gone:16x} removed from cluster" in done.stdout
    assert [m["ID"] for m in member_list([etcd_cluster.grpc_endpoint(leader)])] == sorted({1, 2, 3} - {gone})


def test_add_a_learner_start_it_promote_it_and_remove_it(etcd_cluster: LocalCluster) -> None:
    endpoints = etcd_cluster.grpc_endpoints()
    member = etcd_cluster.new_member()
    url = member.peer.replace("tcp://", "http://")
    added = etcdctl(endpoints, "member", "add", "node-4", f"--peer-urls={url}", "--learner")
    assert f"Member {member.id:16x} added to cluster" in added.stdout
    assert 'ETCD_NAME="node-4"' in added.stdout
    assert f'ETCD_INITIAL_ADVERTISE_PEER_URLS="{url}"' in added.stdout
    listed = {m["ID"]: m for m in member_list(endpoints)}
    assert listed[member.id]["isLearner"] and listed[member.id].get("name", "") == ""  # never started

    # etcd refuses to promote a learner that has not caught up: it has not even started
    channel, stub = cluster_stub(endpoints[0])
    with channel:
        assert failure(stub.MemberPromote, rpc_pb2.MemberPromoteRequest(ID=member.id)) == (
            grpc.StatusCode.FAILED_PRECONDITION,
            "etcdserver: can only promote a learner member which is in sync with leader")

    etcd_cluster.start(member.id)
    wait_for(lambda: member_list(endpoints)[-1].get("name") == "node-4", 30, "node-4 named in the list", 0.2)

    def promoted() -> bool:
        done = etcdctl(endpoints, "member", "promote", f"{member.id:x}", check=False)
        return done.returncode == 0 and "promoted in cluster" in done.stdout
    wait_for(promoted, 30, "the learner promoted", 0.2)
    listed = {m["ID"]: m for m in member_list(endpoints)}
    assert not listed[member.id].get("isLearner", False)
    assert listed[member.id]["clientURLs"] == [member.grpc]

    etcdctl(endpoints, "member", "remove", f"{member.id:x}")
    assert member.id not in [m["ID"] for m in member_list(endpoints)]


def test_member_add_takes_a_fresh_id_and_update_changes_peer_urls(etcd_cluster: LocalCluster) -> None:
    channel, stub = cluster_stub(etcd_cluster.grpc_endpoint(1))
    with channel:
        added = stub.MemberAdd(rpc_pb2.MemberAddRequest(peerURLs=["http://127.0.0.1:1"], isLearner=True),
                               timeout=RPC_TIMEOUT)
        assert added.member.ID == 4 and added.member.isLearner and not added.member.name
        assert [m.ID for m in added.members] == [1, 2, 3, 4]
        stub.MemberRemove(rpc_pb2.MemberRemoveRequest(ID=4), timeout=RPC_TIMEOUT)
        again = stub.MemberAdd(rpc_pb2.MemberAddRequest(peerURLs=["http://127.0.0.1:2"], isLearner=True),
                               timeout=RPC_TIMEOUT)
        assert again.member.ID == 5  # never reused
        stub.MemberUpdate(rpc_pb2.MemberUpdateRequest(ID=5, peerURLs=["http://127.0.0.1:3"]), timeout=RPC_TIMEOUT)
        listed = {m.ID: m for m in stub.MemberList(rpc_pb2.MemberListRequest(), timeout=RPC_TIMEOUT).members}
        assert list(listed[5].peerURLs) == ["http://127.0.0.1:3"]
        assert failure(stub.MemberUpdate, rpc_pb2.MemberUpdateRequest(ID=5, peerURLs=[peer_url(etcd_cluster, 1)])) \
            == (grpc.StatusCode.FAILED_PRECONDITION, "etcdserver: Peer URLs already exists")


# -- the service's own logic, over a fake link (no cluster) ------------------------------

#: A call without metadata (no auth token), as the gateway makes one.
NO_METADATA = GatewayContext((), "")


class FakeLink:
    """The NodeLink calls ClusterService makes, over an in-memory membership that
    refuses what the leader refuses (former ids, unknown members)."""

    node_id = 1
    term = 2

    def __init__(self) -> None:
        self.rows = {i: {"id": i, "peer": f"tcp://127.0.0.1:700{i}", "client": f"tcp://127.0.0.1:710{i}",
                         "grpc": f"http://127.0.0.1:720{i}", "gateway": "", "voter": True, "match": None}
                     for i in (1, 2, 3)}
        self.former = {9}
        self.changes: list[tuple[str, int, dict[str, str]]] = []
        self.tokens: list[str] = []

    async def status(self) -> dict[str, Any]:
        return {"leader_id": 1}

    async def members(self, leader_only: bool = False) -> dict[str, Any]:
        return {"members": [dict(row) for _, row in sorted(self.rows.items())]}

    async def conf_change(self, change: str, node: int, token: str = "", **addresses: str) -> dict[str, Any]:
        self.changes.append((change, node, addresses))
        self.tokens.append(token)
        if change.startswith("add"):
            if node in self.former:
                raise errors.invalid(f"node {node} was a member before: ids are never reused")
            self.rows[node] = {"id": node, "peer": addresses["peer"], "client": "", "grpc": "", "gateway": "",
                               "voter": change == "add-voter", "match": None}
        elif change == "remove":
            del self.rows[node]
        elif change == "update":
            self.rows[node].update(addresses)
        return await self.members()


def fake_service() -> tuple[Any, FakeLink]:
    link = FakeLink()
    return ClusterService(link, Headers("test", 1, link)), link  # type: ignore[arg-type]


def test_member_add_picks_ids_above_every_seen_one_and_skips_former_members() -> None:
    service, link = fake_service()
    link.former = {4, 5}
    added = asyncio.run(service.MemberAdd(rpc_pb2.MemberAddRequest(peerURLs=["http://10.0.0.1:7000"]), NO_METADATA))
    assert added.member.ID == 6 and list(added.member.peerURLs) == ["http://10.0.0.1:7000"]
    assert link.changes[-1] == ("add-voter", 6, {"peer": "tcp://10.0.0.1:7000"})
    new = {m.ID: m for m in added.members}[6]
    assert new.name == "" and not new.clientURLs and not new.isLearner  # never started
    asyncio.run(service.MemberRemove(rpc_pb2.MemberRemoveRequest(ID=6), NO_METADATA))
    again = asyncio.run(service.MemberAdd(
        rpc_pb2.MemberAddRequest(peerURLs=["http://10.0.0.2:7000"], isLearner=True), NO_METADATA))
    assert again.member.ID == 7 and again.member.isLearner and link.changes[-1][0] == "add-learner"


def test_member_list_names_started_members_and_shows_grpc_urls() -> None:
    service, link = fake_service()
    link.rows[4] = {"id": 4, "peer": "tcp://h:1", "client": "tcp://h:3", "grpc": "http://h:4", "gateway": "",
                    "voter": False, "match": 12}
    link.rows[5] = {"id": 5, "peer": "tcp://h:2", "client": "", "grpc": "", "gateway": "", "voter": False,
                    "match": 0}
    members = {m.ID: m for m in asyncio.run(service.MemberList(rpc_pb2.MemberListRequest(), NO_METADATA)).members}
    assert members[2].name == "node-2" and list(members[2].clientURLs) == ["http://127.0.0.1:7202"]
    assert list(members[2].peerURLs) == ["http://127.0.0.1:7002"]
    assert members[4].name == "node-4" and members[4].isLearner  # it published its addresses
    assert list(members[4].clientURLs) == ["http://h:4"]
    assert members[5].name == "" and not members[5].clientURLs  # never started (the leader reaching it is not enough)


def test_member_update_keeps_the_other_addresses() -> None:
    service, link = fake_service()
    asyncio.run(service.MemberUpdate(rpc_pb2.MemberUpdateRequest(ID=2, peerURLs=["http://127.0.0.1:7999"]), NO_METADATA))
    assert link.changes[-1] == ("update", 2, {"peer": "tcp://127.0.0.1:7999", "client": "tcp://127.0.0.1:7102",
                                              "grpc": "http://127.0.0.1:7202", "gateway": ""})


@pytest.mark.parametrize("urls", [[], ["http://a:1", "http://b:2"], ["https://a:1"], ["http://a"],
                                  ["http://a:1/path"], ["unix://a:1"]])
def test_member_add_refuses_urls_jangada_cannot_dial(urls: list[str]) -> None:
    service, _ = fake_service()
    with pytest.raises(errors.EtcdError) as raised:
        asyncio.run(service.MemberAdd(rpc_pb2.MemberAddRequest(peerURLs=urls), NO_METADATA))
    assert raised.value.status is errors.MEMBER_BAD_URLS
