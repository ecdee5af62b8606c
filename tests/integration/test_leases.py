"""Leases on real 3-node clusters: expiry decided by the leader and applied by
every replica at one revision, keepalives across a leader SIGKILL, leases across
a full restart. Timing assertions only in the safe direction (a lease never ends
before its TTL); upper bounds are generous deadlines."""
from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable

import pytest

from cluster.client import Client, LeaseNotFoundError
from node.localcluster import LocalCluster, wait_for

pytestmark = pytest.mark.timeout(120)

MakeCluster = Callable[..., LocalCluster]


def gone_everywhere(cluster: LocalCluster, clients: dict[int, Client], key: bytes) -> bool:
    return all(c.get(key, serializable=True) is None for c in clients.values())


def test_an_expired_lease_deletes_its_keys_on_every_replica_at_one_revision(make_cluster: MakeCluster) -> None:
    cluster = make_cluster(3)
    cluster.wait_for_leader()
    client = cluster.client()
    kept = client.lease(2)  # kept alive by a thread while we set up (the machine may be slow)
    lease = kept.id
    client.put("a", "1", lease=lease)
    client.put("b", "1", lease=lease)
    client.put("stays", "1")
    ttl = client.lease_time_to_live(lease, keys=True)
    assert (ttl.granted_ttl, ttl.keys) == (2, (b"a", b"b"))
    per_node = {i: cluster.client([cluster.address(i)]) for i in cluster.spec.ids}
    wait_for(lambda: kept.lost.is_set() or all(c.lease_list(serializable=True).ids == (lease,)
                                                for c in per_node.values()), 30, "every replica to list the lease")
    assert not kept.lost.is_set(), "no keepalive got through for the 2 s TTL: the machine is overloaded"
    kept.close(revoke=False)  # no more keepalives from the thread; one last by hand
    last_keepalive = time.monotonic()
    assert client.lease_keepalive(lease).ttl == 2
    wait_for(lambda: gone_everywhere(cluster, per_node, b"a"), 30, "the leased keys to vanish everywhere",
             interval=0.01)
    vanished = time.monotonic()
    # Never before the TTL since the last keepalive was sent (a safety bound).
    assert vanished - last_keepalive >= 2
    print(f"lease expiry observed {vanished - last_keepalive:.2f} s after the last keepalive (TTL 2 s)")
    revisions = set()
    for node_id, c in per_node.items():
        wait_for(lambda c=c: c.get("b", serializable=True) is None, 30, f"node {node_id} to apply the expiry")
        now = c.range("stays", serializable=True).revision
        revisions.add(now)
        before = c.range("a", "c", revision=now - 1, serializable=True)
        assert [kv.key for kv in before.kvs] == [b"a", b"b"], node_id  # both alive one revision earlier
    assert len(revisions) == 1  # and gone at the same revision on every replica
    assert {c.lease_list(serializable=True).ids for c in per_node.values()} == {()}  # each replica's own list
    with pytest.raises(LeaseNotFoundError):
        client.lease_keepalive(lease)
    with pytest.raises(LeaseNotFoundError):
        client.put("c", "1", lease=lease)
    assert client.get("stays") is not None


def test_keepalives_carry_a_lease_across_a_leader_sigkill(make_cluster: MakeCluster) -> None:
    cluster = make_cluster(3)
    cluster.wait_for_leader()
    client = cluster.client()
    kept = client.lease(3)
    client.put("kept", "1", lease=kept.id)
    unkept = client.lease_grant(3).id  # no keepalives at all
    client.put("unkept", "1", lease=unkept)
    old_leader = cluster.wait_for_leader()
    cluster.kill(old_leader)
    killed = time.monotonic()
    wait_for(lambda: cluster.leader() not in (None, old_leader), 60, "a new leader")
    renewals = kept.keepalives
    # TTL 3 s, a keepalive every second: 4 more renewals span more than the TTL.
    wait_for(lambda: kept.keepalives >= renewals + 4 or kept.lost.is_set(), 60, "four more keepalives")
    assert not kept.lost.is_set()
    assert client.get("kept") is not None
    remaining = client.lease_time_to_live(kept.id)
    assert remaining.granted_ttl == 3 and remaining.ttl >= 1
    # The unkept lease is not cut short by the election: the new leader gave it
    # a full TTL from its promotion, which came after the kill.
    wait_for(lambda: client.get("unkept") is None, 30, "the unkept lease to expire")
    assert time.monotonic() - killed >= 3
    print(f"unkept 3 s lease expired {time.monotonic() - killed:.2f} s after the leader's SIGKILL")
    kept.close()  # revokes
    assert client.get("kept") is None


def test_leases_survive_a_full_cluster_restart(make_cluster: MakeCluster) -> None:
    cluster = make_cluster(3, snapshot={"applied_entries": 8})  # the restart reads a snapshot
    cluster.wait_for_leader()
    client = cluster.client()
    long = client.lease_grant(600, 77).id
    client.put("long", "1", lease=long)
    short = client.lease_grant(3).id
    client.put("short", "1", lease=short)
    for i in range(12):
        client.put(f"filler{i}", "x")
    index = max(cluster.status_of(i)["applied_index"] for i in cluster.spec.ids)
    for node_id in cluster.spec.ids:
        cluster.wait_caught_up(node_id, index)
    assert any(cluster.status_of(i)["snapshot_index"] > 0 for i in cluster.spec.ids)
    for node_id in list(cluster.spec.ids):
        assert cluster.stop(node_id) == 0
    client.close()
    cluster.start_all()
    cluster.wait_for_leader()
    client = cluster.client()
    ttl = client.lease_time_to_live(long, keys=True)
    assert (ttl.id, ttl.granted_ttl, ttl.keys) == (77, 600, (b"long",))
    assert set(client.lease_list().ids) >= {long}
    # the short lease's clock restarted with the cluster: it still expires
    wait_for(lambda: client.get("short") is None, 30, "the short lease to expire after the restart")
    assert client.lease_revoke(long).deleted == 1
    assert client.get("long") is None
    assert client.lease_list().ids == ()


def test_the_lease_cli_on_a_live_cluster(make_cluster: MakeCluster) -> None:
    import io
    import json

    from cluster.cli import main
    cluster = make_cluster(1)
    cluster.wait_for_leader()
    endpoints = ",".join(a.removeprefix("tcp://") for a in cluster.spec.client_addresses())

    def cli(*argv: str) -> tuple[int, str]:
        out = io.StringIO()
        status = main(["--endpoints", endpoints, *argv], out)
        return status, out.getvalue()

    status, text = cli("lease", "grant", "60", "--id", "abc")
    assert (status, text) == (0, "lease abc granted with TTL(60s)\n")
    assert cli("put", "--lease", "abc", "k", "v") == (0, "OK\n")
    status, text = cli("lease", "timetolive", "abc", "--keys")
    assert status == 0 and text.startswith("lease abc granted with TTL(60s), remaining(")
    assert text.endswith("attached keys([k])\n")
    doc = json.loads(cli("lease", "keepalive", "abc", "--once", "-w", "json")[1])
    assert (doc["id"], doc["id_hex"], doc["ttl"]) == (0xABC, "abc", 60)
    assert cli("lease", "list") == (0, "found 1 leases\nabc\n")
    assert "| abc |" in cli("lease", "list", "-w", "table")[1]
    assert cli("lease", "grant", "60", "--id", "abc")[0] == 1  # id collision: refused as invalid
    assert cli("lease", "revoke", "abc") == (0, "lease abc revoked (1 keys deleted)\n")
    assert cli("get", "k") == (0, "")
    assert cli("lease", "keepalive", "abc", "--once")[0] == 1  # lease not found
    assert cli("put", "--lease", "abc", "k", "v")[0] == 1
    # keepalive without --once renews every TTL/3 until the lease is gone (exit 1)
    assert cli("lease", "grant", "3", "--id", "def")[0] == 0
    keeper = subprocess.Popen([sys.executable, "-m", "cluster", "--endpoints", endpoints, "lease", "keepalive", "def"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert keeper.stdout.readline() == "lease def keepalived with TTL(3)\n"  # type: ignore[union-attr]
        assert keeper.stdout.readline() == "lease def keepalived with TTL(3)\n"  # type: ignore[union-attr]
        assert cli("lease", "revoke", "def")[0] == 0
        assert keeper.wait(timeout=30) == 1
        assert "lease not found" in keeper.stderr.read()  # type: ignore[union-attr]
    finally:
        if keeper.poll() is None:
            keeper.kill()
        keeper.wait(timeout=30)
        keeper.stdout.close()  # type: ignore[union-attr]
        keeper.stderr.close()  # type: ignore[union-attr]
