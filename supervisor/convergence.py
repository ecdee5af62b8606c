"""After a chaos run: wait until the cluster healed, then prove every replica holds
the same state.

How replicas are compared (the cheapest correct way, no node change): once no
client writes any more, each node's applied index stops moving. We wait until
every node answers its status with the same `applied_index` (equal to its
`commit_index`), then read ALL keys from each node with a *serializable* range
(served from that node's own state machine, not forwarded to the leader) and
digest it: sha256 over the header revision and every key-value with its
create/mod revision, version and lease, plus the node's lease ids (a
serializable lease list, also served from that node's state machine). Then we ask each node's status again:
only if every applied index is still the one we started from do the digests
count (the reads then belong to that applied index); otherwise (an election
appended a no-op entry meanwhile) we try again, a bounded number of times.

Identical (applied index, revision, digest) on every node = converged. This
covers the visible key space and the revision counter; it does not compare the
per-client session table or the MVCC history below the current revision.
"""
from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cluster.client import Client, ClientError
from cluster.kv import RangeResponse
from cluster.discovery import ClusterState
from supervisor.status import collect, leader_of, query_status


@dataclass(frozen=True, slots=True)
class Replica:
    node_id: int
    applied_index: int
    revision: int
    keys: int
    digest: str


@dataclass(frozen=True, slots=True)
class Convergence:
    converged: bool
    applied_index: int | None
    replicas: tuple[Replica, ...] = ()
    attempts: int = 0
    reason: str = ""
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"converged": self.converged, "applied_index": self.applied_index,
                "attempts": self.attempts, "reason": self.reason, "seconds": round(self.seconds, 3),
                "replicas": [{"node": r.node_id, "applied_index": r.applied_index, "revision": r.revision,
                              "keys": r.keys, "sha256": r.digest} for r in self.replicas]}


def wait_healed(load: Callable[[], ClusterState], timeout: float) -> bool:
    """Every node alive, answering, not paused, and exactly one leader (bounded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        statuses = collect(load(), timeout=0.5)
        answering = all(s.alive and s.role in ("leader", "follower") for s in statuses)
        if answering and leader_of(statuses) is not None:
            return True
        time.sleep(0.2)
    return False


def digest(response: RangeResponse, leases: tuple[int, ...] = ()) -> str:
    h = hashlib.sha256(f"revision {response.revision}\n".encode())
    for kv in response.kvs:
        h.update(repr((kv.key, kv.value, kv.create_revision, kv.mod_revision, kv.version, kv.lease)).encode())
        h.update(b"\n")
    if leases:
        h.update(f"leases {list(leases)}\n".encode())
    return h.hexdigest()


def _applied(endpoints: dict[int, str]) -> dict[int, tuple[int, int]] | None:
    """node -> (applied, commit), or None if a node does not answer."""
    out = {}
    for node_id, endpoint in endpoints.items():
        st = query_status(endpoint, timeout=1.0)
        if st is None:
            return None
        out[node_id] = (int(st["applied_index"]), int(st["commit_index"]))
    return out


def _read_all(node_id: int, endpoint: str) -> Replica | None:
    client = Client([endpoint], timeout=2.0, attempt_timeout=1.0)
    try:
        response = client.range(b"", prefix=True, serializable=True)
        leases = client.lease_list(serializable=True).ids
    except ClientError:
        return None
    finally:
        client.close()
    return Replica(node_id, 0, response.revision, len(response.kvs), digest(response, leases))


def compare_replicas(state: ClusterState, timeout: float = 30.0) -> Convergence:
    """Wait (bounded) for one applied index everywhere, then compare digests at it."""
    endpoints = {n.id: n.client for n in state.nodes}
    start = time.monotonic()
    deadline = start + timeout
    attempts = 0
    reason = "no attempt"
    while time.monotonic() < deadline:
        attempts += 1
        before = _applied(endpoints)
        if before is None:
            reason = "a node did not answer its status"
        elif len({a for a, _ in before.values()}) != 1 or any(a != c for a, c in before.values()):
            reason = f"applied indexes differ: {dict(sorted(before.items()))}"
        else:
            index = next(iter(before.values()))[0]
            replicas = [_read_all(node_id, ep) for node_id, ep in sorted(endpoints.items())]
            after = _applied(endpoints)
            if after == before and all(r is not None for r in replicas):
                found = tuple(Replica(r.node_id, index, r.revision, r.keys, r.digest)
                              for r in replicas if r is not None)
                same = len({(r.revision, r.digest) for r in found}) == 1
                return Convergence(same, index, found, attempts,
                                   "identical" if same else "replicas differ at the same applied index",
                                   time.monotonic() - start)
            reason = "the applied index moved during the reads"
        time.sleep(0.2)
    return Convergence(False, None, (), attempts, f"timed out: {reason}", time.monotonic() - start)
