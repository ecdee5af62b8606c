"""The member's Prometheus metrics, read from the loop's last published snapshot.

A custom prometheus_client Collector: a scrape turns the `MetricsSnapshot` the loop
published (node/telemetry.py) into metric families; the loop itself never touches a
prometheus object. etcd's metric names are used where the meaning is the same, so
dashboards and alerts written for etcd read them; jangada's own are `jangada_*`.

Where etcd's name cannot be kept: etcd exports a few *gauges* whose names end in
`_total` (etcd_debugging_mvcc_keys_total, etcd_debugging_mvcc_watcher_total), which
`promtool check metrics` rejects ("non-counter metrics should not have _total
suffix"); those are `jangada_mvcc_keys` and `jangada_watchers` here. etcd's
proposals committed/applied "gauges" named `_total` are monotonic within a process
(the commit and apply indexes), so they are counters here, under etcd's names.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from node.telemetry import HistogramSnapshot, MetricsSnapshot

#: The etcd release whose API and metrics we follow (also /version's etcdserver).
ETCD_VERSION = "3.4.0"

# (name, help, where the value comes from: status key or counter key)
_GAUGES = (
    ("etcd_server_proposals_pending", "The number of pending proposals to commit.", "pending_requests"),
    ("etcd_mvcc_db_total_size_in_bytes", "The store's accounted size in bytes (see docs/operations.md, "
     "'Metrics and health').", "db_bytes"),
    ("jangada_mvcc_keys", "Keys with retained history in the MVCC store (etcd's etcd_debugging_mvcc_keys_total).",
     "keys"),
    ("jangada_mvcc_revision", "The store's current revision.", "revision"),
    ("jangada_mvcc_compact_revision", "The store's compacted revision.", "compact_revision"),
    ("jangada_watchers", "Watches open on this member (etcd's etcd_debugging_mvcc_watcher_total).", "watches"),
    ("jangada_leases", "Leases this member keeps timers for.", "leases"),
    ("jangada_raft_term", "This member's current Raft term.", "term"),
    ("jangada_raft_last_index", "The last index of this member's Raft log.", "last_index"),
    ("jangada_snapshot_index", "The index of this member's latest snapshot.", "snapshot_index"),
    ("jangada_wal_bytes", "Bytes of write-ahead log on disk.", "wal_bytes"),
    ("jangada_auth_tokens", "Auth tokens this member holds.", "auth_tokens"),
)
_COUNTERS = (
    ("etcd_server_leader_changes_seen_total", "The number of leader changes seen.", "leader_changes"),
    ("etcd_server_proposals_committed_total", "The total number of consensus proposals committed "
     "(this member's commit index).", "commit_index"),
    ("etcd_server_proposals_applied_total", "The total number of consensus proposals applied "
     "(this member's applied index).", "applied_index"),
    ("etcd_server_proposals_failed_total", "The total number of failed proposals seen.", "proposals_failed"),
    ("etcd_server_slow_apply_total", "The total number of slow apply requests (over 100 ms).", "slow_applies"),
    ("etcd_debugging_server_lease_expired_total", "The total number of expired leases (revokes this member "
     "proposed as leader).", "lease_expired"),
    ("jangada_loop_stalls_total", "Loop turns longer than a third of the minimum election timeout "
     "(node/loop_stalls.py).", "loop_stalls"),
    ("jangada_fault_dropped_frames_total", "Frames dropped by an injected drop-traffic fault.",
     "fault_dropped_frames"),
)
_HISTOGRAMS = (
    ("etcd_disk_wal_fsync_duration_seconds", "The latency distributions of fsync called by WAL "
     "(jangada: one group-commit WAL write and its fdatasync).", "wal_fsync"),
    ("etcd_disk_backend_commit_duration_seconds", "The latency distributions of commit called by backend "
     "(jangada: the loop's part of a local snapshot's commit: queued WAL writes ended, the WAL marker; the "
     "file's fsync and rename run on its own thread).", "snapshot_commit"),
    ("jangada_loop_turn_duration_seconds", "Busy time of one turn of the node's loop (after poll returns).",
     "loop_turn"),
    ("jangada_wal_append_entries", "Entries per WAL write (group commit batch size).", "append_batch"),
)


def _value(snapshot: MetricsSnapshot, key: str) -> float:
    if key in snapshot.counters:
        return float(snapshot.counters[key])
    value = snapshot.status.get(key)
    return float(value) if isinstance(value, (int, float)) else 0.0


class MetricsCollector(Collector):
    """Yields every metric from `read()`'s snapshot; nothing before the first one
    (a scrape before the loop's first publish sees only the version)."""

    def __init__(self, read: Callable[[], MetricsSnapshot | None]) -> None:
        self._read = read

    def describe(self) -> list[Metric]:
        return []  # no up-front description: the registry then does not call collect() at registration

    def collect(self) -> Iterator[Metric]:
        version = GaugeMetricFamily("etcd_server_version", "Which version is running. 1 for 'server_version' "
                                    "label with current version.", labels=["server_version"])
        version.add_metric([ETCD_VERSION], 1)
        yield version
        snapshot = self._read()
        if snapshot is None:
            return
        status = snapshot.status
        yield GaugeMetricFamily("etcd_server_has_leader", "Whether or not a leader exists. 1 is existence, "
                                "0 is not.", value=1 if status.get("leader_id") else 0)
        yield GaugeMetricFamily("etcd_server_is_leader", "Whether or not this member is a leader. 1 if is, "
                                "0 otherwise.", value=1 if status.get("role") == "leader" else 0)
        for name, text, key in _GAUGES:
            yield GaugeMetricFamily(name, text, value=_value(snapshot, key))
        for name, text, key in _COUNTERS:
            yield CounterMetricFamily(name, text, value=_value(snapshot, key))
        yield _labelled_counter("jangada_dropped_frames_total", "Frames this member refused to act on, by kind.",
                                status.get("dropped", {}))
        auth = status.get("auth", {})
        yield _labelled_counter("jangada_auth_refusals_total", "Requests refused by authentication or "
                                "authorization, by kind.",
                                {k: v for k, v in auth.items() if k not in ("enabled", "tokens")})
        alarms = GaugeMetricFamily("jangada_alarms", "Alarms raised in the cluster (1 per member and alarm).",
                                   labels=["member_id", "alarm"])
        for member_id, alarm in snapshot.alarms:
            alarms.add_metric([str(member_id), str(alarm)], 1)
        yield alarms
        for name, text, key in _HISTOGRAMS:
            histogram = snapshot.histograms.get(key)
            if histogram is not None:
                yield _histogram(name, text, histogram)


def _labelled_counter(name: str, text: str, counts: Mapping[str, Any]) -> CounterMetricFamily:
    family = CounterMetricFamily(name, text, labels=["kind"])
    for kind, count in sorted(counts.items()):
        if isinstance(count, (int, float)):
            family.add_metric([str(kind)], count)
    return family


def _histogram(name: str, text: str, h: HistogramSnapshot) -> HistogramMetricFamily:
    buckets = [(_bound(b), float(n)) for b, n in zip(h.bounds, h.cumulative)] + [("+Inf", float(h.count))]
    return HistogramMetricFamily(name, text, buckets=buckets, sum_value=h.sum)


def _bound(bound: float) -> str:
    return repr(float(bound))
