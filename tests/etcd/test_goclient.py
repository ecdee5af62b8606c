"""etcd's own Go client (clientv3 3.4, tests/etcd/goclient/main.go) against jangada's
gRPC face: KV and Txn, and clientv3/concurrency's Session, Mutex and Election, which
use only KV, Watch and Lease (never etcd's Lock or Election services). The same
program against a real etcd 3.4 shows that each check states etcd's behaviour."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from cluster.bench.compare.etcd import ETCD, EtcdCluster
from cluster.bench.compare.jangada_grpc import wait_for_faces
from cluster.ports import free_ports
from node.localcluster import LocalCluster
from tests.etcd import goclient

pytestmark = pytest.mark.timeout(120)

NEEDS_WATCH_LEASE = pytest.mark.xfail(strict=False, reason="needs branches watch/lease")
ALL_CHECKS = ("kv", "txn", "session", "mutex", "election")


def assert_passed(results: list[dict], checks: tuple[str, ...]) -> None:  # type: ignore[type-arg]
    for r in results:
        print(r)
    assert [r["check"] for r in results] == list(checks)
    failed = {r["check"]: r["error"] for r in results if not r["ok"]}
    assert not failed, failed


@pytest.mark.parametrize("checks", [
    pytest.param(("kv", "txn"), id="kv-txn"),
    pytest.param(("session",), id="session", marks=NEEDS_WATCH_LEASE),
    pytest.param(("mutex",), id="mutex", marks=NEEDS_WATCH_LEASE),
    pytest.param(("election",), id="election", marks=NEEDS_WATCH_LEASE),
])
def test_clientv3_against_jangada(etcd_cluster: LocalCluster, checks: tuple[str, ...]) -> None:
    goclient.binary()  # skips before the cluster's time is spent on nothing
    wait_for_faces(etcd_cluster.spec)  # a leader can be elected before the last face listens
    assert_passed(goclient.run_checks(etcd_cluster.grpc_endpoints(), checks), checks)


@pytest.mark.skipif(not os.path.exists(ETCD), reason="etcd 3.4 is not installed (Debian's etcd-server)")
def test_the_checks_hold_on_etcd_itself(tmp_path: Path) -> None:
    goclient.binary()
    cluster = EtcdCluster(tmp_path, free_ports(6))
    try:
        cluster.start()
        assert_passed(goclient.run_checks(cluster.endpoints, ALL_CHECKS), ALL_CHECKS)
    finally:
        cluster.close()
