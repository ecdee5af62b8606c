"""`main(argv) -> int` of `python -m cluster.bench compare`: parse, check or install
each system, run them one after the other, write the table / JSON / chart, print.

Exit status: 0 every requested system ran (or was skipped as not installed, which
the output says); 1 a system failed while running (the others still ran; the
table names the failure); 2 usage error; 130 interrupted (every cluster stopped).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

from cluster.bench.compare import systems as available
from cluster.bench.compare import table
from cluster.bench.compare.plan import IDLE_SECONDS, IDLE_SYSTEMS, KEYS, SYSTEMS, WORKLOADS, Measurement, Settings, Workload
from cluster.ports import free_ports

DEFAULT_DURATION = 8.0
MAX_DURATION = 120.0


class UsageError(Exception):
    """A bad command line: exit 2 with one line."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}")


EPILOG = f"""\
workloads (100-byte values, --keys keys, closed loop):
  {chr(10).join(f'{w.key:<12}{w.label}' + ('' if w.systems == SYSTEMS else f' ({", ".join(w.systems)} only)') for w in WORKLOADS).replace(chr(10), chr(10) + '  ')}

examples:
  python -m cluster.bench compare                                   # everything, ~6 - 7 minutes
  python -m cluster.bench compare --systems jangada,etcd --duration 5 --out /tmp/cmp
  python -m cluster.bench compare --install                          # apt/pip what is missing first

What each system's load generator is, durability, caveats: docs/benchmarks.md, "Comparison".
"""


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m cluster.bench compare", epilog=EPILOG,
                formatter_class=argparse.RawDescriptionHelpFormatter,
                description="jangada, etcd and PySyncObj side by side: 3-member clusters on loopback, "
                            "the same workloads, each driven by its best load generator; jangada-idleface is "
                            "the native load with the etcd faces on and idle, jangada-secure the native "
                            "load over CURVE, jangada-grpc is jangada through its etcd gRPC face, driven "
                            "by etcd's own, jangada-grpc-tls the same over TLS, grpc-noop the same load against "
                            "Python gRPC servers that answer at once (the ceiling of a face in Python).")
    p.add_argument("--systems", default=",".join(SYSTEMS), metavar="S,...",
                   help=f"which systems, in order (default {','.join(SYSTEMS)})")
    p.add_argument("--workloads", default=",".join(w.key for w in WORKLOADS), metavar="W,...",
                   help="which workloads (default: all, listed below)")
    p.add_argument("-d", "--duration", type=float, default=DEFAULT_DURATION,
                   help=f"seconds per workload per system (default {DEFAULT_DURATION:g}, max {MAX_DURATION:g})")
    p.add_argument("--idle", type=float, default=IDLE_SECONDS, metavar="S",
                   help=f"seconds the idle CPU of {', '.join(IDLE_SYSTEMS)}'s 3-member clusters is measured, "
                        f"before their load (default {IDLE_SECONDS:g}; 0: not measured)")
    p.add_argument("--keys", type=int, default=KEYS,
                   help=f"key space, chosen uniformly (default {KEYS}); reads first write every key once")
    p.add_argument("--out", default="compare-results", metavar="DIR",
                   help="where compare.md, compare.json and compare.png go (default ./compare-results)")
    p.add_argument("--install", action="store_true",
                   help="install what a system lacks (apt-get: etcd-server golang-go golang-etcd-server-dev "
                        "(jangada-grpc, jangada-grpc-tls, grpc-noop: the last two); "
                        "pip: pysyncobj); also JANGADA_BENCH_INSTALL=1. Without it a missing system is skipped")
    p.add_argument("--no-chart", dest="chart", action="store_false", help="skip compare.png (no matplotlib needed)")
    p.add_argument("--keep-data", action="store_true", help="keep the clusters' data and logs (path printed)")
    p.add_argument("--quiet", action="store_true", help="no per-measurement progress lines on stderr")
    return p


def _names(text: str, known: tuple[str, ...], what: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    bad = [n for n in names if n not in known]
    if bad or not names:
        raise UsageError(f"--{what}: {', '.join(bad) or 'none given'}: choose from {', '.join(known)}")
    return list(dict.fromkeys(names))


def parse(argv: list[str] | None) -> argparse.Namespace:
    args = build_parser().parse_args(argv)
    args.systems = _names(args.systems, SYSTEMS, "systems")
    args.workloads = _names(args.workloads, tuple(w.key for w in WORKLOADS), "workloads")
    if not 1 <= args.keys <= 1_000_000:
        raise UsageError(f"--keys must be 1..1000000, got {args.keys}")
    if not 0 <= args.idle <= MAX_DURATION:
        raise UsageError(f"--idle must be in [0, {MAX_DURATION:g}] s, got {args.idle:g}")
    if not 0 < args.duration <= MAX_DURATION:
        raise UsageError(f"--duration must be in (0, {MAX_DURATION:g}] s, got {args.duration:g}")
    return args


def main(argv: list[str] | None = None, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    try:
        args = parse(argv)
    except UsageError as error:
        print(f"Error: {error}", file=sys.stderr)
        return 2
    except SystemExit as done:  # --help
        return int(done.code or 0)
    with _sigterm_as_interrupt():
        try:
            return compare(args, out)
        except KeyboardInterrupt:
            print("Error: interrupted (every cluster this run started was stopped)", file=sys.stderr)
            return 130


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM unwinds like Ctrl-C, so every cluster's `finally` stops it by pid."""
    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt
    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def check_systems(wanted: list[str], install: bool, say: Callable[[str], None]) -> dict[str, str]:
    """system -> why it is skipped, for each wanted system that cannot run here."""
    skipped = {}
    for system in wanted:
        lacking = available.missing(system)
        if lacking and install:
            say(f"{system}: installing {' '.join(lacking)} ...")
            failure = available.install(system, lacking)
            lacking = available.missing(system)
            if failure and lacking:
                skipped[system] = f"install failed: {failure}"
                continue
        if lacking:
            skipped[system] = available.skip_message(system, lacking)
    return skipped


def run_system(system: str, workloads: list[Workload], root: Path, settings: Settings,
               each: Callable[[Measurement], None],
               idle: Callable[[str, list[int]], None] | None = None) -> list[Measurement]:
    """`idle(system, pids)`: called once with the 3-member cluster of a system in
    IDLE_SYSTEMS, before its load (the caller measures its idle CPU)."""
    mine = [w for w in workloads if system in w.systems]
    if not mine:
        return []
    home = root / system
    home.mkdir(parents=True, exist_ok=True)
    quiet = (lambda pids: idle(system, pids)) if idle is not None and system in IDLE_SYSTEMS else None
    # Each system's driver loads only when that system runs (jangada's brings zmq and
    # the client), so `compare --help` and a run of the others stay light.
    if system in ("jangada", "jangada-loopwrites", "jangada-idleface", "jangada-secure", "jangada-nofsync"):
        from cluster.bench.compare import jangada
        extra = {"loopwrites": True} if system == "jangada-loopwrites" else {}
        return jangada.run(mine, home, settings, each=each, idle_faces=system == "jangada-idleface",
                           secure=system == "jangada-secure", nofsync=system == "jangada-nofsync", idle=quiet,
                           **extra)
    if system in ("jangada-grpc", "jangada-grpc-tls"):
        from cluster.bench.compare import jangada_grpc
        return jangada_grpc.run(mine, home, settings, each=each, tls=system == "jangada-grpc-tls")
    if system == "grpc-noop":
        from cluster.bench.compare import grpc_noop
        return grpc_noop.run(mine, home, settings, each=each)
    if system == "etcd":
        from cluster.bench.compare import etcd
        return etcd.run(mine, home, free_ports(6), settings, each=each, idle=quiet)
    from cluster.bench.compare import syncobj
    return syncobj.run(mine, home, free_ports(3), settings, each=each, idle=quiet)


def machine() -> dict[str, Any]:
    return {"host": platform.node(), "platform": platform.platform(), "cpus": os.cpu_count(),
            "python": platform.python_version(), "loadavg": [round(x, 2) for x in os.getloadavg()]}


def compare(args: argparse.Namespace, out: TextIO) -> int:
    say: Callable[[str], None] = (lambda line: None) if args.quiet else (
        lambda line: print(line, file=sys.stderr, flush=True))
    skipped = check_systems(args.systems, available.install_requested(args.install), say)
    for system, why in skipped.items():
        print(f"{system} skipped: {why}", file=out)
    workloads = [w for w in WORKLOADS if w.key in args.workloads]
    settings = Settings(args.duration, args.keys, idle_s=args.idle)
    started, at_start, t0 = time.strftime("%Y-%m-%dT%H:%M:%S%z"), machine(), time.monotonic()
    root = Path(tempfile.mkdtemp(prefix="jangada-compare-"))
    measurements: list[Measurement] = []
    idle: dict[str, float] = {}
    failed = False

    def measure_idle(system: str, pids: list[int]) -> None:
        from cluster.bench.compare.cpu import idle_cores
        idle[system] = idle_cores(pids, settings.idle_s)
        say(f"  {system:<16} idle: {idle[system]:.3f} cores (3 members, {settings.idle_s:g} s)")

    def each(m: Measurement) -> None:
        measurements.append(m)
        cpu = "" if m.load_us_per_op is None else f", load {m.load_us_per_op:.0f} us/op {m.load_cores:.2f} cores"
        say(f"  {m.system:<16} {m.workload:<11} {m.ops_per_s:>10,.0f} ops/s  p50 {table.ms(m.latency_ms['p50'])} ms  "
            f"p99 {table.ms(m.latency_ms['p99'])} ms{cpu}{' SATURATED' if m.saturated else ''}")

    try:
        for system in (s for s in args.systems if s not in skipped):
            say(f"{system}: starting a cluster ...")
            try:
                run_system(system, workloads, root, settings, each, measure_idle if settings.idle_s > 0 else None)
            except Exception as error:  # noqa: BLE001 -- one system's failure is reported, the others still run
                failed = True
                skipped[system] = f"FAILED: {type(error).__name__}: {error}"
                say(f"{system} failed: {error}")
    finally:
        if args.keep_data:
            say(f"data and logs kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    info = dict(at_start, loadavg_end=[round(x, 2) for x in os.getloadavg()],
                wall_s=round(time.monotonic() - t0, 1))
    write_outputs(Path(args.out), measurements, skipped, started, settings, info, out, args.chart, idle)
    return 1 if failed else 0


def write_outputs(where: Path, measurements: list[Measurement], skipped: dict[str, str], started: str,
                  settings: Settings, info: dict[str, Any], out: TextIO, chart_wanted: bool = True,
                  idle: dict[str, float] | None = None) -> None:
    where.mkdir(parents=True, exist_ok=True)
    (where / "compare.md").write_text(table.markdown(measurements, skipped, idle, settings.idle_s))
    doc = table.document(measurements, skipped, started, settings, info, idle)
    (where / "compare.json").write_text(json.dumps(doc, indent=2) + "\n")
    print_table(measurements, skipped, out, idle, settings.idle_s)
    chart = where / "compare.png"
    if not measurements or not chart_wanted:
        why = "nothing was measured" if not measurements else "no chart asked for"
        print(f"{why}; wrote {where / 'compare.md'}, {where / 'compare.json'}", file=out)
        return
    try:
        from cluster.bench.compare.chart import draw  # matplotlib: optional (ImportError below)
        draw(measurements, str(chart), f"jangada vs etcd vs PySyncObj, {started}, {settings.duration:g} s per workload, "
                                       f"load avg {info['loadavg'][0]:.1f}")
        wrote = f"{where / 'compare.md'}, {where / 'compare.json'}, {chart}"
    except ImportError:
        wrote = f"{where / 'compare.md'}, {where / 'compare.json'} (no chart: pip install 'jangada[bench]')"
    print(f"run took {info['wall_s']:.0f} s; wrote {wrote}", file=out)


def print_table(measurements: list[Measurement], skipped: dict[str, str], out: TextIO,
                idle: dict[str, float] | None = None, idle_s: float = 0.0) -> None:
    from rich.console import Console
    from rich.table import Table

    grid = Table(*table.COLUMNS, title="jangada vs etcd vs PySyncObj (same machine, same run)")
    for row in table.rows(measurements, skipped):
        grid.add_row(*row)
    console = Console(file=out, width=160)
    console.print(grid)
    for line in table.footnotes(measurements, skipped, idle, idle_s):
        console.print(f"* {line}", markup=False, highlight=False)
