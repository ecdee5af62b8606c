"""`python -m cluster.bench space`: members' memory under a steady write load with
auto-compaction, the soak behind issue 16's "RSS stays flat after the first
retention period" (docs/operations.md, "Space").

Against the cluster `python -m supervisor up` started in this directory (its
state file names the members' pids), it puts at a constant rate over a fixed set
of keys for `--duration` seconds and samples, every `--sample` seconds, each
member's RSS (psutil) and the leader's revision, compact revision and accounted
size. It prints RSS at the start, after the first retention and at the end per
member, and the largest RSS seen after the first retention; `--plot FILE.png`
draws RSS and the revisions over time (matplotlib, as `--plot` of the bench);
`--json FILE` keeps every sample.

    python -m supervisor up 3 --config space.toml --detach   # [maintenance] periodic "30s"
    python -m cluster.bench space --duration 300 --rate 200 --plot rss.png
"""
from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any, TextIO

from cluster.bench.plot import PlotUnavailable, require_matplotlib
from cluster.cluster_state import ClusterState, DiscoveryError, default_layout, read_state
from cluster.spec import compaction_retention, load_spec


@dataclass
class Samples:
    """What the sampler saw, one row per sample: seconds since the start, RSS per
    member, and the leader's revision, compact revision and accounted size."""

    t: list[float] = field(default_factory=list)
    rss: dict[int, list[int]] = field(default_factory=dict)
    #: None where no leader answered the sample's status request
    revision: list[int | None] = field(default_factory=list)
    compact_revision: list[int | None] = field(default_factory=list)
    db_size: list[int | None] = field(default_factory=list)
    puts: int = 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m cluster.bench space", description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=1800.0, metavar="S", help="seconds of load (1800)")
    parser.add_argument("--rate", type=float, default=200.0, metavar="N", help="puts per second (200)")
    parser.add_argument("--keys", type=int, default=1000, metavar="N", help="keys written round-robin (1000)")
    parser.add_argument("--value-bytes", type=int, default=100, metavar="N", help="value size (100)")
    parser.add_argument("--sample", type=float, default=5.0, metavar="S", help="seconds between samples (5)")
    parser.add_argument("--plot", metavar="FILE.png", help="draw RSS and revisions over time")
    parser.add_argument("--json", metavar="FILE", help="write every sample as JSON")
    return parser


def main(argv: list[str], out: TextIO | None = None) -> int:
    out = out or sys.stdout
    args = build_parser().parse_args(argv)
    try:
        if args.plot:
            require_matplotlib()
        layout = default_layout()
        state = read_state(layout)
        if state is None or not state.nodes:
            raise DiscoveryError(f"no cluster found at {layout.state}: start one with `python -m supervisor up 3`")
    except (PlotUnavailable, DiscoveryError) as error:
        print(f"Error: {error}", file=sys.stderr)
        return 2
    spec = load_spec(layout.config)
    m = spec.maintenance
    retention_s = compaction_retention(m.auto_compaction_mode, m.auto_compaction_retention) \
        if m.auto_compaction_mode == "periodic" else 0.0
    samples = soak(state, args.duration, args.rate, args.keys, args.value_bytes, args.sample)
    summary = summarize(samples, retention_s)
    summary.update(mode=m.auto_compaction_mode or "off", retention=m.auto_compaction_retention, rate=args.rate,
                   keys=args.keys, value_bytes=args.value_bytes)
    print(json.dumps(summary, indent=2), file=out)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"summary": summary, "samples": samples.__dict__}, f)
    if args.plot:
        draw(samples, retention_s, summary, args.plot)
    return 0


def soak(state: ClusterState, duration: float, rate: float, keys: int, value_bytes: int,
         every: float) -> Samples:
    """Put at `rate` for `duration` seconds while sampling every `every` seconds."""
    from cluster.client import Client  # the run's machinery loads only once a run is asked for

    endpoints = state.endpoints()
    samples = Samples(rss={n.id: [] for n in state.nodes})
    done = threading.Event()
    start = time.monotonic()
    sampler = threading.Thread(target=_sample, args=(state, samples, start, every, done), daemon=True)
    sampler.start()
    value = b"v" * value_bytes
    puts = 0
    with Client(endpoints, timeout=30.0) as client:
        while (now := time.monotonic()) - start < duration:
            due = start + puts / rate
            if due > now:
                time.sleep(due - now)
            client.put(f"space/{puts % keys:06d}", value)
            puts += 1
            samples.puts = puts
    done.set()
    sampler.join()
    return samples


def _sample(state: ClusterState, samples: Samples, start: float, every: float, done: threading.Event) -> None:
    import psutil

    from cluster.client import Client

    processes = {n.id: psutil.Process(n.pid) for n in state.nodes if n.pid}
    with Client(state.endpoints(), timeout=5.0, attempt_timeout=2.0) as client:
        while True:
            samples.t.append(round(time.monotonic() - start, 2))
            for node_id, proc in processes.items():
                samples.rss[node_id].append(proc.memory_info().rss)
            status = _leader_status(client, state.endpoints())
            for name in ("revision", "compact_revision", "db_size"):
                getattr(samples, name).append(int(status[name]) if name in status else None)
            if done.wait(every):
                return


def _leader_status(client: Any, endpoints: list[str]) -> dict[str, Any]:
    for endpoint in endpoints:
        try:
            status = client.status(endpoint)
        except Exception:  # noqa: BLE001  # a member not answering: try the next one
            continue
        if status.get("role") == "leader":
            return status
    return {}


def summarize(samples: Samples, retention_s: float) -> dict[str, Any]:
    """RSS (MiB) per member at the start, at the first sample after one retention
    (plus one compaction interval), at the end, and the largest after that point."""
    settle = retention_s * 2 if retention_s else 0.0
    after = next((i for i, t in enumerate(samples.t) if t >= settle), len(samples.t) - 1)
    mib = 1024 * 1024
    members = {}
    for node_id, series in samples.rss.items():
        if not series:
            continue
        members[str(node_id)] = {
            "rss_start_mib": round(series[0] / mib, 1), "rss_settled_mib": round(series[after] / mib, 1),
            "rss_end_mib": round(series[-1] / mib, 1), "rss_max_after_settled_mib": round(max(series[after:]) / mib, 1)}
    elapsed = samples.t[-1] if samples.t else 0
    return {"elapsed_s": elapsed, "settled_at_s": samples.t[after] if samples.t else 0,
            "puts": samples.puts, "puts_per_s": round(samples.puts / elapsed, 1) if elapsed else 0,
            "members": members, "revision_end": _last(samples.revision),
            "compact_revision_end": _last(samples.compact_revision), "db_size_end": _last(samples.db_size)}


def _last(series: list[int | None]) -> int | None:
    return next((v for v in reversed(series) if v is not None), None)


def draw(samples: Samples, retention_s: float, summary: dict[str, Any], path: str) -> None:
    import matplotlib  # type: ignore[import-not-found]
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # type: ignore[import-not-found]

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 7), sharex=True)
    for node_id, series in samples.rss.items():
        top.plot(samples.t, [r / 1024 / 1024 for r in series], label=f"node {node_id}")
    if retention_s:
        top.axvline(retention_s, color="grey", linestyle="--", label="one retention")
    top.set_ylabel("RSS (MiB)")
    top.set_ylim(bottom=0)
    top.set_title(f"RSS under {summary['puts_per_s']:g} puts/s over {summary['keys']} keys, "
                  f"auto-compaction {summary['mode']} {summary['retention']}")
    top.legend()
    top.grid(alpha=0.3)
    for name, label in (("revision", "revision"), ("compact_revision", "compact revision")):
        points = [(t, v) for t, v in zip(samples.t, getattr(samples, name)) if v is not None]
        bottom.plot([t for t, _ in points], [v for _, v in points], label=label)
    bottom.set_xlabel("seconds")
    bottom.set_ylabel("revision")
    bottom.legend()
    bottom.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
