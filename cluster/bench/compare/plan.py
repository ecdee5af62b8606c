"""What the comparison runs: the workloads (the same for every system) and the one
record every system's runner returns for a workload, `Measurement`."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

#: jangada-idleface: jangada's native load on members whose etcd faces are on and idle;
#: jangada-secure: the native load over CURVE on [curve] members;
#: jangada-grpc: jangada through its etcd gRPC face, driven by etcd's own load generator;
#: jangada-grpc-tls: the same with TLS on the face;
#: grpc-noop: the same load generator against Python gRPC servers that answer at once,
#: storing nothing: the ceiling of any gRPC face in Python here (cluster/bench/compare/grpc_noop.py);
#: jangada-loopwrites: the native load with storage.wal_writes = "loop", put workloads
#: only: the loop waits in each WAL write, as before node/wal_writer.py (its before/after);
#: jangada-nofsync: the native load with storage.fsync = "none", put workloads only:
#: the fair row next to PySyncObj, which never fsyncs (issue 17).
#: In this order the table reads native, native beside idle faces, native over CURVE,
#: the face, the face over TLS, the face's ceiling, etcd, jangada waiting in its own writes, then the two
#: without fsync side by side.
SYSTEMS = ("jangada", "jangada-idleface", "jangada-secure", "jangada-grpc", "jangada-grpc-tls", "grpc-noop",
           "etcd", "jangada-loopwrites", "jangada-nofsync", "pysyncobj")
#: The systems whose idle CPU the compare prints (3 members, nothing asked of them).
IDLE_SYSTEMS = ("jangada", "etcd", "pysyncobj")
IDLE_SECONDS = 5.0
VALUE_SIZE = 100
KEYS = 1000
#: A load generator using more than this share of one core may be what limits the figure.
SATURATED_CORES = 0.9


@dataclass(frozen=True, slots=True)
class Settings:
    """What every workload of a run shares."""

    duration: float  # seconds measured per workload per system
    keys: int = KEYS  # key space, chosen uniformly; reads find every key written first
    value_size: int = VALUE_SIZE
    idle_s: float = IDLE_SECONDS  # seconds an idle 3-member cluster's CPU is measured (0: not measured)


@dataclass(frozen=True, slots=True)
class Workload:
    key: str  # stable name in the JSON and the table
    op: str  # "put" | "get"
    clients: int  # requests in flight at once (closed loop)
    serializable: bool = False  # get only: no ReadIndex / read-through-the-log
    members: int = 3
    systems: tuple[str, ...] = SYSTEMS

    @property
    def label(self) -> str:
        if self.op == "put":
            what = "put"
        else:
            what = "get (serializable)" if self.serializable else "get (linearizable)"
        return f"{what}, {self.clients} in flight" + (f", {self.members} members" if self.members != 3 else "")


#: Everyone but the rows that differ from jangada only in how they write, which only put.
READERS = tuple(s for s in SYSTEMS if s not in ("jangada-nofsync", "jangada-loopwrites"))

WORKLOADS = (
    Workload("put-1", "put", 1),
    Workload("put-16", "put", 16),
    Workload("put-64", "put", 64),
    Workload("get-lin-16", "get", 16, systems=READERS),
    Workload("get-ser-16", "get", 16, serializable=True, systems=READERS),
    # The issue's target: 5 members keep >= 70% of 3 members' put throughput.
    Workload("put-64-5m", "put", 64, members=5, systems=("jangada",)),
)


def workload(key: str) -> Workload:
    for w in WORKLOADS:
        if w.key == key:
            return w
    raise KeyError(key)


@dataclass(frozen=True, slots=True)
class Measurement:
    """One system x one workload. Latencies are client-side, ok ops only, in ms.
    `load_cpu_s` is the load generator's own CPU while measuring (None when it runs
    inside the server, as PySyncObj's does)."""

    system: str
    workload: str
    members: int
    durability: str  # "fsync" (acknowledged after a quorum fsynced it) or "NO fsync (...)"
    ops_per_s: float
    ok: int
    errors: int
    elapsed_s: float
    latency_ms: dict[str, float]
    load_cpu_s: float | None
    generator: str  # what drove the load, in a few words
    generator_processes: int = 1  # OS processes the generator ran as (its CPU is their sum)
    note: str = ""
    server_cpu_s: float | None = None  # PySyncObj: the leader process's CPU, load and server together
    cluster_cpu_s: float | None = None  # every member process's CPU while measuring (PySyncObj: with its load)
    error_kinds: dict[str, int] = field(default_factory=dict)

    @property
    def load_us_per_op(self) -> float | None:
        total = self.ok + self.errors
        if self.load_cpu_s is None or not total:
            return None
        return self.load_cpu_s / total * 1e6

    @property
    def cluster_us_per_op(self) -> float | None:
        total = self.ok + self.errors
        if self.cluster_cpu_s is None or not total:
            return None
        return self.cluster_cpu_s / total * 1e6

    @property
    def load_cores(self) -> float | None:
        if self.load_cpu_s is None or self.elapsed_s <= 0:
            return None
        return self.load_cpu_s / self.elapsed_s

    @property
    def saturated(self) -> bool:
        """The generator busy more than SATURATED_CORES of a core per process it ran
        (a process of Python is one core at most): the figure may be the generator's."""
        cores = self.load_cores
        return cores is not None and cores > SATURATED_CORES * self.generator_processes

    def to_dict(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["load_us_per_op"] = None if self.load_us_per_op is None else round(self.load_us_per_op, 1)
        doc["load_cores"] = None if self.load_cores is None else round(self.load_cores, 3)
        doc["cluster_us_per_op"] = None if self.cluster_us_per_op is None else round(self.cluster_us_per_op, 1)
        doc["saturated"] = self.saturated
        return doc
