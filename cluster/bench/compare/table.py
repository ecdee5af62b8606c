"""The comparison's figures: ratios vs etcd, the markdown table, the JSON document
(its shape is stable: `SCHEMA` changes when it does). Pure functions of the
measurements, so tests build them from fixed inputs."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cluster.bench.compare.plan import SATURATED_CORES, SYSTEMS, WORKLOADS, Measurement, Settings, workload

SCHEMA = 3  # 2: "vs_plaintext" (issue 15); 3: "idle_cpu", "nofsync_vs_pysyncobj" (issue 17)
DOC_KEYS = ("schema", "started", "duration_s", "keys", "value_size", "machine", "systems", "skipped", "measurements", "ratios",
            "five_vs_three", "vs_plaintext", "idle_cpu", "nofsync_vs_pysyncobj", "caveats")
#: The issue's target: an idle 3-member jangada cluster at most this many times etcd's CPU.
IDLE_TARGET = 2.0
#: The issue's target: jangada without fsync at least this many times PySyncObj's put ops/s.
NOFSYNC_TARGET = 1.5
MEASUREMENT_KEYS = ("system", "workload", "members", "durability", "ops_per_s", "ok", "errors", "elapsed_s",
                    "latency_ms", "load_cpu_s", "generator", "generator_processes", "note", "server_cpu_s", "cluster_cpu_s",
                    "error_kinds", "load_us_per_op", "load_cores", "cluster_us_per_op", "saturated")
#: Issue 17's target: 5 members keep at least this share of 3 members' put-64 throughput
#: (0.70 in the earlier issue that built the comparison).
FIVE_MEMBER_TARGET = 0.80
COLUMNS = ("system", "members", "durability", "workload", "ops/s", "p50 ms", "p99 ms", "load CPU us/op",
           "cluster CPU us/op", "ops/s vs etcd", "p50 vs etcd", "notes")
#: What each system's durability label means (printed under the table).
DURABILITY_LEGEND = {
    "jangada": "fsync = storage.fsync \"always\" (the shipped default): a write is acknowledged once a quorum "
               "has fsynced it",
    "jangada-loopwrites": "fsync = as jangada's (storage.fsync \"always\", the same native load), with "
                          "storage.wal_writes = \"loop\": each member's loop waits in its own WAL writes",
    "jangada-idleface": "fsync = as jangada's (the same cluster config, storage.fsync \"always\", the same "
                        "native load), with every member's etcd gRPC face and JSON gateway on and idle",
    "jangada-secure": "fsync = as jangada's (the same cluster config, storage.fsync \"always\", the same "
                      "native load), with [curve] on: the native and peer ports encrypted and authenticated",
    "jangada-grpc": "fsync = as jangada's (the same cluster config, storage.fsync \"always\"), reached "
                    "through its etcd v3 gRPC face by etcd's own load generator",
    "jangada-grpc-tls": "fsync = as jangada-grpc's (the same config, face and load generator), with TLS on the "
                        "gRPC face (server certificates; the load checks them, presents none)",
    "grpc-noop": "NOTHING stored = three Python grpc.aio servers (grpcio, as jangada's face) that answer "
                 "etcd's KV.Put and KV.Range at once, driven as jangada-grpc: not a store, the ceiling of "
                 "any gRPC face in Python on this machine",
    "etcd": "fsync = etcd 3.4's only mode: the WAL is fsynced before a write is acknowledged",
    "jangada-nofsync": "NO fsync = jangada's native load on members with storage.fsync \"none\" (benchmarks "
                       "only: a machine crash can lose acknowledged writes), the fair row next to PySyncObj",
    "pysyncobj": "NO fsync = PySyncObj writes its journal file and never fsyncs it: a machine crash can lose "
                 "acknowledged writes",
}


def fsyncs(durability: str) -> bool:
    """Whether a durability label promises an fsync before the acknowledgement."""
    return durability == "fsync"


def ratios(measurements: Sequence[Measurement]) -> dict[str, dict[str, dict[str, float | None]]]:
    """system -> workload -> {ops_per_s, p50}: this system's figure / etcd's for the
    same workload in the same run (None without an etcd figure to divide by)."""
    etcd = {m.workload: m for m in measurements if m.system == "etcd" and m.members == 3}
    out: dict[str, dict[str, dict[str, float | None]]] = {}
    for m in measurements:
        base = etcd.get(m.workload) if m.members == 3 else None
        ops = m.ops_per_s / base.ops_per_s if base and base.ops_per_s > 0 else None
        p50 = m.latency_ms["p50"] / base.latency_ms["p50"] if base and base.latency_ms["p50"] > 0 else None
        out.setdefault(m.system, {})[m.workload] = {
            "ops_per_s": None if ops is None else round(ops, 3), "p50": None if p50 is None else round(p50, 3)}
    return out


def five_vs_three(measurements: Sequence[Measurement]) -> dict[str, Any] | None:
    """jangada put-64 with 5 members / with 3 (the issue's >= 70% target)."""
    figures = {m.workload: m.ops_per_s for m in measurements if m.system == "jangada"}
    if not figures.get("put-64") or "put-64-5m" not in figures:
        return None
    share = figures["put-64-5m"] / figures["put-64"]
    return {"ratio": round(share, 3), "target": FIVE_MEMBER_TARGET, "met": share >= FIVE_MEMBER_TARGET}


#: system -> what its footnote ratio to jangada's native rows is called.
VS_NATIVE = {"jangada-idleface": "jangada-idleface / jangada ops/s (native load, faces on and idle vs off)",
             "jangada-grpc": "jangada-grpc / jangada native ops/s"}
#: system -> (the ceiling it is divided by, what the line under the table is called).
VS_CEILING = {"jangada-grpc": ("grpc-noop", "jangada-grpc / grpc-noop ops/s (the face against Python gRPC "
                                            "servers that do nothing)")}


def vs_native(measurements: Sequence[Measurement], system: str) -> dict[str, float]:
    """workload -> `system`'s ops/s / jangada's native ops/s in the same run. For
    jangada-grpc: what the etcd face and a Go clientv3 load cost or gain against the
    native protocol and its own load; for jangada-idleface: what an idle face costs
    the native protocol (issue 14: nothing)."""
    native = {m.workload: m.ops_per_s for m in measurements if m.system == "jangada"}
    return {m.workload: round(m.ops_per_s / native[m.workload], 3) for m in measurements
            if m.system == system and native.get(m.workload)}


def vs_ceiling(measurements: Sequence[Measurement], system: str, ceiling: str) -> dict[str, float]:
    """workload -> `system`'s ops/s / `ceiling`'s in the same run (jangada-grpc against
    grpc-noop: how near the face comes to what a Python gRPC server can do at all)."""
    top = {m.workload: m.ops_per_s for m in measurements if m.system == ceiling}
    return {m.workload: round(m.ops_per_s / top[m.workload], 3) for m in measurements
            if m.system == system and top.get(m.workload)}


#: secure system -> (its plaintext twin, what the ratio line under the table is called):
#: the same cluster config and load generator, only the encryption differs (issue 15).
VS_PLAINTEXT = {"jangada-secure": ("jangada", "jangada-secure / jangada (CURVE vs plaintext, native load)"),
                "jangada-grpc-tls": ("jangada-grpc", "jangada-grpc-tls / jangada-grpc (TLS vs plaintext, gRPC face)")}


def vs_plaintext(measurements: Sequence[Measurement]) -> dict[str, dict[str, dict[str, float | None]]]:
    """secure system -> workload -> {ops_per_s, p50}: its figure / its plaintext
    twin's for the same workload in the same run: what CURVE or TLS costs (ops/s
    below 1x, p50 above). Only workloads both measured."""
    by = {(m.system, m.workload): m for m in measurements}
    out: dict[str, dict[str, dict[str, float | None]]] = {}
    for m in measurements:
        if m.system not in VS_PLAINTEXT:
            continue
        base = by.get((VS_PLAINTEXT[m.system][0], m.workload))
        if base is None:
            continue
        ops = m.ops_per_s / base.ops_per_s if base.ops_per_s > 0 else None
        p50 = m.latency_ms["p50"] / base.latency_ms["p50"] if base.latency_ms["p50"] > 0 else None
        out.setdefault(m.system, {})[m.workload] = {
            "ops_per_s": None if ops is None else round(ops, 3), "p50": None if p50 is None else round(p50, 3)}
    return out


def nofsync_vs_pysyncobj(measurements: Sequence[Measurement]) -> dict[str, float]:
    """workload -> jangada-nofsync's ops/s / PySyncObj's in the same run: both
    without fsync, the only fair comparison with PySyncObj (issue 17's >= 1.5x)."""
    theirs = {m.workload: m.ops_per_s for m in measurements if m.system == "pysyncobj"}
    return {m.workload: round(m.ops_per_s / theirs[m.workload], 3) for m in measurements
            if m.system == "jangada-nofsync" and theirs.get(m.workload)}


def idle_line(idle: dict[str, float] | None, seconds: float) -> str | None:
    """The idle CPU line: each system's 3-member cluster doing nothing, and
    jangada's / etcd's against the issue's target (None: nothing measured)."""
    if not idle:
        return None
    line = f"idle CPU, 3 members, {seconds:g} s, nothing asked: " + ", ".join(
        f"{system} {cores:.3f} cores" for system, cores in idle.items())
    if idle.get("etcd") and "jangada" in idle:
        ratio = idle["jangada"] / idle["etcd"]
        line += f"; jangada / etcd {ratio:.2f}x (target <= {IDLE_TARGET:g}x: {'met' if ratio <= IDLE_TARGET else 'NOT met'})"
    return line


def caveats(measurements: Sequence[Measurement], skipped: dict[str, str]) -> list[str]:
    out = []
    mixed = {fsyncs(m.durability) for m in measurements if workload(m.workload).op == "put"}
    if len(mixed) > 1:
        unsynced = sorted({m.system for m in measurements if not fsyncs(m.durability)})
        out.append(f"durability differs: {', '.join(unsynced)} acknowledged writes WITHOUT fsync: those put "
                   "figures are not comparable to the fsync'd rows")
    for m in measurements:
        if m.saturated:
            out.append(f"{m.system} {m.workload}: the load generator was saturated ({m.load_cores:.2f} cores "
                       f"over {m.generator_processes} process(es), > {SATURATED_CORES:.0%} each): "
                       "the figure may be the generator's limit")
        if m.errors:
            out.append(f"{m.system} {m.workload}: {m.errors} failed operation(s) {m.error_kinds}")
    for system, why in skipped.items():
        out.append(f"{system} skipped: {why}")
    return out


def _fmt(x: float | None, digits: int = 0) -> str:
    if x is None:
        return "n/a"
    return f"{x:,.{digits}f}"


def ms(x: float) -> str:
    return f"{x:.3f}" if x < 0.1 else f"{x:,.2f}"


def load_cpu_cell(m: Measurement) -> str:
    if m.load_us_per_op is not None:
        return _fmt(m.load_us_per_op) + (" SATURATED" if m.saturated else "")
    if m.server_cpu_s is not None and m.ok + m.errors:
        return f"in leader: {m.server_cpu_s / (m.ok + m.errors) * 1e6:,.0f} w/ server"
    return "n/a"


def _ratio(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}x"


def rows(measurements: Sequence[Measurement], skipped: dict[str, str]) -> list[list[str]]:
    """The table's cells, in COLUMNS order: measured rows by workload then system,
    then one row per skipped system."""
    order = {w.key: i for i, w in enumerate(WORKLOADS)}
    systems = {s: i for i, s in enumerate(SYSTEMS)}
    rel = ratios(measurements)
    out = []
    for m in sorted(measurements, key=lambda m: (order.get(m.workload, 99), systems.get(m.system, 9))):
        r = rel[m.system][m.workload]
        note = "; ".join(x for x in (m.note, f"{m.errors} errors" if m.errors else "") if x)
        out.append([m.system, str(m.members), m.durability, m.workload, _fmt(m.ops_per_s),
                     ms(m.latency_ms["p50"]), ms(m.latency_ms["p99"]), load_cpu_cell(m),
                     _fmt(m.cluster_us_per_op),
                     "-" if m.system == "etcd" else _ratio(r["ops_per_s"]),
                     "-" if m.system == "etcd" else _ratio(r["p50"]), note])
    for system, why in skipped.items():
        out.append([system, "-", "-", "-", "skipped", "-", "-", "-", "-", "-", "-", why])
    return out


def footnotes(measurements: Sequence[Measurement], skipped: dict[str, str], idle: dict[str, float] | None = None,
              idle_s: float = 0.0) -> list[str]:
    """The lines under the table: idle CPU, the 5-member and fsync-less targets,
    durability legend, caveats."""
    lines = []
    quiet = idle_line(idle, idle_s)
    if quiet is not None:
        lines.append(quiet)
    unsynced = nofsync_vs_pysyncobj(measurements)
    if unsynced:
        lines.append("jangada-nofsync / pysyncobj ops/s (both WITHOUT fsync): " + ", ".join(
            f"{k} {v:.2f}x" for k, v in unsynced.items()) + f" (target >= {NOFSYNC_TARGET:g}x)")
    five = five_vs_three(measurements)
    if five is not None:
        lines.append(f"jangada put-64, 5 members / 3 members: {five['ratio']:.2f} "
                     f"(target >= {five['target']:.2f}: {'met' if five['met'] else 'NOT met'})")
    for system, title in VS_NATIVE.items():
        figures = vs_native(measurements, system)
        if figures:
            lines.append(f"{title}: " + ", ".join(f"{k} {v:.2f}x" for k, v in figures.items()))
    for system, (ceiling, title) in VS_CEILING.items():
        figures = vs_ceiling(measurements, system, ceiling)
        if figures:
            lines.append(f"{title}: " + ", ".join(f"{k} {v:.2f}x" for k, v in figures.items()))
    for system, costs in vs_plaintext(measurements).items():
        lines.append(f"{VS_PLAINTEXT[system][1]}: " + ", ".join(
            f"{k} ops/s {_ratio(v['ops_per_s'])} p50 {_ratio(v['p50'])}" for k, v in costs.items()))
    present = dict.fromkeys(m.system for m in measurements)
    lines += [f"durability, {system}: {DURABILITY_LEGEND[system]}" for system in present if system in
              DURABILITY_LEGEND]
    lines += ["workloads: " + "; ".join(f"{w.key} = {w.label}" for w in WORKLOADS
                                        if any(m.workload == w.key for m in measurements))]
    return lines + caveats(measurements, skipped)


def markdown(measurements: Sequence[Measurement], skipped: dict[str, str], idle: dict[str, float] | None = None,
             idle_s: float = 0.0) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "| " + " | ".join("---" for _ in COLUMNS) + " |"]
    lines += ["| " + " | ".join(c.replace("|", "/") for c in row) + " |" for row in rows(measurements, skipped)]
    return "\n".join(lines + [""] + [f"* {line}" for line in footnotes(measurements, skipped, idle, idle_s)]) + "\n"


def document(measurements: Sequence[Measurement], skipped: dict[str, str], started: str, settings: Settings,
             machine: dict[str, Any], idle: dict[str, float] | None = None) -> dict[str, Any]:
    doc = {
        "schema": SCHEMA, "started": started, "duration_s": settings.duration, "keys": settings.keys,
        "value_size": settings.value_size, "machine": machine,
        "systems": sorted({m.system for m in measurements}), "skipped": dict(skipped),
        "measurements": [m.to_dict() for m in measurements], "ratios": ratios(measurements),
        "five_vs_three": five_vs_three(measurements), "vs_plaintext": vs_plaintext(measurements),
        "idle_cpu": {"seconds": settings.idle_s, "members": 3,
                     "cores": {system: round(cores, 4) for system, cores in (idle or {}).items()}},
        "nofsync_vs_pysyncobj": nofsync_vs_pysyncobj(measurements),
        "caveats": caveats(measurements, skipped),
    }
    assert tuple(doc) == DOC_KEYS
    return doc
