"""The recorded workload through etcd's v3 API (cluster/etcd_client.py, as
`supervisor chaos --check --via grpc` runs it): operations succeed through every
member's face, the history is linearizable, and a leader killed mid-run loses no
acknowledged write."""
from __future__ import annotations

import time

import pytest

from cluster.check import Verdict, check_history, lost_writes
from cluster.check.history import OpKind, Outcome
from cluster.errors import ClientTimeout, CompactedError, InvalidRequestError
from cluster.etcd_client import EtcdClient
from cluster.kv import Compare, Put
from cluster.workload import Call, History, Workload, WorkloadOptions, timed
from node.localcluster import LocalCluster
from supervisor.chaoscheck import grpc_clients

pytestmark = pytest.mark.timeout(180)


def test_the_client_speaks_the_kv_subset_the_workload_uses(etcd_cluster: LocalCluster) -> None:
    with EtcdClient(etcd_cluster.grpc_endpoints(), timeout=5.0) as client:
        put = client.put("w/a", "1")
        got = client.range("w/a")
        assert got.kvs[0].value == b"1" and got.revision == put.revision
        swapped = client.txn([Compare.value(b"w/a", "=", b"1")], [Put(b"w/a", b"2")])
        assert swapped.succeeded and swapped.revision == put.revision + 1
        refused = client.txn([Compare.version(b"w/a", "=", 0)], [Put(b"w/a", b"3")])
        assert not refused.succeeded
        assert client.delete("w/a").deleted == 1
        assert client.range("w/a").kvs == ()
        with pytest.raises(InvalidRequestError):
            client.put("", "x")  # etcd: key is not provided
        client.put("w/b", "1")
        current = client.put("w/b", "2").revision
        with EtcdClient([etcd_cluster.grpc_endpoint(1)]) as one:
            one.compact(current)
        with pytest.raises(CompactedError):
            client.range("w/b", revision=current - 1)


def test_a_dead_endpoint_is_an_unknown_outcome_and_the_next_call_moves_on(etcd_cluster: LocalCluster) -> None:
    leader = etcd_cluster.wait_for_leader()
    victim = next(i for i in etcd_cluster.ids if i != leader)  # a follower: no election follows
    endpoints = [etcd_cluster.grpc_endpoint(victim)] + [etcd_cluster.grpc_endpoint(i) for i in etcd_cluster.ids
                                                         if i != victim]
    etcd_cluster.kill(victim)
    with EtcdClient(endpoints, timeout=2.0) as client:
        with pytest.raises(ClientTimeout):
            client.put("w/c", "1")  # the first endpoint is dead: outcome unknown, never re-sent
        assert client.put("w/c", "2").revision > 0  # the next one answers


def test_a_recorded_workload_through_the_faces_is_linearizable_across_a_leader_kill(
        etcd_cluster: LocalCluster) -> None:
    options = WorkloadOptions(clients=3, keys=3, duration=6.0, max_ops=5_000, op_timeout=2.0,
                              key_prefix="wl/k")
    history = History(time.monotonic())
    workload = Workload(etcd_cluster.grpc_endpoints(), options, history, client_factory=grpc_clients)
    workload.start()
    time.sleep(2.0)
    leader = etcd_cluster.wait_for_leader()
    etcd_cluster.kill(leader)
    killed_at = history.clock()
    workload.join(options.duration + 20)
    etcd_cluster.wait_for_leader()
    survivors = [etcd_cluster.grpc_endpoint(i) for i in etcd_cluster.running()]
    final = final_reads_via_grpc(survivors, options.key_names(), history)
    ops = history.operations
    ok = [op for op in ops if op.outcome is Outcome.OK and op.process != "final"]
    assert sum(op.kind is OpKind.PUT for op in ok) > 10
    assert any(op.invoke > killed_at for op in ok), "no operation succeeded after the leader was killed"
    assert not lost_writes(ops, final)
    result = check_history(ops, timeout=30.0)
    assert result.verdict is Verdict.LINEARIZABLE, result


def final_reads_via_grpc(endpoints: list[str], keys: list[str], history: History) -> dict[str, str | None]:
    """`final_reads`, but through the faces (the workload's own path)."""
    final: dict[str, str | None] = {}
    with EtcdClient(endpoints, timeout=10.0) as client:
        for key in keys:
            for _ in range(5):
                op = timed(history, "final", client, Call(OpKind.GET, key))  # type: ignore[arg-type]
                if op.outcome is Outcome.OK:
                    final[key] = op.result  # type: ignore[assignment]
                    break
            else:
                raise AssertionError(f"final read of {key} failed five times")
    return final
