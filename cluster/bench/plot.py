"""`--plot FILE.png`: throughput over time and the latency distribution, side by side.
matplotlib is an optional dependency (`pip install 'jangada[bench]'`): imported only
here, only when asked, and its absence is a one-line error before the run starts."""
from __future__ import annotations

from typing import Any

from cluster.bench.histogram import Histogram

MISSING = "--plot needs matplotlib: pip install 'jangada[bench]' (or pip install matplotlib)"


NICE_MS = (0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000)


class PlotUnavailable(Exception):
    """matplotlib cannot be imported."""


def require_matplotlib() -> None:
    try:
        import matplotlib  # type: ignore[import-not-found]  # noqa: F401
    except ImportError:
        raise PlotUnavailable(MISSING) from None


def draw(summary: dict[str, Any], latency: Histogram, path: str) -> None:
    require_matplotlib()
    import matplotlib  # type: ignore[import-not-found]
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # type: ignore[import-not-found]

    interval = summary["timeline"]["interval_s"]
    counts = summary["timeline"]["ops"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    # Each bucket's rate over its own width; the last one ends at the last completion
    # (one shorter than half an interval is left out of the line, not out of the figures).
    ends = [(i + 1) * interval for i in range(len(counts))]
    if counts:
        ends[-1] = summary["elapsed_s"]
        if ends[-1] - (len(counts) - 1) * interval < interval / 2 and len(counts) > 1:
            counts, ends = counts[:-1], ends[:-1]
    starts = [i * interval for i in range(len(counts))]
    rates = [c / max(e - s, 1e-9) for c, s, e in zip(counts, starts, ends)]
    left.plot(starts + ends[-1:], rates + rates[-1:], drawstyle="steps-post")
    left.set_xlabel("seconds")
    left.set_ylabel(f"completed ops/s (per {interval:g} s)")
    left.set_title(f"{summary['workload']}: {summary['ops_per_s']:.0f} ops/s, fsync {summary['cluster']['fsync']}")
    left.set_ylim(bottom=0)
    left.grid(alpha=0.3)
    buckets = latency.distribution()
    if buckets:
        total = latency.total
        seen = 0
        xs, ys = [], []
        for _, high, count in buckets:
            seen += count
            xs.append(high / 1000)
            ys.append(seen / total * 100)
        right.plot(xs, ys, drawstyle="steps-post")
        right.set_xscale("log")
        from matplotlib.ticker import NullFormatter, ScalarFormatter  # type: ignore[import-not-found]
        ticks = [t for t in NICE_MS if buckets[0][1] / 1000 / 2 <= t <= latency.max / 1000 * 2]
        right.set_xticks(ticks)
        right.xaxis.set_major_formatter(ScalarFormatter())
        right.xaxis.set_minor_formatter(NullFormatter())
        for name in ("p50", "p99", "p99.9"):
            right.axvline(summary["latency_ms"][name], color="grey", linestyle=":", linewidth=1)
    lat = summary["latency_ms"]
    right.set_title("latency CDF: p50 {p50:.2f} ms, p99 {p99:.2f} ms, max {max:.2f} ms".format(**lat))
    right.set_xlabel("latency (ms, log)")
    right.set_ylabel("% of ok ops at or below")
    right.grid(alpha=0.3, which="both")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
