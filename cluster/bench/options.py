"""The bench's command line, validated into one frozen `BenchOptions` before anything
connects (a usage error exits 2 with one line, as everywhere in jangada)."""
from __future__ import annotations

import argparse
from dataclasses import dataclass

WORKLOADS = ("put", "get", "txn", "mixed", "range")
TARGETS = ("leader", "followers", "all")
MAX_DURATION = 3600.0
#: With only --ops, the run still ends after this long: every load loop is bounded.
DEFAULT_DURATION_CAP = 600.0
DEFAULT_OPS = 10_000


class UsageError(Exception):
    """A bad command line: exit 2 with one line."""


@dataclass(frozen=True, slots=True)
class BenchOptions:
    workload: str = "put"
    processes: int = 1
    in_flight: int = 1  # concurrent requests per process (one thread + Client each)
    ops: int | None = DEFAULT_OPS  # in all; None: until the duration is over
    duration: float = DEFAULT_DURATION_CAP
    keys: int = 1000
    value_size: int = 100
    serializable: bool = False
    read_ratio: float = 0.9  # mixed only
    range_limit: int = 10  # range only
    target: str = "leader"
    key_prefix: str = "bench/"
    timeout: float = 5.0  # one operation's deadline; past it the op counts as a ClientTimeout error
    attempt_timeout: float = 1.0  # the client tries the next endpoint after this long without an answer
    prefill: bool = True
    seed: int = 0
    pipeline: bool = False  # one socket per process with in_flight requests on it (cluster/bench/pipeline.py)
    kill_leader: int = 0  # SIGKILL the leader this many times during the run (`python -m supervisor kill leader`)
    kill_interval: float = 2.0  # seconds between kills (the first after one interval)
    #: a [curve] cluster's (client endpoint, member public key Z85) pairs: every load
    #: socket is a CURVE client of its member; () = plaintext (or the supervisor's
    #: state file says, as for any Client)
    curve_keys: tuple[tuple[str, str], ...] = ()

    @property
    def clients(self) -> int:
        return self.processes * self.in_flight

    @property
    def reads(self) -> bool:
        return self.workload in ("get", "range") or (self.workload == "mixed" and self.read_ratio > 0)

    def key(self, index: int) -> bytes:
        return f"{self.key_prefix}{index:08d}".encode()

    def check(self) -> None:
        """UsageError naming the first bad option."""
        if self.workload not in WORKLOADS:
            raise UsageError(f"workload must be one of {', '.join(WORKLOADS)}")
        if not 1 <= self.processes <= 64:
            raise UsageError(f"--processes must be 1..64, got {self.processes}")
        if not 1 <= self.in_flight <= 256:
            raise UsageError(f"--in-flight must be 1..256, got {self.in_flight}")
        if self.ops is not None and not 1 <= self.ops <= 100_000_000:
            raise UsageError(f"--ops must be 1..100000000, got {self.ops}")
        if self.ops is not None and self.ops < self.clients:
            raise UsageError(f"--ops ({self.ops}) must be at least the number of clients ({self.clients})")
        if not 0 < self.duration <= MAX_DURATION:
            raise UsageError(f"--duration must be in (0, {MAX_DURATION:g}] s, got {self.duration:g}")
        if not 1 <= self.keys <= 1_000_000:
            raise UsageError(f"--keys must be 1..1000000, got {self.keys}")
        if not 0 <= self.value_size <= 1024 * 1024:
            raise UsageError(f"--value-size must be 0..1048576 bytes, got {self.value_size}")
        if not 0 <= self.read_ratio <= 1:
            raise UsageError(f"--read-ratio must be in [0, 1], got {self.read_ratio:g}")
        if not 1 <= self.range_limit <= 10_000:
            raise UsageError(f"--range-limit must be 1..10000, got {self.range_limit}")
        if self.target not in TARGETS:
            raise UsageError(f"--target must be one of {', '.join(TARGETS)}")
        if not 0 < self.timeout <= 60:
            raise UsageError(f"--timeout must be in (0, 60] s, got {self.timeout:g}")
        if not 0 < self.attempt_timeout <= self.timeout:
            raise UsageError(f"--attempt-timeout must be in (0, --timeout], got {self.attempt_timeout:g}")
        if self.serializable and self.workload not in ("get", "range", "mixed"):
            raise UsageError("--serializable applies to the get, range and mixed workloads only")
        if not 0 <= self.kill_leader <= 100:
            raise UsageError(f"--kill-leader must be 0..100, got {self.kill_leader}")
        if not 0.5 <= self.kill_interval <= 60:
            raise UsageError(f"--kill-interval must be in [0.5, 60] s, got {self.kill_interval:g}")
        if self.kill_leader and self.workload not in ("put", "txn", "mixed"):
            raise UsageError("--kill-leader measures write unavailability: use put, txn or mixed")
        if self.kill_leader and self.duration < (self.kill_leader + 1) * self.kill_interval:
            raise UsageError(f"--duration must be at least (kills + 1) x --kill-interval = "
                             f"{(self.kill_leader + 1) * self.kill_interval:g} s with --kill-leader")
        if self.kill_leader and self.pipeline:
            raise UsageError("--kill-leader needs the client's failover: drop --pipeline")
        if self.pipeline and self.workload == "txn":
            raise UsageError("--pipeline supports put, get, mixed and range (txn needs the client's CAS loop)")
        if self.pipeline and self.target != "leader" and (self.workload == "put" or (
                self.workload == "mixed" and self.read_ratio < 1)):
            raise UsageError("--pipeline does not follow redirects: writes need --target leader")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}")


def _number(kind: type[int] | type[float]):  # type: ignore[no-untyped-def]
    def parse(text: str) -> int | float:
        try:
            return kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {'an integer' if kind is int else 'a number'}") from None
    return parse


EPILOG = """\
examples:
  python -m cluster.bench put                                  # 10000 puts, 1 client, leader
  python -m cluster.bench put --processes 4 --in-flight 4      # 16 concurrent clients
  python -m cluster.bench get --serializable --target all --duration 10
  python -m cluster.bench mixed --read-ratio 0.8 --json
  python -m cluster.bench txn --plot txn.png
  python -m cluster.bench compare --help                       # jangada vs etcd vs PySyncObj

exit status: 0 the run finished (failed operations are counted, not fatal), 1 no
cluster / every operation failed, 2 usage error. Figures: docs/benchmarks.md.
"""


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m cluster.bench", description="Load a jangada cluster and measure it.",
                epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("workload", choices=WORKLOADS,
                   help="put; get (linearizable unless --serializable); txn (compare-and-set); "
                        "mixed (--read-ratio gets, the rest puts); range (--range-limit keys)")
    p.add_argument("--endpoints", metavar="HOST:PORT,...",
                   help="client endpoints (default: $JANGADA_ENDPOINTS, else the supervisor's cluster here)")
    p.add_argument("--config", metavar="FILE", help="the cluster's config, to report its fsync setting "
                   "(default: the one the supervisor's state file names)")
    p.add_argument("-p", "--processes", type=_number(int), default=1, help="load processes (default 1)")
    p.add_argument("-c", "--in-flight", type=_number(int), default=1,
                   help="concurrent requests per process, each its own client (default 1)")
    p.add_argument("-n", "--ops", type=_number(int), default=None,
                   help=f"operations in all (default {DEFAULT_OPS} unless --duration is given)")
    p.add_argument("-d", "--duration", type=_number(float), default=None,
                   help=f"seconds to run (max {MAX_DURATION:g}; with --ops, whichever ends first; "
                        f"default cap {DEFAULT_DURATION_CAP:g})")
    p.add_argument("--keys", type=_number(int), default=1000, help="key space size (default 1000)")
    p.add_argument("--value-size", type=_number(int), default=100, help="value bytes (default 100)")
    p.add_argument("--serializable", action="store_true",
                   help="reads without ReadIndex, served by whichever node is asked")
    p.add_argument("--read-ratio", type=_number(float), default=0.9, help="mixed: fraction of reads (default 0.9)")
    p.add_argument("--range-limit", type=_number(int), default=10, help="range: keys per range (default 10)")
    p.add_argument("--target", choices=TARGETS, default="leader",
                   help="which nodes the clients talk to first (writes and linearizable reads "
                        "are redirected to the leader anyway)")
    p.add_argument("--timeout", type=_number(float), default=5.0, help="one operation's deadline (default 5 s)")
    p.add_argument("--attempt-timeout", type=_number(float), default=1.0, metavar="S",
                   help="a client tries the next endpoint after S s without an answer (default 1, as the CLI); "
                        "it bounds how fast clients leave a dead leader")
    p.add_argument("--no-prefill", dest="prefill", action="store_false",
                   help="read workloads: do not write every key once before measuring")
    p.add_argument("--pipeline", action="store_true",
                   help="one socket per process with --in-flight requests on it, no threads and no retries: "
                        "a cheaper load generator (errors are counted, not retried; keep --target leader)")
    p.add_argument("--kill-leader", type=_number(int), default=0, metavar="K",
                   help="SIGKILL the leader K times during the run (the supervisor's cluster here: "
                        "`python -m supervisor kill leader`) and report each write outage")
    p.add_argument("--kill-interval", type=_number(float), default=2.0, metavar="S",
                   help="seconds to wait, once every member is up and caught up again, before "
                        "the next kill (default 2)")
    p.add_argument("--seed", type=_number(int), default=0, help="key choice seed (default 0)")
    p.add_argument("--json", action="store_true", help="print the result as JSON (stable; docs/benchmarks.md)")
    p.add_argument("--plot", metavar="FILE.png", help="draw throughput over time and the latency distribution "
                   "(needs matplotlib: pip install 'jangada[bench]')")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def options_from_args(args: argparse.Namespace) -> BenchOptions:
    ops = args.ops
    duration = args.duration
    if ops is None and duration is None:
        ops = DEFAULT_OPS
    if args.plot is not None and not args.plot.endswith(".png"):
        raise UsageError(f"--plot must name a .png file, got {args.plot!r}")
    options = BenchOptions(
        workload=args.workload, processes=args.processes, in_flight=args.in_flight, ops=ops,
        duration=DEFAULT_DURATION_CAP if duration is None else duration, keys=args.keys,
        value_size=args.value_size, serializable=args.serializable, read_ratio=args.read_ratio,
        range_limit=args.range_limit, target=args.target, timeout=args.timeout,
        attempt_timeout=args.attempt_timeout, prefill=args.prefill, seed=args.seed, pipeline=args.pipeline,
        kill_leader=args.kill_leader, kill_interval=args.kill_interval)
    options.check()
    return options
