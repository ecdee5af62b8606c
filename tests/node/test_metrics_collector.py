"""The metrics a member exports, from a fake published snapshot: names, types and
values as Prometheus parses them; /health's verdicts; the JSON log lines."""
from __future__ import annotations

import json
import logging
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from cluster.kv.alarms import AlarmMember, AlarmType
from node.eventlog import JsonFormatter
from node.metrics_collector import MetricsCollector
from node.metrics_face import alarm_pairs
from node.metrics_http import Verdict, judge
from node.telemetry import Board, Histogram, MetricsSnapshot, Telemetry

STATUS: dict[str, Any] = {
    "node_id": 2, "role": "leader", "leader_id": 2, "term": 7, "commit_index": 120, "applied_index": 118,
    "last_index": 121, "snapshot_index": 100, "wal_bytes": 4096, "revision": 55, "pending_requests": 3,
    "dropped": {"peer-garbage": 4}, "leases": 2, "watches": 5,
    "auth": {"enabled": True, "tokens": 1, "permission_denied": 6, "invalid_token": 1},
}
COUNTERS = {"leader_changes": 2, "slow_applies": 1, "proposals_failed": 9, "lease_expired": 3,
            "db_bytes": 8192, "keys": 40, "compact_revision": 10, "auth_tokens": 1}


def snapshot(status: dict[str, Any] | None = None, alarms: tuple[tuple[int, str], ...] = (),
             at: float = 100.0) -> MetricsSnapshot:
    telemetry = Telemetry()
    for seconds in (0.0005, 0.003, 0.003, 2.0):
        telemetry.wal_fsync.observe(seconds)
    telemetry.append_batch.observe(7)
    return MetricsSnapshot(at, status if status is not None else STATUS, COUNTERS, telemetry.histograms(), alarms)


def scrape(current: MetricsSnapshot | None) -> dict[str, Any]:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(MetricsCollector(lambda: current))
    text = generate_latest(registry).decode()
    return {family.name: family for family in text_string_to_metric_families(text)}


def sample(families: dict[str, Any], name: str, suffix: str = "", **labels: str) -> float:
    family = families[name]
    for s in family.samples:
        if s.name == name + suffix and all(s.labels.get(k) == v for k, v in labels.items()):
            return float(s.value)
    raise AssertionError(f"no sample {name}{suffix} {labels}")


def test_etcd_names_types_and_values_come_from_the_published_snapshot() -> None:
    families = scrape(snapshot())
    expect = {
        "etcd_server_has_leader": ("gauge", 1), "etcd_server_is_leader": ("gauge", 1),
        "etcd_server_proposals_pending": ("gauge", 3), "etcd_mvcc_db_total_size_in_bytes": ("gauge", 8192),
        "jangada_mvcc_keys": ("gauge", 40), "jangada_watchers": ("gauge", 5), "jangada_leases": ("gauge", 2),
        "jangada_raft_term": ("gauge", 7),
    }
    for name, (kind, value) in expect.items():
        assert families[name].type == kind, name
        assert sample(families, name) == value, name
    # counters: the parser names the family without _total, the sample with it
    counters = {"etcd_server_leader_changes_seen": 2, "etcd_server_proposals_committed": 120,
                "etcd_server_proposals_applied": 118, "etcd_server_proposals_failed": 9,
                "etcd_server_slow_apply": 1, "etcd_debugging_server_lease_expired": 3}
    for name, value in counters.items():
        assert families[name].type == "counter", name
        assert sample(families, name, "_total") == value, name
    assert sample(families, "jangada_dropped_frames", "_total", kind="peer-garbage") == 4
    assert sample(families, "jangada_auth_refusals", "_total", kind="permission_denied") == 6
    assert sample(families, "etcd_server_version", server_version="3.4.0") == 1


def test_histograms_are_cumulative_with_etcd_buckets() -> None:
    families = scrape(snapshot())
    fsync = families["etcd_disk_wal_fsync_duration_seconds"]
    assert fsync.type == "histogram"
    assert sample(families, "etcd_disk_wal_fsync_duration_seconds", "_bucket", le="0.001") == 1
    assert sample(families, "etcd_disk_wal_fsync_duration_seconds", "_bucket", le="0.004") == 3
    assert sample(families, "etcd_disk_wal_fsync_duration_seconds", "_bucket", le="+Inf") == 4
    assert sample(families, "etcd_disk_wal_fsync_duration_seconds", "_count") == 4
    assert abs(sample(families, "etcd_disk_wal_fsync_duration_seconds", "_sum") - 2.0065) < 1e-9
    assert sample(families, "jangada_wal_append_entries", "_bucket", le="8.0") == 1
    assert {"etcd_disk_backend_commit_duration_seconds", "jangada_loop_turn_duration_seconds"} <= set(families)


def test_no_leader_and_alarms_show() -> None:
    families = scrape(snapshot({**STATUS, "leader_id": 0, "role": "follower"}, alarms=((3, "NOSPACE"),)))
    assert sample(families, "etcd_server_has_leader") == 0
    assert sample(families, "etcd_server_is_leader") == 0
    assert sample(families, "jangada_alarms", member_id="3", alarm="NOSPACE") == 1


def test_before_the_first_publish_only_the_version_is_exported() -> None:
    assert set(scrape(None)) == {"etcd_server_version"}


def test_histogram_bucket_bounds_are_inclusive_upper_bounds() -> None:
    h = Histogram((1.0, 2.0))
    for value in (1.0, 1.5, 2.0, 3.0):
        h.observe(value)
    assert h.snapshot().cumulative == (1, 3) and h.snapshot().count == 4


def test_leader_changes_count_each_new_known_leader() -> None:
    telemetry = Telemetry()
    for leader in (0, 2, 2, 0, 2, 3):
        telemetry.leader_seen(leader)
    assert telemetry.leader_changes == 3  # 2, back to 2 after a leaderless spell, 3


def test_health_needs_a_fresh_snapshot_a_leader_no_alarm_and_a_read() -> None:
    board = Board()
    assert not judge(board, 100.0, lambda: "").healthy
    board.current = snapshot(at=100.0)
    assert judge(board, 100.5, lambda: "") == Verdict(True)
    assert judge(board, 100.5, lambda: "") .body() == {"health": "true"}
    assert judge(board, 200.0, lambda: "").reason.startswith("NOT LIVE")
    assert judge(board, 100.5, lambda: "ClientTimeout: no answer").body() == {
        "health": "false", "reason": "QGET ERROR: ClientTimeout: no answer"}
    board.current = snapshot({**STATUS, "leader_id": 0}, at=100.0)
    assert judge(board, 100.5, lambda: "").reason == "RAFT NO LEADER"
    board.current = snapshot(alarms=((1, "CORRUPT"), (2, "NOSPACE")), at=100.0)
    assert judge(board, 100.5, lambda: "").reason == "ALARM CORRUPT,NOSPACE"


def test_alarm_pairs_name_each_raised_alarm_by_member() -> None:
    raised = [AlarmMember(2, AlarmType.NOSPACE), AlarmMember(1, AlarmType.CORRUPT)]
    assert alarm_pairs(raised) == ((1, "CORRUPT"), (2, "NOSPACE"))
    assert alarm_pairs(()) == ()


def test_json_log_lines_carry_the_position_as_fields() -> None:
    record = logging.LogRecord("jangada.node", logging.INFO, __file__, 1, "%s %s",
                               ("node=2 term=5 commit=118 applied=117", "became leader"), None)
    line = json.loads(JsonFormatter().format(record))
    assert line["level"] == "INFO" and line["msg"] == "became leader"
    assert (line["node"], line["term"], line["commit"], line["applied"]) == (2, 5, 118, 117)
    assert line["ts"].endswith("Z")
    plain = logging.LogRecord("jangada.node", logging.INFO, __file__, 1, "node=%d stopped", (3,), None)
    assert json.loads(JsonFormatter().format(plain)) | {"ts": ""} == {
        "ts": "", "level": "INFO", "node": 3, "msg": "stopped"}
