"""`python -m cluster.bench compare` for real, tiny: real clusters, a fraction of a
second per workload. etcd and PySyncObj run when installed here; when not, the
output must say they were skipped and why (never a silent pass). Nothing here
asserts on speed. The command ends every process it started (by pid); if it
overruns, it gets SIGTERM, which it turns into that same cleanup."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from cluster.bench.compare import grpc_noop, systems, table

pytestmark = pytest.mark.timeout(120)


def compare(tmp_path: Path, *args: str) -> tuple[int, str, dict]:  # type: ignore[type-arg]
    command = [sys.executable, "-m", "cluster.bench", "compare", "--out", str(tmp_path / "out"), "--quiet",
               "--keys", "50", "--no-chart", *(() if "--idle" in args else ("--idle", "0")), *args]
    # the chart: test_compare.py; the idle CPU: test_jangada_tiny only (it sleeps)
    proc = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=90)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGTERM)  # ours, by pid: it stops its clusters and exits 130
        out, err = proc.communicate(timeout=20)
        raise AssertionError(f"compare overran: {out}\n{err}") from None
    assert proc.returncode == 0, out + err
    return proc.returncode, out, json.loads((tmp_path / "out" / "compare.json").read_text())


def check_measured(doc: dict, system: str, workloads: list[str]) -> None:  # type: ignore[type-arg]
    got = [x for x in doc["measurements"] if x["system"] == system]
    assert [x["workload"] for x in got] == workloads
    for x in got:
        assert x["ok"] > 0 and x["errors"] == 0 and x["ops_per_s"] > 0 and x["latency_ms"]["p50"] >= 0


def test_jangada_tiny(tmp_path: Path) -> None:
    """With the fsync-less row (puts only) and the idle CPU line (issue 17)."""
    code, out, doc = compare(tmp_path, "--systems", "jangada,jangada-nofsync", "--workloads", "put-1,get-lin-16",
                             "--duration", "0.5", "--idle", "0.3")
    assert tuple(doc) == table.DOC_KEYS and "jangada vs etcd vs PySyncObj" in out
    check_measured(doc, "jangada", ["put-1", "get-lin-16"])
    check_measured(doc, "jangada-nofsync", ["put-1"])
    assert all(x["durability"] == ("fsync" if x["system"] == "jangada" else "NO fsync (storage.fsync = none)")
               and x["load_cpu_s"] > 0 for x in doc["measurements"])
    assert list(doc["idle_cpu"]["cores"]) == ["jangada"] and doc["idle_cpu"]["cores"]["jangada"] >= 0
    assert "idle CPU, 3 members, 0.3 s, nothing asked: jangada " in out
    assert (tmp_path / "out" / "compare.md").exists() and "no chart asked for" in out


def test_pysyncobj_tiny(tmp_path: Path) -> None:
    code, out, doc = compare(tmp_path, "--systems", "pysyncobj", "--workloads", "put-16,get-ser-16",
                             "--duration", "0.5")
    if systems.missing("pysyncobj"):
        assert "pysyncobj skipped: not installed here" in out and "pysyncobj" in doc["skipped"]
        return
    check_measured(doc, "pysyncobj", ["put-16", "get-ser-16"])
    assert all(x["durability"].startswith("NO fsync") and x["load_cpu_s"] is None for x in doc["measurements"])
    assert "NOT linearizable" in doc["measurements"][1]["note"] and "durability differs" not in out  # no fsync'd row


def test_etcd_tiny(tmp_path: Path) -> None:
    code, out, doc = compare(tmp_path, "--systems", "etcd", "--workloads", "put-16,get-lin-16",
                             "--duration", "0.5")
    if systems.missing("etcd"):
        assert "etcd skipped: not installed here" in out and "etcd" in doc["skipped"]
        return
    check_measured(doc, "etcd", ["put-16", "get-lin-16"])
    assert all(x["durability"] == "fsync" and x["load_cpu_s"] > 0 for x in doc["measurements"])


@pytest.mark.parametrize("system, durability", [("jangada-grpc", "fsync"),
                                                ("grpc-noop", grpc_noop.DURABILITY)])
def test_etcdload_against_the_face_and_its_ceiling_tiny(tmp_path: Path, system: str, durability: str) -> None:
    """jangada through its etcd gRPC face, and the face's ceiling (Python gRPC servers
    that answer at once), each driven by etcdload: every kind of workload the etcd
    rows run, aimed alike (writes and linearizable reads at one member)."""
    code, out, doc = compare(tmp_path, "--systems", system, "--workloads", "put-16,get-lin-16,get-ser-16",
                             "--duration", "0.5")
    if systems.missing(system):
        assert f"{system} skipped: not installed here" in out and system in doc["skipped"]
        return
    check_measured(doc, system, ["put-16", "get-lin-16", "get-ser-16"])
    for x in doc["measurements"]:
        assert x["durability"] == durability and x["load_cpu_s"] > 0 and x["cluster_cpu_s"] > 0
        assert x["generator"].startswith("etcdload (Go, clientv3)")
    assert [x["generator"].rsplit(" ", 1)[1] for x in doc["measurements"]] == ["leader", "leader", "all"]
    assert f"durability, {system}: {durability.split(' ')[0]}" in out


def test_jangada_idleface_tiny(tmp_path: Path) -> None:
    """The native load beside idle etcd faces, in the same run as the faceless native
    rows: both measured, and the ratio printed under the table."""
    code, out, doc = compare(tmp_path, "--systems", "jangada,jangada-idleface", "--workloads", "put-16",
                             "--duration", "0.5")
    check_measured(doc, "jangada", ["put-16"])
    check_measured(doc, "jangada-idleface", ["put-16"])
    idle = [x for x in doc["measurements"] if x["system"] == "jangada-idleface"][0]
    assert idle["durability"] == "fsync" and idle["generator"].startswith("cluster.bench --pipeline")
    assert "jangada-idleface / jangada ops/s (native load, faces on and idle vs off): put-16" in out


def test_jangada_secure_tiny(tmp_path: Path) -> None:
    """The native load over CURVE, beside the plaintext rows in the same run: both
    measured, and the vs-plaintext ratio printed under the table and in the JSON."""
    code, out, doc = compare(tmp_path, "--systems", "jangada,jangada-secure", "--workloads", "put-16,get-lin-16",
                             "--duration", "0.5")
    check_measured(doc, "jangada", ["put-16", "get-lin-16"])
    check_measured(doc, "jangada-secure", ["put-16", "get-lin-16"])
    secure = [x for x in doc["measurements"] if x["system"] == "jangada-secure"]
    assert all(x["durability"] == "fsync" and x["generator"].startswith("cluster.bench --pipeline") for x in secure)
    assert set(doc["vs_plaintext"]["jangada-secure"]) == {"put-16", "get-lin-16"}
    assert "jangada-secure / jangada (CURVE vs plaintext, native load): put-16 ops/s" in out


def test_a_curve_cluster_refuses_a_plaintext_load_and_serves_the_curve_one(tmp_path: Path) -> None:
    """What jangada-secure measures is CURVE: its members answer no plaintext status
    request, and the bench's own load, given the keys, gets every op done."""
    from cluster.bench import runner
    from cluster.bench.compare import jangada
    from cluster.bench.compare.plan import Settings, workload
    cluster = jangada.JangadaCluster(tmp_path, 3, curve=True)
    try:
        cluster.start()
        cluster.wait_for_leader()  # over CURVE
        assert set(runner.survey(cluster.spec.client_addresses(), timeout=0.5).roles.values()) == {"unreachable"}
        m = jangada.measure(workload("put-1"), cluster.spec.client_addresses(), Settings(0.3, keys=10), "always",
                            [p.pid for p in cluster.procs], jangada.SECURE_SYSTEM, cluster.curve_keys)
        assert m.system == "jangada-secure" and m.ok > 0 and m.errors == 0
    finally:
        cluster.close()


def test_jangada_grpc_tls_tiny(tmp_path: Path) -> None:
    """jangada's gRPC face over TLS, driven by etcdload with -cacert."""
    code, out, doc = compare(tmp_path, "--systems", "jangada-grpc-tls", "--workloads", "put-16,get-lin-16",
                             "--duration", "0.5")
    if systems.missing("jangada-grpc-tls"):
        assert "jangada-grpc-tls skipped: not installed here" in out and "jangada-grpc-tls" in doc["skipped"]
        return
    check_measured(doc, "jangada-grpc-tls", ["put-16", "get-lin-16"])
    for x in doc["measurements"]:
        assert x["durability"] == "fsync" and x["load_cpu_s"] > 0 and x["generator"].startswith("etcdload")
    assert doc["vs_plaintext"] == {}  # no jangada-grpc row in this run: nothing to divide by

