"""`python -m cluster.bench scale`: fill a 3-member cluster with N keys under a
sustained write load and watch what grows with the data (issue 20).

Each system gets a fresh cluster under `--root` (fsync on: the shipped cluster-3
config for jangada, etcd's defaults for etcd). Keys `bench/00000000`... are put
once each, in order, with `--value-size`-byte values, `--in-flight` requests
outstanding: jangada's pipelined generator (cluster/bench/pipeline.py, following
the leader), etcd's Go clientv3 generator (cluster/bench/etcdload, `-workload
fill`). Per `--step` keys it reports throughput, p50/p99, errors, leader changes
(term moves), the longest loop turn of each member in that step (jangada's
`loop_turn_recent_max_ms` status key, sampled every `SAMPLE_SECONDS`; etcd has no
such figure), RSS per member and the snapshot's size (jangada: the newest .snap
file; etcd: its db size). After the fill: a follower's restart (SIGKILL, start,
time until it has applied what the leader had committed) and a whole-cluster
restart (SIGTERM all, start all, time until every member has).

    python -m cluster.bench scale                          # 1,000,000 keys, jangada and etcd
    python -m cluster.bench scale --keys 5000000 --plot scale.png --json scale.json
    python -m cluster.bench scale --keys 2000 --step 1000 --systems jangada   # a smoke run
"""
from __future__ import annotations

import argparse
import json
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

import psutil  # type: ignore[import-untyped]

from cluster.bench.compare.etcd import EtcdCluster, build_etcdload, parse_etcdload
from cluster.bench.compare.jangada import JangadaCluster
from cluster.bench.pipeline import LeaderFollower, Pipeline, Slot, pump
from cluster.bench.tally import ThreadTally
from cluster.client import Client, ClientError
from cluster.kv import Put, encode_command
from cluster.ports import free_ports

SYSTEMS = ("jangada", "etcd")
#: How often the sampler reads every member's status during a step.
SAMPLE_SECONDS = 0.5
#: A step, a restart: bounded so a stuck cluster ends the run with an error.
STEP_TIMEOUT = 3600.0
RESTART_TIMEOUT = 600.0
MIB = 1 << 20


class ScaleError(Exception):
    """A cluster did not start, answer or catch up in time."""


def key(index: int) -> bytes:
    """The fill's key names: the same as etcdload's (`bench/%08d`)."""
    return b"bench/%08d" % index


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m cluster.bench scale", description=__doc__.split("\n\n")[0])
    parser.add_argument("--keys", type=int, default=1_000_000, metavar="N", help="keys to fill (1000000)")
    parser.add_argument("--step", type=int, default=100_000, metavar="N", help="keys per reported step (100000)")
    parser.add_argument("--in-flight", type=int, default=64, metavar="N", help="requests outstanding (64)")
    parser.add_argument("--value-size", type=int, default=100, metavar="B", help="value bytes (100)")
    parser.add_argument("--systems", default=",".join(SYSTEMS), help="comma-separated: jangada,etcd")
    parser.add_argument("--root", metavar="DIR", help="where the clusters' data goes (default: a temp dir, removed)")
    parser.add_argument("--no-restart", action="store_true", help="skip the restart measurements")
    parser.add_argument("--json", metavar="FILE", help="write every figure as JSON")
    parser.add_argument("--plot", metavar="FILE.png", help="draw the steps (matplotlib)")
    return parser


def main(argv: list[str], out: TextIO | None = None) -> int:
    out = out or sys.stdout
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as done:
        return int(done.code or 0)
    systems = [s for s in args.systems.split(",") if s]
    bad = [s for s in systems if s not in SYSTEMS]
    if bad or not systems or args.keys < 1 or not 1 <= args.step or not 1 <= args.in_flight <= 256:
        print("Error: --systems must name jangada and/or etcd; --keys, --step >= 1; --in-flight 1..256",
              file=sys.stderr)
        return 2
    if args.plot:
        from cluster.bench.plot import PlotUnavailable, require_matplotlib
        try:
            require_matplotlib()
        except PlotUnavailable as error:
            print(f"Error: {error}", file=sys.stderr)
            return 2
    root = Path(args.root) if args.root else Path(tempfile.mkdtemp(prefix="jangada-scale-"))
    results: dict[str, Any] = {}
    try:
        for system in systems:
            where = root / system
            where.mkdir(parents=True, exist_ok=True)
            side = JangadaSide(where, args.value_size) if system == "jangada" else EtcdSide(where, args.value_size)
            results[system] = run_system(side, args.keys, args.step, args.in_flight, not args.no_restart,
                                         _say(system, out))
    except (ScaleError, ClientError, OSError) as error:
        print(f"Error: {error} (data under {root})", file=sys.stderr)
        return 1
    finally:
        if not args.root:
            shutil.rmtree(root, ignore_errors=True)
    print(render(results), file=out)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    if args.plot:
        draw(results, args.plot)
        print(f"plot: {args.plot}", file=out)
    return 0


def _say(system: str, out: TextIO) -> Callable[[str], None]:
    return lambda line: print(f"{system}: {line}", file=out, flush=True)


def run_system(side: Side, keys: int, step: int, in_flight: int, restart: bool,
               say: Callable[[str], None]) -> dict[str, Any]:
    """Fill `keys` keys in steps of `step`; one row per step, then the restarts."""
    side.start()
    try:
        side.prepare(in_flight)
        rows = []
        done = 0
        while done < keys:
            count = min(step, keys - done)
            sampler = Sampler(side)
            sampler.start()
            try:
                load = side.fill(done, count, in_flight)
            finally:
                sampler.stop()
            done += count
            row = {"keys": done, **load, "leader_changes": sampler.leader_changes(),
                   "loop_turn_max_ms": sampler.loop_max, "loop_turn_cpu_max_ms": sampler.loop_cpu_max, "rss_mib": {m: round(b / MIB, 1)
                                                                   for m, b in side.rss().items()},
                   "snapshot_mib": round(side.snapshot_bytes() / MIB, 1)}
            rows.append(row)
            say(row_text(row))
        out: dict[str, Any] = {"steps": rows}
        if restart:
            out["follower_restart_s"] = round(side.restart_follower(), 2)
            say(f"follower restart to caught up: {out['follower_restart_s']} s")
            out["cluster_restart_s"] = round(side.restart_all(), 2)
            say(f"whole-cluster restart to caught up: {out['cluster_restart_s']} s")
        return out
    finally:
        side.close()


def row_text(row: dict[str, Any]) -> str:
    cpu = row.get("loop_turn_cpu_max_ms", {})
    loop = ", ".join(f"{m}: {v:.0f}/{cpu.get(m, 0.0):.0f}" for m, v in sorted(row["loop_turn_max_ms"].items())) \
        or "n/a"
    rss = ", ".join(f"{m}: {v:.0f}" for m, v in sorted(row["rss_mib"].items()))
    return (f"{row['keys']:>9,} keys  {row['ops_per_s']:>7,.0f} ops/s  p50 {row['p50_ms']:.1f} ms  "
            f"p99 {row['p99_ms']:.1f} ms  errors {row['errors']}  interruptions {row['interruptions']}  "
            f"leader changes {row['leader_changes']}  longest loop turn ms wall/cpu [{loop}]  RSS MiB [{rss}]  "
            f"snapshot {row['snapshot_mib']} MiB")


def render(results: dict[str, Any]) -> str:
    lines = []
    for system, result in results.items():
        lines.append(f"== {system}")
        lines.extend(row_text(row) for row in result["steps"])
        last = result["steps"][-1] if result["steps"] else None
        if last:
            per_key = max(last["rss_mib"].values()) * MIB / last["keys"]
            lines.append(f"RSS per key (largest member): {per_key:.0f} bytes")
        if "follower_restart_s" in result:
            lines.append(f"follower restart: {result['follower_restart_s']} s; "
                         f"whole-cluster restart: {result['cluster_restart_s']} s")
    return "\n".join(lines)


class Sampler:
    """Every member's term and longest recent loop turn, every SAMPLE_SECONDS, on
    its own thread while a step runs."""

    def __init__(self, side: Side) -> None:
        self.side = side
        self.terms: list[int] = []
        self.loop_max: dict[str, float] = {}
        self.loop_cpu_max: dict[str, float] = {}
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="scale-sampler")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._done.set()
        self._thread.join(30)
        self._sample()  # one after the step: a stall at its very end counts too

    def _run(self) -> None:
        while not self._done.wait(SAMPLE_SECONDS):
            self._sample()

    def _sample(self) -> None:
        term, loops, cpus = self.side.sample()
        if term:
            self.terms.append(term)
        for member, ms in loops.items():
            self.loop_max[member] = max(ms, self.loop_max.get(member, 0.0))
        for member, ms in cpus.items():
            self.loop_cpu_max[member] = max(ms, self.loop_cpu_max.get(member, 0.0))

    def leader_changes(self) -> int:
        return max(self.terms) - min(self.terms) if self.terms else 0


class Side:
    """One system's cluster as the scale run drives it."""

    pids: list[int]

    def start(self) -> None:
        raise NotImplementedError

    def prepare(self, in_flight: int) -> None:
        """Before the first step (jangada: the pipeline's sessions)."""

    def fill(self, first: int, count: int, in_flight: int) -> dict[str, Any]:
        """Put keys first..first+count-1: ops_per_s, p50_ms, p99_ms, errors, interruptions."""
        raise NotImplementedError

    def sample(self) -> tuple[int, dict[str, float], dict[str, float]]:
        """The highest term any member reports, and each member's recent longest loop
        turn (ms): wall time, and the loop thread's CPU time."""
        raise NotImplementedError

    def snapshot_bytes(self) -> int:
        raise NotImplementedError

    def restart_follower(self) -> float:
        raise NotImplementedError

    def restart_all(self) -> float:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def rss(self) -> dict[str, int]:
        out = {}
        for i, pid in enumerate(self.pids, 1):
            try:
                out[str(i)] = psutil.Process(pid).memory_info().rss
            except psutil.Error:
                out[str(i)] = 0
        return out


def _percentile_ms(tally: ThreadTally, p: float) -> float:
    return round(tally.latency.value_at(p) / 1000, 3) if tally.latency.total else 0.0


class JangadaSide(Side):
    def __init__(self, root: Path, value_size: int) -> None:
        self.cluster = JangadaCluster(root, 3)
        self.value = b"v" * value_size
        self.endpoints = self.cluster.spec.client_addresses()
        self.pipe: Pipeline | None = None

    @property
    def pids(self) -> list[int]:  # type: ignore[override]
        return [p.pid for p in self.cluster.procs]

    def start(self) -> None:
        self.cluster.start()
        self.cluster.wait_for_leader()

    def _statuses(self, timeout: float = 0.5) -> dict[int, dict[str, Any]]:
        out = {}
        with Client(self.endpoints, timeout=timeout, attempt_timeout=timeout) as client:
            for i, endpoint in enumerate(self.endpoints, 1):
                try:
                    out[i] = client.status(endpoint, timeout)
                except ClientError:
                    continue
        return out

    def prepare(self, in_flight: int) -> None:  # noqa: D102
        leader = LeaderFollower(self.endpoints).locate()
        if leader is None:
            raise ScaleError("jangada: no leader")
        self.pipe = Pipeline(leader, in_flight)
        self.pipe.open_sessions(10.0)

    def fill(self, first: int, count: int, in_flight: int) -> dict[str, Any]:
        assert self.pipe is not None
        tally = ThreadTally()
        following = [first]
        value = self.value

        def put(slot: Slot) -> tuple[str, bytes, bool]:
            slot.seq += 1
            index = following[0]
            following[0] = index + 1
            return "put", encode_command(Put(key(index), value), slot.client_id, slot.seq), False

        t0 = time.monotonic()
        pump(self.pipe, put, count, t0, STEP_TIMEOUT, 5.0, lambda: False, tally, LeaderFollower(self.endpoints))
        elapsed = max(tally.last, 1e-9)
        return {"ops_per_s": round(tally.latency.total / elapsed, 1), "p50_ms": _percentile_ms(tally, 50.0),
                "p99_ms": _percentile_ms(tally, 99.0), "errors": sum(tally.errors.values()),
                "interruptions": len(tally.interruptions)}

    def sample(self) -> tuple[int, dict[str, float], dict[str, float]]:
        statuses = self._statuses()
        term = max((s.get("term", 0) for s in statuses.values()), default=0)
        return term, {str(i): float(s.get("loop_turn_recent_max_ms", 0.0)) for i, s in statuses.items()}, \
            {str(i): float(s.get("loop_turn_recent_cpu_max_ms", 0.0)) for i, s in statuses.items()}

    def snapshot_bytes(self) -> int:
        sizes = [f.stat().st_size for f in self.cluster.root.glob("node-*/snap/*.snap")]
        return max(sizes, default=0)

    def _applied(self, member: int) -> int:
        return int(self._statuses().get(member, {}).get("applied_index", -1))

    def _wait_applied(self, members: list[int], target: int, started: float) -> float:
        deadline = started + RESTART_TIMEOUT
        while time.monotonic() < deadline:
            statuses = self._statuses()
            if all(statuses.get(m, {}).get("applied_index", -1) >= target for m in members):
                return time.monotonic() - started
            time.sleep(0.1)
        raise ScaleError(f"jangada members {members} did not apply index {target} within {RESTART_TIMEOUT:g} s")

    def _spawn(self, member: int) -> subprocess.Popen[bytes]:
        log = (self.cluster.root / f"node-{member}.log").open("ab")
        try:
            return subprocess.Popen([sys.executable, "-m", "node", "--config", str(self.cluster.config),
                                     "--id", str(member)], stdout=subprocess.DEVNULL, stderr=log,
                                    cwd=self.cluster.root)
        finally:
            log.close()

    def restart_follower(self) -> float:
        if self.pipe is not None:
            self.pipe.close()
            self.pipe = None
        statuses = self._statuses()
        target = max(s.get("commit_index", 0) for s in statuses.values())
        follower = next(i for i, s in statuses.items() if s.get("role") == "follower")
        proc = self.cluster.procs[follower - 1]
        proc.kill()  # ours, by its handle
        proc.wait(30)
        started = time.monotonic()
        self.cluster.procs[follower - 1] = self._spawn(follower)
        return self._wait_applied([follower], target, started)

    def restart_all(self) -> float:
        statuses = self._statuses()
        target = max(s.get("commit_index", 0) for s in statuses.values())
        self.cluster.close()
        started = time.monotonic()
        self.cluster.procs = [self._spawn(m) for m in (1, 2, 3)]
        return self._wait_applied([1, 2, 3], target, started)

    def close(self) -> None:
        if self.pipe is not None:
            self.pipe.close()
        self.cluster.close()


class EtcdSide(Side):
    def __init__(self, root: Path, value_size: int) -> None:
        self.cluster = EtcdCluster(root, free_ports(6))
        self.value_size = value_size
        self.binary = build_etcdload()

    @property
    def pids(self) -> list[int]:  # type: ignore[override]
        return self.cluster.pids()

    def start(self) -> None:
        self.cluster.start()

    def fill(self, first: int, count: int, in_flight: int) -> dict[str, Any]:
        args = [str(self.binary), "-workload", "fill", "-first-key", str(first), "-ops", str(count),
                "-clients", str(in_flight), "-duration", f"{STEP_TIMEOUT:g}", "-value-size", str(self.value_size),
                "-endpoints", ",".join(self.cluster.endpoints), "-target", "leader"]
        done = subprocess.run(args, capture_output=True, text=True, timeout=STEP_TIMEOUT + 120, check=False)
        if done.returncode != 0:
            raise ScaleError(f"etcdload failed: {done.stderr.strip()[-300:]}")
        doc = parse_etcdload(done.stdout)
        return {"ops_per_s": float(doc["ops_per_s"]), "p50_ms": float(doc["latency_ms"]["p50"]),
                "p99_ms": float(doc["latency_ms"]["p99"]), "errors": int(doc["errors"]), "interruptions": 0}

    def _statuses(self) -> dict[int, dict[str, Any]]:
        out = {}
        for i, url in enumerate(self.cluster.client_urls, 1):
            if self.cluster.procs[i - 1].poll() is None:
                status = self.cluster.status(url)
                if status is not None:
                    out[i] = status
        return out

    def sample(self) -> tuple[int, dict[str, float], dict[str, float]]:
        terms = [int(s.get("raftTerm", 0)) for s in self._statuses().values()]
        return max(terms, default=0), {}, {}

    def snapshot_bytes(self) -> int:
        return max((int(s.get("dbSize", 0)) for s in self._statuses().values()), default=0)

    @staticmethod
    def _applied(status: dict[str, Any]) -> int:
        return int(status.get("raftAppliedIndex", status.get("raftIndex", 0)))

    def _wait_applied(self, members: list[int], target: int, started: float) -> float:
        deadline = started + RESTART_TIMEOUT
        while time.monotonic() < deadline:
            statuses = self._statuses()
            if all(m in statuses and self._applied(statuses[m]) >= target for m in members):
                return time.monotonic() - started
            time.sleep(0.1)
        raise ScaleError(f"etcd members {members} did not reach index {target} within {RESTART_TIMEOUT:g} s")

    def _spawn(self, i: int) -> subprocess.Popen[bytes]:
        log = (self.cluster.root / f"{self.cluster.names[i]}.log").open("ab")
        try:
            return subprocess.Popen(self.cluster.command(i), stdout=subprocess.DEVNULL, stderr=log)
        finally:
            log.close()

    def restart_follower(self) -> float:
        statuses = self._statuses()
        target = max(int(s.get("raftIndex", 0)) for s in statuses.values())
        leader = self.cluster.leader()
        follower = next(i for i in range(3) if i != leader)
        self.cluster.kill(follower)
        started = time.monotonic()
        self.cluster.procs[follower] = self._spawn(follower)
        return self._wait_applied([follower + 1], target, started)

    def restart_all(self) -> float:
        statuses = self._statuses()
        target = max(int(s.get("raftIndex", 0)) for s in statuses.values())
        for proc in self.cluster.procs:
            proc.send_signal(signal.SIGTERM)
        for proc in self.cluster.procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()  # ours, by its handle
                proc.wait(10)
        started = time.monotonic()
        self.cluster.procs = [self._spawn(i) for i in range(3)]
        return self._wait_applied([1, 2, 3], target, started)

    def close(self) -> None:
        self.cluster.close()


def draw(results: dict[str, Any], path: str) -> None:
    """Throughput, p99, largest RSS and longest loop turn per step, one line per system."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(11, 7))
    panels = (("ops_per_s", "ops/s"), ("p99_ms", "p99 ms"), ("rss", "largest member RSS MiB"),
              ("loop", "longest loop turn ms, wall and CPU (jangada)"))
    for ax, (what, title) in zip(axes.flat, panels):
        for system, result in results.items():
            steps = result["steps"]
            xs = [row["keys"] for row in steps]
            if what == "rss":
                ys = [max(row["rss_mib"].values()) for row in steps]
            elif what == "loop":
                if not any(row["loop_turn_max_ms"] for row in steps):
                    continue
                cpu = [max(row.get("loop_turn_cpu_max_ms", {}).values(), default=0.0) for row in steps]
                ax.plot(xs, cpu, marker="x", linestyle="--", label=f"{system} (CPU)")
                ys = [max(row["loop_turn_max_ms"].values(), default=0.0) for row in steps]
            else:
                ys = [row[what] for row in steps]
            ax.plot(xs, ys, marker="o", label=f"{system} (wall)" if what == "loop" else system)
        ax.set_title(title)
        ax.set_xlabel("keys")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
