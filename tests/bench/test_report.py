"""The bench's bookkeeping: budgets add up, each target picks the right first
endpoint, a failed op is counted as failed (never in the latencies), and the JSON
summary has a stable shape whose counts add up."""
from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest

from cluster.bench.options import BenchOptions
from cluster.bench.report import SCHEMA, SUMMARY_KEYS, render_text, summarize
from cluster.bench.runner import BenchError, ClusterView, client_endpoints, split_budget
from cluster.bench.tally import ThreadTally, merge_tallies
from cluster.bench.worker import measure
from cluster.client import ClientTimeout, InvalidRequestError

A, B, C = "tcp://127.0.0.1:1", "tcp://127.0.0.1:2", "tcp://127.0.0.1:3"
VIEW = ClusterView([A, B, C], B, {A: "follower", B: "leader", C: "follower"})


@pytest.mark.parametrize("ops, clients", [(10, 3), (200, 2), (7, 7), (100_001, 64), (None, 4)])
def test_the_op_budget_is_dealt_evenly_and_adds_up(ops: int | None, clients: int) -> None:
    budgets = split_budget(ops, clients)
    assert len(budgets) == clients
    if ops is None:
        assert budgets == [None] * clients
    else:
        assert sum(budgets) == ops and max(budgets) - min(budgets) <= 1  # type: ignore[type-var, arg-type]


def test_each_target_chooses_where_clients_start_and_keeps_the_rest_for_failover() -> None:
    assert [eps[0] for eps in client_endpoints(VIEW, "leader", 3)] == [B, B, B]
    assert [eps[0] for eps in client_endpoints(VIEW, "followers", 4)] == [A, C, A, C]
    assert [eps[0] for eps in client_endpoints(VIEW, "all", 4)] == [A, B, C, A]
    assert all(sorted(eps) == [A, B, C] for eps in client_endpoints(VIEW, "all", 4))
    with pytest.raises(BenchError):
        client_endpoints(ClusterView([A], None, {A: "follower"}), "leader", 1)
    with pytest.raises(BenchError):
        client_endpoints(ClusterView([A], A, {A: "leader"}), "followers", 1)


def flaky_op(every: int) -> Callable[[], str]:
    calls = iter(range(10**9))

    def op() -> str:
        n = next(calls)
        if n % every == every - 1:
            raise ClientTimeout("no answer") if n % 2 else InvalidRequestError("too big")
        return "put"
    return op


def test_a_failed_op_is_counted_as_failed_and_kept_out_of_the_latencies() -> None:
    tally = ThreadTally()
    measure(flaky_op(5), 100, time.monotonic(), 60.0, lambda: False, tally)
    assert tally.completed == 100
    assert tally.latency.total == 80
    assert sum(tally.errors.values()) == 20
    assert set(tally.errors) == {"ClientTimeout", "InvalidRequestError"}
    assert sum(tally.timeline.values()) == 100


def test_the_duration_and_the_stop_flag_end_a_run_without_a_budget() -> None:
    tally = ThreadTally()
    measure(flaky_op(1000), None, time.monotonic() - 10, 1.0, lambda: False, tally)
    assert tally.completed == 0  # the deadline had passed
    measure(flaky_op(1000), None, time.monotonic(), 60.0, lambda: tally.completed >= 30, tally)
    assert tally.completed == 30


def worker_results() -> list[dict[str, object]]:
    out = []
    for process in range(2):
        tallies = [ThreadTally(), ThreadTally()]
        for tally in tallies:
            measure(flaky_op(5), 50, time.monotonic(), 60.0, lambda: False, tally)
        out.append(merge_tallies(process, tallies))
    return out


def test_the_json_summary_has_a_stable_shape_and_its_counts_add_up() -> None:
    options = BenchOptions(workload="put", processes=2, in_flight=2, ops=200)
    cluster = {"endpoints": [A, B, C], "leader": B, "roles": VIEW.roles, "fsync": "always"}
    summary = json.loads(json.dumps(summarize(options, worker_results(), 2.0, cluster)))
    assert tuple(summary) == SUMMARY_KEYS and summary["schema"] == SCHEMA
    assert summary["ops"] == {"total": 200, "ok": 160, "failed": 40}
    assert sum(summary["errors"].values()) == 40 and summary["kinds"] == {"put": 160}
    assert summary["ops_per_s"] == 80.0
    assert set(summary["latency_ms"]) == {"p50", "p90", "p99", "p99.9", "max", "min", "mean"}
    lat = summary["latency_ms"]
    assert lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["p99.9"] <= lat["max"]
    assert sum(summary["timeline"]["ops"]) == 200 and summary["timeline"]["interval_s"] > 0
    assert summary["cluster"]["fsync"] == "always" and summary["options"]["in_flight"] == 2
    assert set(summary["load_cpu"]) == {"cpu_s", "us_per_op", "cores"}
    text = render_text(summary)
    assert "fsync always" in text and "160 ok, 40 failed" in text and "ClientTimeout" in text


def test_an_outage_is_the_longest_time_without_an_ok_write_after_each_kill() -> None:
    from cluster.bench.report import outages
    writes = [0.1, 0.2, 1.0, 1.05, 1.6, 1.7, 1.8, 3.5, 3.6]
    # kill at 0.5: next write 1.0 (0.5), then gaps 0.05, 0.55, 0.1, 0.1, until the kill at 2.0 (0.2)
    # kill at 2.0: nothing until 3.5 (1.5), then 0.1, then to the end 4.0 (0.4)
    assert outages([0.5, 2.0], writes, 4.0) == [0.55, 1.5]
    assert outages([1.0], [], 3.0) == [2.0]  # no write at all after the kill: an outage to the end
    assert outages([], writes, 4.0) == []


def test_the_kill_summary_counts_only_kills_that_happened() -> None:
    from cluster.bench.killer import Kill
    from cluster.bench.report import leader_kills
    results = [{"ok_write_times": [0.1, 1.2, 1.3]}, {"ok_write_times": [0.2, 1.25, 2.9]}]
    kills = [Kill(1.0, True, "SIGKILL node 1"), Kill(2.0, False, "no node claims to be the leader")]
    summary = leader_kills(kills, results, 3.0)
    assert summary["kills"] == 1 and summary["at_s"] == [1.0]
    assert summary["outage_s"] == [pytest.approx(1.6)] and summary["outage_max_s"] == pytest.approx(1.6)
    assert summary["failed_kills"] == ["no node claims to be the leader"]


def test_the_leader_killer_waits_for_a_healthy_cluster() -> None:
    from cluster.bench.killer import HEALTHY_LAG, healthy

    def node(role: str, applied: int, commit: int = 5000, alive: bool = True) -> dict:
        return {"role": role, "alive": alive, "applied_index": applied, "commit_index": commit}

    up = [node("leader", 5000), node("follower", 5000), node("follower", 5000 - HEALTHY_LAG)]
    assert healthy({"nodes": up})
    assert not healthy({"nodes": up[:2] + [node("follower", 5000 - HEALTHY_LAG - 1)]})  # still replaying
    assert not healthy({"nodes": up[:2] + [node("follower", 5000, alive=False)]})
    assert not healthy({"nodes": [node("follower", 5000)] * 3})  # no leader yet
    assert not healthy({"nodes": up[:2] + [{"role": "follower", "alive": True, "applied_index": None}]})
    assert not healthy(None) and not healthy({"nodes": []})
