"""What every node of a supervised cluster is doing: the state file + psutil + each
node's `status` request, gathered in parallel with a short timeout per node (a
paused or dead node must not stall the table)."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

import psutil

from cluster.client import Client, ClientError
from cluster.discovery import ClusterState, NodeRecord
from supervisor.statefile import node_process

QUERY_TIMEOUT = 0.5


@dataclass(frozen=True, slots=True)
class NodeStatus:
    id: int
    pid: int
    alive: bool
    role: str  # leader | follower | candidate | pre-candidate | paused | unreachable | foreign | down
    term: int | None
    leader: int | None
    commit_index: int | None
    applied_index: int | None
    last_index: int | None
    snapshot_index: int | None
    wal_bytes: int | None
    rss_bytes: int | None
    restarts: int
    client: str
    peer: str
    state: str
    last_exit: str
    grpc: str = ""
    gateway: str = ""
    metrics: str = ""
    #: the raised alarms as this node's state machine has them: {"member_id", "alarm"}
    alarms: tuple[dict[str, Any], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """`status --json`'s node: every field, plus "endpoints" (each face's address)."""
        out = asdict(self)
        out["endpoints"] = {"client": self.client, "peer": self.peer, "grpc": self.grpc, "gateway": self.gateway,
                            "metrics": self.metrics}
        return out


def query_status(endpoint: str, timeout: float = QUERY_TIMEOUT) -> dict[str, Any] | None:
    """The node's own status, or None if it does not answer in time."""
    client = Client([endpoint], attempt_timeout=timeout, timeout=timeout)
    try:
        return client.status(timeout=timeout)
    except ClientError:
        return None
    finally:
        client.close()


def _one(record: NodeRecord, state: ClusterState, timeout: float) -> NodeStatus:
    proc = node_process(record, state)
    rss: int | None = None
    paused = False
    if proc is not None:
        try:
            rss = proc.memory_info().rss
            paused = proc.status() == psutil.STATUS_STOPPED
        except psutil.Error:
            proc = None
    answer = query_status(record.client, timeout) if proc is not None and not paused else None
    foreign = answer is not None and (answer.get("cluster_id") != state.cluster_id
                                      or answer.get("node_id") != record.id)
    if proc is None:
        role = "down"
    elif paused:
        role = "paused"
    elif foreign:
        # Another process answers on this node's address (e.g. a port taken by another
        # cluster while ours failed to bind): never mistake it for our node.
        role, answer = "foreign", None
    elif answer is None:
        role = "unreachable"
    else:
        role = str(answer.get("role", "?"))
    got = answer or {}
    return NodeStatus(
        id=record.id, pid=record.pid if proc is not None else 0, alive=proc is not None, role=role,
        term=got.get("term"), leader=got.get("leader_id"), commit_index=got.get("commit_index"),
        applied_index=got.get("applied_index"), last_index=got.get("last_index"),
        snapshot_index=got.get("snapshot_index"), wal_bytes=got.get("wal_bytes"), rss_bytes=rss,
        restarts=record.restarts, client=record.client, peer=record.peer, state=record.state,
        last_exit=record.last_exit, grpc=record.grpc, gateway=record.gateway, metrics=record.metrics,
        alarms=tuple(got.get("alarms", ())))


def collect(state: ClusterState, timeout: float = QUERY_TIMEOUT) -> list[NodeStatus]:
    with ThreadPoolExecutor(max_workers=max(1, min(16, len(state.nodes)))) as pool:
        return list(pool.map(lambda r: _one(r, state, timeout), state.nodes))


def alarm_lines(statuses: list[NodeStatus]) -> list[str]:
    """One line per alarm any node reports (alarms are replicated: every member that
    applied it reports it), for the human status."""
    raised = sorted({(a["member_id"], a["alarm"]) for s in statuses for a in s.alarms})
    return [f"ALARM {alarm} raised for node {member} (what to do: docs/operations.md, alarms)"
            for member, alarm in raised]


def leader_of(statuses: list[NodeStatus]) -> NodeStatus | None:
    """The leader of the highest term that some live node claims, if any."""
    leaders = [s for s in statuses if s.role == "leader" and s.term is not None]
    return max(leaders, key=lambda s: s.term or 0) if leaders else None


HEADERS = ["ID", "PID", "ALIVE", "ROLE", "TERM", "LEADER", "COMMIT", "APPLIED", "LAST", "SNAPSHOT",
           "WAL", "RSS", "RESTARTS", "GRPC", "GATEWAY", "ALARMS"]


def table_rows(statuses: list[NodeStatus]) -> list[list[str]]:
    return [[str(s.id), str(s.pid or "-"), "yes" if s.alive else "no", s.role, _opt(s.term), _opt(s.leader),
             _opt(s.commit_index), _opt(s.applied_index), _opt(s.last_index), _opt(s.snapshot_index),
             human_bytes(s.wal_bytes), human_bytes(s.rss_bytes), str(s.restarts),
             s.grpc.removeprefix("http://") or "-", s.gateway.removeprefix("http://") or "-",
             ",".join(f"{a['alarm']}:{a['member_id']}" for a in s.alarms) or "-"] for s in statuses]


def _opt(value: int | None) -> str:
    return "-" if value is None else str(value)


def human_bytes(value: int | None) -> str:
    if value is None:
        return "-"
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")
