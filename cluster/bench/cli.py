"""`main(argv) -> int`: parse, find the cluster, run, print. Thin on purpose: the
logic lives in options / runner / worker / report, where tests reach it."""
from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, TextIO

from cluster.bench.options import BenchOptions, UsageError, build_parser, options_from_args
from cluster.bench.plot import PlotUnavailable, require_matplotlib
from cluster.discovery import DiscoveryError, discover_endpoints

if TYPE_CHECKING:
    from cluster.bench.runner import Progress


def main(argv: list[str] | None = None, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["compare"]:  # jangada vs etcd vs PySyncObj: cluster/bench/compare/
        from cluster.bench.compare.cli import main as compare
        return compare(argv[1:], out)
    if argv[:1] == ["cost"]:  # instructions and CPU per put per member: cluster/bench/cost.py
        from cluster.bench.cost import main as cost
        return cost(argv[1:], out)
    if argv[:1] == ["scale"]:  # N keys under load, jangada vs etcd: cluster/bench/scale.py
        from cluster.bench.scale import main as scale
        return scale(argv[1:], out)
    if argv[:1] == ["space"]:  # RSS under auto-compaction: cluster/bench/space.py
        from cluster.bench.space import main as space
        return space(argv[1:], out)
    try:
        args = build_parser().parse_args(argv)
        options = options_from_args(args)
        if args.plot:
            require_matplotlib()
        endpoints = discover_endpoints(args.endpoints)
    except ValueError as error:  # a malformed --endpoints / $JANGADA_ENDPOINTS
        print(f"Error: --endpoints: {error}", file=sys.stderr)
        return 2
    except (UsageError, PlotUnavailable) as error:
        print(f"Error: {error}", file=sys.stderr)
        return 2
    except SystemExit as done:  # --help
        return int(done.code or 0)
    except DiscoveryError as error:
        print(f"Error: {error}", file=sys.stderr)
        return 1
    return _bench(options, endpoints, args.config, args.json, args.plot, args.quiet, out)


def _bench(options: BenchOptions, endpoints: list[str], config: str | None, as_json: bool, plot: str | None,
           quiet: bool, out: TextIO) -> int:
    # Here, not at the top: the run's machinery (zmq, the client, the load processes)
    # loads only once a run is asked for, so --help and usage errors stay fast.
    from cluster.bench import report, runner
    try:
        view = runner.survey(endpoints)
        cluster = {"endpoints": view.endpoints, "leader": view.leader, "roles": view.roles,
                   "fsync": report.fsync_setting(config)}
        with _progress(options, quiet) as progress:
            results, wall, kills = runner.run(options, view, progress)
        summary = report.summarize(options, results, wall, cluster, kills)
        if plot:
            from cluster.bench.plot import draw  # matplotlib: optional, only for --plot
            draw(summary, report.combined_latency(results), plot)
        print(json.dumps(summary, indent=2) if as_json else report.render_text(summary), file=out)
        if plot and not as_json:
            print(f"plot:       {plot}", file=out)
        return 0 if summary["ops"]["ok"] else 1
    except (runner.BenchError, DiscoveryError) as error:
        print(f"Error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("Error: interrupted", file=sys.stderr)
        return 130


@contextmanager
def _progress(options: BenchOptions, quiet: bool) -> Iterator[Progress | None]:
    """A rich progress bar on stderr (by ops, or by time when only --duration bounds
    the run); nothing when quiet or when stderr is not a terminal."""
    if quiet or not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, Progress as Bar, TextColumn, TimeElapsedColumn

    by_ops = options.ops is not None
    total = float(options.ops) if options.ops is not None else options.duration
    with Bar(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[figure]}"),
             TimeElapsedColumn(), console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("connecting", total=total, figure="")
        running = False

        def update(phase: str, completed: int, elapsed: float) -> None:
            nonlocal running
            if phase == "run":
                if not running:  # the clock restarts: connecting and prefill are not measured
                    running = True
                    bar.reset(task, total=total)
                rate = completed / elapsed if elapsed > 0 else 0.0
                bar.update(task, description=options.workload, completed=completed if by_ops else elapsed,
                           figure=f"{completed} ops, {rate:,.0f} ops/s")
            elif phase != "done":
                bar.update(task, description=phase)

        yield update
