"""The corruption checks on real processes (node/corruption_check.py): a value
flipped in one member's WAL *with* its CRC recomputed (its own checks cannot see
it) is found both by the member's start-up check and by the leader's periodic
check comparing HashKVs; a CORRUPT alarm names that member, and KV requests then
get etcd's "etcdserver: corrupt cluster". Also `endpoint hashkv --cluster` on
the healthy cluster first."""
from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cluster import cli
from cluster.kv.errors import Corrupt
from node.localcluster import LocalCluster, wait_for
from node.storage.tamper import rewrite_wal_bytes


def _cli(cluster: LocalCluster, via: int, *argv: str) -> tuple[int, str]:
    out = io.StringIO()
    status = cli.main(["--endpoints", cluster.address(via), *argv], out=out)
    return status, out.getvalue()


def _corrupt_alarms(cluster: LocalCluster, node_id: int) -> list[dict[str, Any]]:
    status = cluster.status(node_id)
    return [a for a in (status or {}).get("alarms", []) if a["alarm"] == "CORRUPT"]


@pytest.mark.timeout(90)
def test_a_value_flipped_with_its_crc_in_one_members_wal_is_found_and_raises_a_corrupt_alarm_naming_it(
        make_cluster: Callable[..., LocalCluster]) -> None:
    cluster = make_cluster(maintenance={"corrupt_check_interval_s": 1, "corrupt_check_initial": True})
    client = cluster.client()
    for i in range(10):
        client.put(f"k{i}", f"value-{i:04d}")
    leader = cluster.wait_for_leader()
    revision = client.get("k9").mod_revision  # type: ignore[union-attr]
    for node_id in cluster.ids:
        cluster.wait_caught_up(node_id, cluster.status_of(leader)["commit_index"])

    # hashkv: every member, one hash at one revision
    status, out = _cli(cluster, leader, "endpoint", "hashkv", "--cluster", "--rev", str(revision), "-w", "json")
    rows = json.loads(out)
    assert status == 0 and len(rows) == 3 and len({r["HashKV"]["hash"] for r in rows}) == 1
    assert {r["HashKV"]["header"]["member_id"] for r in rows} == set(cluster.ids)
    status, out = _cli(cluster, leader, "endpoint", "hashkv", "--rev", str(revision), "-w", "table")
    assert status == 0 and "| ENDPOINT" in out and f"| {rows[0]['HashKV']['hash']}" in out

    victim = next(i for i in cluster.ids if i != leader)
    cluster.stop(victim)
    status, out = _cli(cluster, leader, "endpoint", "hashkv", "--cluster")
    assert status == 1 and len(out.splitlines()) == 2  # the stopped member is named on stderr
    data_dir = Path(cluster.spec.data_dir.format(id=victim))
    assert rewrite_wal_bytes(data_dir, b"value-0003", b"VALUE-0003") >= 1
    cluster.start(victim)

    found = wait_for(lambda: _corrupt_alarms(cluster, leader), 30, f"a CORRUPT alarm naming node {victim}", 0.2)
    assert found == [{"member_id": victim, "alarm": "CORRUPT"}]
    # both checks saw it: the member itself at start-up, the leader periodically
    wait_for(lambda: f"node {victim}'s data is corrupt" in cluster.log_text(victim), 10, "the start-up check")
    wait_for(lambda: f"node {victim}'s HashKV at revision" in cluster.log_text(leader), 10, "the periodic check")
    with pytest.raises(Corrupt, match="etcdserver: corrupt cluster"):
        client.get("k1")
    # the corrupted member's own copy is what differs (a serializable read of it)
    assert _corrupt_alarms(cluster, victim) == found
