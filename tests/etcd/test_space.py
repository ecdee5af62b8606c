"""Space management on a real 3-node cluster (docs/operations.md, "Space"): a small
quota fills, the leader raises NOSPACE through the log, writes get etcd's error
(native client, gRPC, etcdctl) while reads, deletes, compaction and `alarm
disarm` work; after compaction and disarm writes work again and nothing
acknowledged is lost. Then periodic auto-compaction moves the compact revision
on its own (the RSS soak is `python -m cluster.bench space`, not a test)."""
from __future__ import annotations

import io
import json
from collections.abc import Callable

import grpc
import pytest

from cluster.cli import main as cli_main
from cluster.errors import CompactedError
from cluster.etcdpb import rpc_pb2, rpc_pb2_grpc
from cluster.kv import AlarmMember, AlarmType, NoSpace
from node.localcluster import LocalCluster, wait_for
from tests.etcd.conftest import etcdctl
from tests.etcd.test_gateway import http_request
from tests.etcd.stubs import RPC_TIMEOUT, failure, ready_channel

QUOTA = 64 * 1024
VALUE = 2000
KEYS = 8

pytestmark = pytest.mark.timeout(120)


def health(cluster: LocalCluster) -> dict[int, int]:
    """Each member's HTTP gateway /health status code."""
    return {i: http_request(cluster.gateway_url(i), "/health", method="GET")[0] for i in cluster.ids}


def test_nospace_refuses_writes_until_compaction_and_disarm_and_loses_nothing_acknowledged(
        make_etcd_cluster: Callable[..., LocalCluster]) -> None:
    cluster = make_etcd_cluster(maintenance={"quota_bytes": QUOTA, "auto_compaction_mode": "periodic",
                                             "auto_compaction_retention": "1s"})
    leader = cluster.wait_for_leader()
    client = cluster.client()
    acked: dict[int, int] = {}  # key number -> the last write acknowledged for it
    refused: list[int] = []
    for i in range(200):  # 200 writes of ~2 KiB overwrite 8 keys: far past 64 KiB
        try:
            client.put(f"big/{i % KEYS}", f"{i}:" + "x" * VALUE)
        except NoSpace as error:
            assert str(error) == "etcdserver: mvcc: database space exceeded"
            refused.append(i)
            break
        acked[i % KEYS] = i
    assert refused, "the quota never refused a write"
    wait_for(lambda: client.alarm_list(), 10, "the NOSPACE alarm to be raised")
    assert client.alarm_list() == (AlarmMember(leader, AlarmType.NOSPACE),)

    # Writes fail everywhere with etcd's error; reads, deletes and alarm list work.
    with pytest.raises(NoSpace):
        client.put("small", "1")
    endpoint = cluster.grpc_endpoint(leader)
    with ready_channel(endpoint) as channel:
        code, message = failure(rpc_pb2_grpc.KVStub(channel).Put, rpc_pb2.PutRequest(key=b"small", value=b"1"))
    assert (code, message) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "etcdserver: mvcc: database space exceeded")
    put = etcdctl([endpoint], "put", "small", "1", check=False)
    assert put.returncode != 0 and "etcdserver: mvcc: database space exceeded" in put.stderr
    assert etcdctl([endpoint], "alarm", "list").stdout == f"memberID:{leader} alarm:NOSPACE \n"
    found = json.loads(etcdctl([endpoint], "endpoint", "status", "-w", "json").stdout)
    assert f"memberID:{leader} alarm:NOSPACE " in found[0]["Status"]["errors"]  # as etcd 3.4's Status
    assert client.get(f"big/{acked and max(acked)}") is not None
    assert etcdctl([endpoint], "get", "big/0", "--print-value-only").stdout.startswith(f"{acked[0]}:")
    status = cluster.status_of(leader)
    assert status["alarms"] == [{"member_id": leader, "alarm": "NOSPACE"}]
    assert health(cluster) == {i: 503 for i in cluster.ids}  # the gateways' /health, as etcd's
    full = status["db_size"]
    assert 0 < full < QUOTA

    # Compaction frees the superseded versions; disarm (the CLI, as etcdctl) lets writes in.
    # (The 1 s auto-compaction may have compacted to the last revision already: also a
    # compaction through the log while NOSPACE is raised.)
    try:
        client.compact(status["revision"])
    except CompactedError:
        assert cluster.status_of(leader)["compact_revision"] == status["revision"]
    assert cluster.status_of(leader)["db_size"] < full // 2
    out = io.StringIO()
    assert cli_main(["--endpoints", ",".join(cluster.address(i) for i in cluster.ids), "alarm", "disarm"], out=out) == 0
    assert out.getvalue() == f"memberID:{leader} alarm:NOSPACE \n"
    assert client.alarm_list() == ()
    wait_for(lambda: health(cluster) == {i: 200 for i in cluster.ids}, 10, "every /health to be healthy again")
    client.put("small", "1")
    for i in range(KEYS):
        kv = client.get(f"big/{i}")
        assert kv is not None and kv.value.startswith(f"{acked[i]}:".encode())  # the last acknowledged write

    # Periodic auto-compaction (retention 1 s) moves the compact revision on its own.
    compacted = cluster.status_of(leader)["compact_revision"]
    for i in range(30):
        client.put(f"big/{i % KEYS}", "y")
    wait_for(lambda: cluster.status_of(leader)["compact_revision"] > compacted, 15,
             "auto-compaction past the manual compaction", 0.2)
    kv = client.get("big/0")
    assert kv is not None and kv.value == b"y"
