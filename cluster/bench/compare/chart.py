"""The comparison's bar chart: ops/s per system per workload, and p50 (solid) / p99
(hatched) latency, log scales (PySyncObj's local reads are orders of magnitude off
the others'). matplotlib is the `bench` extra, imported here only."""
from __future__ import annotations

from collections.abc import Sequence

from cluster.bench.compare.plan import SYSTEMS, WORKLOADS, Measurement
from cluster.bench.compare.table import fsyncs

COLORS = {"jangada": "tab:blue", "jangada-loopwrites": "tab:gray", "jangada-nofsync": "tab:brown",
          "jangada-idleface": "tab:purple", "jangada-secure": "tab:red",
          "jangada-grpc": "tab:cyan", "jangada-grpc-tls": "tab:olive",
          "grpc-noop": "tab:pink", "etcd": "tab:green", "pysyncobj": "tab:orange"}


def draw(measurements: Sequence[Measurement], path: str, title: str) -> None:
    import matplotlib  # type: ignore[import-not-found, unused-ignore]
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # type: ignore[import-not-found, unused-ignore]

    keys = [w.key for w in WORKLOADS if any(m.workload == w.key for m in measurements)]
    systems = [s for s in SYSTEMS if any(m.system == s for m in measurements)]
    by = {(m.system, m.workload): m for m in measurements}
    width = 0.8 / max(1, len(systems))
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(13, 8.5), sharex=True)
    for i, system in enumerate(systems):
        xs = [k + (i - (len(systems) - 1) / 2) * width for k in range(len(keys))]
        ms = [by.get((system, key)) for key in keys]
        durable = all(fsyncs(m.durability) for m in ms if m is not None)
        label = system + ("" if durable else " (NO fsync)")
        ops = [m.ops_per_s if m else 0 for m in ms]
        bars = top.bar(xs, ops, width, label=label, color=COLORS.get(system))
        top.bar_label(bars, labels=[f"{v:,.0f}" if v else "" for v in ops], fontsize=7, rotation=90, padding=2)
        bottom.bar(xs, [m.latency_ms["p99"] if m else 0 for m in ms], width, color=COLORS.get(system), alpha=0.35,
                   hatch="//", edgecolor=COLORS.get(system), label=f"{system} p99")
        bottom.bar(xs, [m.latency_ms["p50"] if m else 0 for m in ms], width, color=COLORS.get(system),
                   label=f"{system} p50")
    top.set_yscale("log")
    top.set_ylim(top=max([m.ops_per_s for m in measurements] + [1]) * 5)  # room for the bar labels
    top.set_ylabel("ok ops/s (log)")
    top.set_title(title)
    top.legend(fontsize=8)
    top.grid(alpha=0.3, axis="y", which="both")
    bottom.set_yscale("log")
    bottom.set_ylabel("latency ms (log): p50 solid, p99 hatched")
    bottom.legend(fontsize=7, ncol=2)
    bottom.grid(alpha=0.3, axis="y", which="both")
    bottom.set_xticks(range(len(keys)))
    bottom.set_xticklabels(keys)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
