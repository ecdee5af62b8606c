"""Every member's metrics endpoint on real processes (docs/operations.md, "Metrics
and health"): `/metrics` is a page Prometheus's parser reads and `promtool check
metrics` accepts; `/health` flips to 503 with a reason when a member loses its
leader and back to 200 when the cluster recovers; `/version` and `/livez` answer."""
from __future__ import annotations

import json
import shutil
import subprocess
import urllib.error
import urllib.request
from collections.abc import Callable

import pytest
from prometheus_client.parser import text_string_to_metric_families

from node.localcluster import LocalCluster, wait_for

#: CI installs it (.ci/run's DEBS: Debian's `prometheus` package): absent is a failure.
PROMTOOL = "promtool"


def get(url: str) -> tuple[int, bytes]:
    """A curl-like GET: (status, body), 5xx included."""
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def scrape(cluster: LocalCluster, node_id: int) -> dict[str, float]:
    """The member's /metrics page, parsed: sample name -> value (unlabelled samples)."""
    status, body = get(cluster.member(node_id).metrics + "/metrics")
    assert status == 200
    return {s.name: s.value for family in text_string_to_metric_families(body.decode())
            for s in family.samples if not s.labels}


def health(cluster: LocalCluster, node_id: int) -> tuple[int, dict[str, str]]:
    status, body = get(cluster.member(node_id).metrics + "/health")
    return status, json.loads(body)


def showing_the_write(cluster: LocalCluster, node_id: int) -> Callable[[], dict[str, float] | None]:
    """The page shows the put applied: its key counted. (An applied index of 2 was
    not enough: the leader's no-op is 1, and the client's session may be 2, the put 3.)"""
    def check() -> dict[str, float] | None:
        metrics = scrape(cluster, node_id)
        return metrics if metrics["jangada_mvcc_keys"] >= 1 else None
    return check


def health_is(cluster: LocalCluster, node_id: int, code: int) -> Callable[[], dict[str, str] | None]:
    def check() -> dict[str, str] | None:
        status, verdict = health(cluster, node_id)
        return verdict if status == code else None
    return check


@pytest.mark.timeout(90)
def test_metrics_pages_pass_promtool_and_health_follows_the_leader(
        make_cluster: Callable[..., LocalCluster]) -> None:
    promtool = shutil.which(PROMTOOL)
    assert promtool, "promtool not found: install Debian's `prometheus` package (.ci/run does)"
    cluster = make_cluster(metrics=True)
    leader = cluster.wait_for_leader(30)
    client = cluster.client()
    client.put("metrics-key", "1")
    for node_id in cluster.ids:
        # The loop publishes every 0.1 s: wait until this member's page shows the write.
        metrics = wait_for(showing_the_write(cluster, node_id), 10, f"node {node_id}'s /metrics to show the write")
        assert metrics["etcd_server_has_leader"] == 1
        assert metrics["etcd_server_is_leader"] == (1 if node_id == leader else 0)
        assert metrics["etcd_server_leader_changes_seen_total"] >= 1
        assert metrics["jangada_mvcc_keys"] == 1 and metrics["etcd_server_proposals_applied_total"] >= 2
        assert metrics["etcd_disk_wal_fsync_duration_seconds_count"] >= 1
        page = get(cluster.member(node_id).metrics + "/metrics")[1]
        checked = subprocess.run([promtool, "check", "metrics"], input=page, capture_output=True, timeout=30)
        assert checked.returncode == 0, checked.stdout.decode() + checked.stderr.decode()
        verdict = wait_for(health_is(cluster, node_id, 200), 10, f"node {node_id}'s /health to say healthy")
        assert verdict == {"health": "true"}

    status, body = get(cluster.member(1).metrics + "/version")
    assert status == 200 and json.loads(body)["etcdserver"] == "3.4.0"
    assert get(cluster.member(1).metrics + "/livez") == (200, b"ok\n")

    survivor = next(i for i in cluster.ids if i != leader)
    stopped = [i for i in cluster.ids if i != survivor]
    for node_id in stopped:
        cluster.stop(node_id)
    verdict = wait_for(health_is(cluster, survivor, 503), 20,
                       f"node {survivor}'s /health to turn unhealthy without a quorum")
    assert verdict["health"] == "false" and verdict["reason"], verdict
    assert scrape(cluster, survivor)["etcd_server_has_leader"] == 0 or "QGET" in verdict["reason"]

    for node_id in stopped:
        cluster.start(node_id)
    verdict = wait_for(health_is(cluster, survivor, 200), 30, f"node {survivor}'s /health to recover")
    assert verdict == {"health": "true"}
