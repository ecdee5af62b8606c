"""`python -m cluster.bench cost`: what one put costs each member of a 3-member
cluster, in figures a busy machine does not blur (issue 17).

Wall-clock throughput on a shared machine moves with whatever else runs; the
instructions a process executes for a fixed number of puts do not. So this
command puts `--puts` values (100 bytes, one in flight, through the leader) and
reports per member process:

* **instructions per put** (the primary figure): every member runs under
  `valgrind --tool=callgrind --instr-atstart=no`; once the cluster has a leader,
  `callgrind_control` turns counting on, zeroes the counters, and dumps them after
  an idle window (`--idle` seconds: heartbeats, the loop's own wake-ups) and again
  after the puts. `gross` is the put window's count / puts; `net` subtracts the
  idle rate times the put window's length (the timer work the window would have
  cost anyway; under valgrind that window is long, so `net` is the figure to
  compare between changes);
* **CPU us per put and idle cores** without valgrind (psutil user + system time
  deltas): the same puts and idle window on a cluster run natively. CPU time is
  per process, so another helper's load changes it less than throughput, but
  caches and frequency still move it a few percent.

`--no-callgrind` skips the valgrind half (it takes minutes: Python is ~50x slower
under callgrind); `--fsync none` runs both halves without fdatasync. Under
callgrind the tick is ten times longer: a slowed follower must not campaign
mid-run, and the timer work then hardly counts in the put window (the idle rate
under valgrind is no guide to idle CPU: take `idle cores` for that).

    python -m cluster.bench cost --puts 2000 --idle 5
    python -m cluster.bench cost --puts 200 --no-callgrind --json
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TextIO

VALUE = b"v" * 100
KEYS = 1000
#: Under callgrind a node runs ~50x slower, and the loop's timer work (heartbeats,
#: sweeps) grows with the window's wall-clock length, not with the puts: the tick is
#: this many times longer there, so the put window counts puts, not time.
CALLGRIND_TICK_STRETCH = 10
CALLGRIND_LEADER_TIMEOUT = 240.0
CONTROL_TIMEOUT = 60.0
CONTROL_TRIES = 10
_TOTALS = re.compile(rb"^(?:totals|summary):\s*(\d+)", re.MULTILINE)


class CostError(Exception):
    """The measurement could not be taken; the message says why."""


@dataclass
class ProcessCost:
    """One member's figures (None: not measured in this run)."""

    node_id: int
    role: str
    instructions_per_put: float | None = None  # gross: the put window's count / puts
    net_instructions_per_put: float | None = None  # minus the idle rate over the put window
    idle_instructions_per_s: float | None = None
    cpu_us_per_put: float | None = None  # gross, as instructions_per_put
    net_cpu_us_per_put: float | None = None
    idle_cores: float | None = None


@dataclass
class CostReport:
    puts: int
    idle_s: float
    fsync: str
    processes: list[ProcessCost] = field(default_factory=list)
    callgrind_put_window_s: float | None = None
    native_put_window_s: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"puts": self.puts, "idle_s": self.idle_s, "fsync": self.fsync,
                "callgrind_put_window_s": self.callgrind_put_window_s,
                "native_put_window_s": self.native_put_window_s,
                "processes": [vars(p) for p in self.processes]}


def callgrind_totals(text: bytes) -> int:
    """The instruction count of one callgrind dump: its `totals:` line (`summary:`
    in older dumps). Raises CostError when the dump has neither."""
    found = _TOTALS.findall(text)
    if not found:
        raise CostError("callgrind dump without a totals: or summary: line")
    return int(found[-1])


def valgrind_missing() -> str | None:
    """Why callgrind cannot run here (None: it can)."""
    for tool in ("valgrind", "callgrind_control"):
        if shutil.which(tool) is None:
            return f"{tool} not found (Debian: apt-get install valgrind)"
    return None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m cluster.bench cost", description=__doc__.split("\n\n")[0],
                                     epilog=__doc__.split("\n\n")[-1], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--puts", type=int, default=2000, metavar="N", help="puts per window (2000)")
    parser.add_argument("--idle", type=float, default=5.0, metavar="S", help="seconds of the idle window (5)")
    parser.add_argument("--fsync", choices=("always", "none"), default="always", help="storage.fsync (always)")
    parser.add_argument("--no-callgrind", dest="callgrind", action="store_false",
                        help="skip the instruction counts (the valgrind half takes minutes)")
    parser.add_argument("--no-native", dest="native", action="store_false", help="skip the CPU-time half")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--keep-data", action="store_true", help="keep the clusters' data, logs and dumps")
    return parser


def main(argv: list[str], out: TextIO | None = None) -> int:
    out = out or sys.stdout
    args = build_parser().parse_args(argv)
    if args.puts < 1 or args.idle <= 0:
        print("Error: --puts must be >= 1 and --idle > 0", file=sys.stderr)
        return 2
    if args.callgrind and (why := valgrind_missing()):
        print(f"Error: {why}; or run with --no-callgrind", file=sys.stderr)
        return 2
    root = Path(tempfile.mkdtemp(prefix="jangada-cost-"))
    try:
        report = measure(root, args.puts, args.idle, args.fsync, args.callgrind, args.native)
    except CostError as error:
        print(f"Error: {error} (data in {root})", file=sys.stderr)
        return 1
    finally:
        if not args.keep_data and root.exists():
            shutil.rmtree(root, ignore_errors=True)
    print(json.dumps(report.to_dict(), indent=2) if args.json else render(report), file=out)
    return 0


def measure(root: Path, puts: int, idle_s: float, fsync: str, callgrind: bool = True,
            native: bool = True) -> CostReport:
    report = CostReport(puts, idle_s, fsync)
    by_id: dict[int, ProcessCost] = {}

    def member(node_id: int, role: str) -> ProcessCost:
        if node_id not in by_id:
            by_id[node_id] = ProcessCost(node_id, role)
        by_id[node_id].role = role
        return by_id[node_id]

    if callgrind:
        where = root / "callgrind"
        where.mkdir(parents=True)
        counted = _callgrind_run(where, puts, idle_s, fsync)
        report.callgrind_put_window_s = counted.pop(0)[0]
        for node_id, role, gross, idle_rate, window in counted:
            p = member(node_id, role)
            p.instructions_per_put = gross / puts
            p.idle_instructions_per_s = idle_rate
            p.net_instructions_per_put = (gross - idle_rate * window) / puts
    if native:
        where = root / "native"
        where.mkdir(parents=True)
        timed = _native_run(where, puts, idle_s, fsync)
        report.native_put_window_s = timed.pop(0)[0]
        for node_id, role, cpu_s, idle_cpu_s, _ in timed:
            p = member(node_id, role)
            p.cpu_us_per_put = cpu_s / puts * 1e6
            p.idle_cores = idle_cpu_s / idle_s
            p.net_cpu_us_per_put = (cpu_s - p.idle_cores * report.native_put_window_s) / puts * 1e6
    order = {"leader": 0}
    report.processes = sorted(by_id.values(), key=lambda p: (order.get(p.role, 1), p.node_id))
    return report


Row = tuple[Any, ...]


def _start(where: Path, fsync: str, wrap: Callable[[int], list[str]] | None, stretch: int,
           leader_timeout: float) -> Any:
    from cluster.bench.compare.jangada import JangadaCluster

    def tune(spec: Any) -> Any:
        t = spec.timing
        return replace(spec, timing=replace(t, tick_ms=t.tick_ms * stretch,
                                            request_timeout_ms=t.request_timeout_ms * stretch * 2),
                       storage=replace(spec.storage, fsync=fsync))

    cluster = JangadaCluster(where, 3, tune=tune, wrap=wrap)
    cluster.start()
    try:
        cluster.wait_for_leader(leader_timeout)
    except BaseException:
        cluster.close()
        raise
    return cluster


def _roles(cluster: Any, timeout: float) -> dict[int, str]:
    """Member id -> role, asked before a window (a member slowed by valgrind may
    not answer a status request quickly while it works through the puts)."""
    from cluster.bench import runner
    view = runner.survey(cluster.spec.client_addresses(), timeout=timeout)
    by_endpoint = {m.client: m.id for m in cluster.spec.members}
    return {by_endpoint[e]: role for e, role in view.roles.items()}


def _put(cluster: Any, puts: int) -> float:
    """`puts` sequential puts through the leader; the seconds they took."""
    from cluster.client import Client
    with Client(cluster.spec.client_addresses(), timeout=120.0, attempt_timeout=60.0) as client:
        start = time.monotonic()
        for i in range(puts):
            client.put(f"cost/{i % KEYS:04d}", VALUE)
        return time.monotonic() - start


def _warm(cluster: Any) -> None:
    """A few puts before measuring: connections made, first-use paths run."""
    _put(cluster, 20)


def _native_run(where: Path, puts: int, idle_s: float, fsync: str) -> list[Row]:
    import psutil
    cluster = _start(where, fsync, None, 1, 60.0)
    try:
        _warm(cluster)
        roles = _roles(cluster, 5.0)
        procs = {m.id: psutil.Process(p.pid) for m, p in zip(cluster.spec.members, cluster.procs)}

        def cpu() -> dict[int, float]:
            return {i: (lambda t: t.user + t.system)(p.cpu_times()) for i, p in procs.items()}

        before = cpu()
        time.sleep(idle_s)
        idle = cpu()
        window = _put(cluster, puts)
        after = cpu()
    finally:
        cluster.close()
    return [(window,)] + [(i, roles.get(i, "?"), after[i] - idle[i], idle[i] - before[i], window) for i in procs]


def _callgrind_run(where: Path, puts: int, idle_s: float, fsync: str) -> list[Row]:
    def wrap(node_id: int) -> list[str]:
        return ["valgrind", "--tool=callgrind", "--instr-atstart=no", "--dump-instr=no",
                f"--callgrind-out-file={where / f'callgrind.out.{node_id}'}", f"--log-file={where / f'valgrind.{node_id}.log'}"]

    cluster = _start(where, fsync, wrap, CALLGRIND_TICK_STRETCH, CALLGRIND_LEADER_TIMEOUT)
    try:
        _warm(cluster)
        roles = _roles(cluster, 30.0)
        pids = {m.id: p.pid for m, p in zip(cluster.spec.members, cluster.procs)}
        _control(pids.values(), "-i", "on")
        _control(pids.values(), "-z")
        time.sleep(idle_s)
        idle = _dump(where, pids)
        window = _put(cluster, puts)
        counted = _dump(where, pids)
    finally:
        cluster.close()
    return [(window,)] + [(i, roles.get(i, "?"), counted[i], idle[i] / idle_s, window) for i in pids]


def _control(pids: Sequence[int] | Any, *args: str) -> None:
    """`callgrind_control ARGS PID` for each pid. It finds a process through vgdb's
    files in /tmp, which a busy valgrind may not have answered yet: a few tries."""
    for pid in pids:
        for attempt in range(CONTROL_TRIES):
            done = subprocess.run(["callgrind_control", *args, str(pid)], capture_output=True, text=True,
                                  timeout=CONTROL_TIMEOUT)
            if done.returncode == 0 and "OK" in done.stdout:
                break
            if attempt == CONTROL_TRIES - 1:
                raise CostError(f"callgrind_control {' '.join(args)} {pid}: "
                                f"{(done.stdout + done.stderr).strip()[-300:]}")
            time.sleep(1.0)


def _dump(where: Path, pids: dict[int, int]) -> dict[int, int]:
    """Dump (and zero) every member's counters; the instructions since the last zero."""
    counts = {}
    for node_id, pid in pids.items():
        before = set(where.glob(f"callgrind.out.{node_id}.*"))
        _control([pid], "-d")
        deadline = time.monotonic() + CONTROL_TIMEOUT
        while not (new := set(where.glob(f"callgrind.out.{node_id}.*")) - before):
            if time.monotonic() > deadline:
                raise CostError(f"node {node_id}: no callgrind dump appeared in {where}")
            time.sleep(0.1)
        dump = max(new, key=lambda p: int(p.suffix[1:]))
        counts[node_id] = callgrind_totals(_read_complete(dump))
    return counts


def _read_complete(path: Path) -> bytes:
    """The dump once callgrind has finished writing it (its totals line is last)."""
    deadline = time.monotonic() + CONTROL_TIMEOUT
    while True:
        text = path.read_bytes()
        if _TOTALS.search(text) or time.monotonic() > deadline:
            return text
        time.sleep(0.1)


def render(report: CostReport) -> str:
    def f(x: float | None, fmt: str) -> str:
        return "-" if x is None else format(x, fmt)

    lines = [f"{report.puts} puts (100-byte values, 1 in flight, through the leader), fsync {report.fsync}; "
             f"idle window {report.idle_s:g} s",
             f"{'node':<5} {'role':<9} {'instr/put':>12} {'net instr/put':>14} {'idle instr/s':>13} "
             f"{'CPU us/put':>11} {'net CPU us':>11} {'idle cores':>11}"]
    for p in report.processes:
        lines.append(f"{p.node_id:<5} {p.role:<9} {f(p.instructions_per_put, ',.0f'):>12} "
                     f"{f(p.net_instructions_per_put, ',.0f'):>14} {f(p.idle_instructions_per_s, ',.0f'):>13} "
                     f"{f(p.cpu_us_per_put, '.1f'):>11} {f(p.net_cpu_us_per_put, '.1f'):>11} {f(p.idle_cores, '.4f'):>11}")
    idle = [p.idle_cores for p in report.processes if p.idle_cores is not None]
    if idle:
        lines.append(f"idle cluster: {sum(idle):.4f} cores (sum of the members)")
    if report.callgrind_put_window_s is not None:
        lines.append(f"callgrind put window {report.callgrind_put_window_s:.1f} s; "
                     "net = gross - idle rate x window (instructions: repeatable whatever the machine's load)")
    return "\n".join(lines)
