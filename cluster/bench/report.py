"""A run's figures: the workers' results combined into one JSON-ready summary (its
shape is stable: `SCHEMA` changes when it does), and the text an operator reads.

    ops_per_s      ok operations / the measured wall time (first start to last completion)
    latency_ms     p50 p90 p99 p99.9 max, mean: ok operations only, client-side, full round trip
    errors         failed operations by error type (ClientTimeout = outcome unknown)
    fsync          the cluster's storage.fsync ("always" | "none"), or "unknown"
    leader_kills   --kill-leader: per kill, the longest time without an ok write (null without it)
    interruptions  --pipeline: leader changes the generator followed (count, longest and
                   total seconds from a lost request to the next answer); its requests were
                   sent again, not counted as errors
    load_cpu       the load processes' own CPU while measuring: seconds, per op (us), and
                   as cores busy (cpu_s / elapsed): near the machine's core count, the
                   load generator, not the cluster, may be what limits the figure
"""
from __future__ import annotations

import bisect
import statistics
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from cluster.bench.histogram import Histogram
from cluster.bench.killer import Kill
from cluster.bench.options import BenchOptions
from cluster.bench.tally import INTERVAL
from cluster.discovery import DiscoveryError, default_layout, read_state
from cluster.spec import SpecError, load_spec

SCHEMA = 1
PERCENTILES = (("p50", 50.0), ("p90", 90.0), ("p99", 99.0), ("p99.9", 99.9))
SUMMARY_KEYS = ("schema", "workload", "options", "cluster", "elapsed_s", "ops", "ops_per_s", "latency_ms",
                "errors", "kinds", "prefill_errors", "load_cpu", "leader_kills", "interruptions", "timeline")


def fsync_setting(config: str | None, cwd: Path | None = None) -> str:
    """The cluster's fsync policy from `config`, else from the config the supervisor's
    state file here names; "unknown" when neither can be read (node status lacks it)."""
    if config is None:
        try:
            state = read_state(default_layout(cwd))
        except DiscoveryError:
            state = None
        config = state.config if state is not None else None
    if config is None:
        return "unknown"
    try:
        return load_spec(config).storage.fsync
    except (SpecError, OSError):
        return "unknown"


def summarize(options: BenchOptions, results: list[dict[str, Any]], wall: float,
              cluster: dict[str, Any], kills: Sequence[Kill] = ()) -> dict[str, Any]:
    latency = combined_latency(results)
    errors: dict[str, int] = {}
    kinds: dict[str, int] = {}
    timeline: dict[int, int] = {}
    for result in results:
        for name, count in result["errors"].items():
            errors[name] = errors.get(name, 0) + count
        for name, count in result["kinds"].items():
            kinds[name] = kinds.get(name, 0) + count
        for slot, count in result["timeline"].items():
            timeline[int(slot)] = timeline.get(int(slot), 0) + count
    failed = sum(errors.values())
    completed = sum(r["completed"] for r in results)
    assert completed == latency.total + failed, "every completed op is either ok or failed"
    return {
        "schema": SCHEMA, "workload": options.workload, "options": asdict(options), "cluster": cluster,
        "elapsed_s": round(wall, 6),
        "ops": {"total": completed, "ok": latency.total, "failed": failed},
        "ops_per_s": round(latency.total / wall, 1) if wall > 0 else 0.0,
        "latency_ms": latency_ms(latency),
        "errors": dict(sorted(errors.items())), "kinds": dict(sorted(kinds.items())),
        "prefill_errors": sum(r["prefill_errors"] for r in results),
        "load_cpu": load_cpu(sum(r.get("cpu_s", 0.0) for r in results), completed, wall),
        "leader_kills": leader_kills(kills, results, wall) if options.kill_leader else None,
        "interruptions": interruptions([x for r in results for x in r.get("interruptions", ())]),
        "timeline": {"interval_s": INTERVAL,
                     "ops": [timeline.get(i, 0) for i in range(max(timeline, default=-1) + 1)]},
    }


def outages(kills: Sequence[float], ok_writes: Sequence[float], end: float) -> list[float]:
    """Per kill, the longest time without an ok write completing, from the kill until
    the next kill (or `end`): what a client sees as the write outage. `ok_writes` sorted."""
    out = []
    for i, kill in enumerate(kills):
        until = kills[i + 1] if i + 1 < len(kills) else max(end, kill)
        previous, longest = kill, 0.0
        for t in ok_writes[bisect.bisect_left(ok_writes, kill):bisect.bisect_left(ok_writes, until)]:
            longest = max(longest, t - previous)
            previous = t
        out.append(round(max(longest, until - previous), 6))
    return out


def leader_kills(kills: Sequence[Kill], results: list[dict[str, Any]], wall: float) -> dict[str, Any]:
    done = [k for k in kills if k.ok]
    ok_writes = sorted(t for r in results for t in r.get("ok_write_times", ()))
    gaps = outages([k.at for k in done], ok_writes, wall)
    return {"kills": len(done), "failed_kills": [k.detail for k in kills if not k.ok],
            "at_s": [round(k.at, 3) for k in done], "outage_s": gaps,
            "outage_median_s": round(statistics.median(gaps), 6) if gaps else None,
            "outage_max_s": max(gaps) if gaps else None}


def load_cpu(cpu_s: float, ops: int, wall: float) -> dict[str, float]:
    return {"cpu_s": round(cpu_s, 3), "us_per_op": round(cpu_s / ops * 1e6, 1) if ops else 0.0,
            "cores": round(cpu_s / wall, 2) if wall > 0 else 0.0}


def combined_latency(results: list[dict[str, Any]]) -> Histogram:
    latency = Histogram()
    for result in results:
        latency.merge(Histogram.from_dict(result["latency"]))
    return latency


def latency_ms(hist: Histogram) -> dict[str, float]:
    out = {name: hist.value_at(p) / 1000 for name, p in PERCENTILES}
    out["max"] = hist.max / 1000
    out["min"] = hist.min / 1000
    out["mean"] = round(hist.mean / 1000, 3)
    return out


def interruptions(lengths: Sequence[float]) -> dict[str, Any]:
    return {"count": len(lengths), "longest_s": round(max(lengths, default=0.0), 3),
            "total_s": round(sum(lengths), 3)}


def render_text(summary: dict[str, Any]) -> str:
    opts, cluster, ops, lat = summary["options"], summary["cluster"], summary["ops"], summary["latency_ms"]
    what = summary["workload"]
    if what in ("get", "range", "mixed"):
        what += " (serializable)" if opts["serializable"] else " (linearizable)"
    lines = [
        f"workload:   {what}, {opts['processes']} process(es) x {opts['in_flight']} in flight = "
        f"{opts['processes'] * opts['in_flight']} clients, target {opts['target']}, "
        f"{opts['keys']} keys, {opts['value_size']}-byte values",
        f"cluster:    {len(cluster['endpoints'])} member(s), leader {cluster['leader'] or 'unknown'}, "
        f"fsync {cluster['fsync']}",
        f"ops:        {ops['total']} in {summary['elapsed_s']:.3f} s ({ops['ok']} ok, {ops['failed']} failed)",
        f"throughput: {summary['ops_per_s']:.1f} ops/s",
        "latency ms: " + "  ".join(f"{k} {lat[k]:.3f}" for k in ("p50", "p90", "p99", "p99.9", "max")),
    ]
    cpu = summary["load_cpu"]
    lines.append(f"load cpu:   {cpu['us_per_op']:.0f} us/op, {cpu['cores']:.2f} cores busy generating load")
    kills = summary["leader_kills"]
    if kills is not None:
        line = f"kills:      {kills['kills']} leader SIGKILLs"
        if kills["kills"]:
            line += (f"; write outage median {kills['outage_median_s']:.3f} s, max {kills['outage_max_s']:.3f} s"
                     f" (each: {', '.join(f'{g:.2f}' for g in kills['outage_s'])})")
        if kills["failed_kills"]:
            line += f"; {len(kills['failed_kills'])} kill(s) failed: {kills['failed_kills'][0]}"
        lines.append(line)
    gaps = summary["interruptions"]
    if gaps["count"]:
        lines.append(f"followed:   {gaps['count']} leader change(s), longest interruption {gaps['longest_s']:.3f} s, "
                     f"{gaps['total_s']:.3f} s in all (lost requests sent again, not errors)")
    errors = summary["errors"]
    lines.append("errors:     " + (", ".join(f"{k} {v}" for k, v in errors.items()) if errors else "none"))
    cas = summary["kinds"]
    if "cas-succeeded" in cas or "cas-failed" in cas:
        lines.append(f"cas:        {cas.get('cas-succeeded', 0)} succeeded, {cas.get('cas-failed', 0)} "
                     "compare failed (counted ok)")
    if summary["prefill_errors"]:
        lines.append(f"prefill:    {summary['prefill_errors']} key(s) could not be written first")
    return "\n".join(lines)
