"""`python -m cluster.bench compare`: the comparison's own correctness, from fixed
inputs (no cluster): ratios, the table, durability labels, the JSON schema, the
skip message for a system that is not installed, etcdload's output parser."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cluster.bench.compare import cli, etcd, grpc_noop, jangada, syncobj, systems, table
from cluster.bench.compare.plan import WORKLOADS, Measurement, Settings

pytestmark = pytest.mark.timeout(30)

LAT = {"p50": 2.0, "p90": 3.0, "p99": 8.0, "p99.9": 9.0, "max": 10.0}


def m(system: str, workload: str, ops: float, p50: float = 2.0, members: int = 3, cpu: float | None = 0.5,
      durability: str = "fsync", processes: int = 1, elapsed: float = 8.0, **extra: Any) -> Measurement:
    return Measurement(system=system, workload=workload, members=members, durability=durability, ops_per_s=ops,
                       ok=int(ops * elapsed), errors=0, elapsed_s=elapsed, latency_ms=dict(LAT, p50=p50),
                       load_cpu_s=cpu, generator="g", generator_processes=processes, **extra)


FIXED = [
    m("etcd", "put-16", 4000.0, p50=4.0),
    m("jangada", "put-16", 2000.0, p50=8.0, processes=2),
    m("pysyncobj", "put-16", 6000.0, p50=2.0, cpu=None, durability=syncobj.DURABILITY, server_cpu_s=4.8),
    m("jangada", "put-64", 4000.0),
    m("jangada", "put-64-5m", 3000.0, members=5),
]


def test_ratios_divide_by_etcd_in_the_same_run_for_the_same_workload() -> None:
    r = table.ratios(FIXED)
    assert r["jangada"]["put-16"] == {"ops_per_s": 0.5, "p50": 2.0}
    assert r["pysyncobj"]["put-16"] == {"ops_per_s": 1.5, "p50": 0.5}
    assert r["etcd"]["put-16"] == {"ops_per_s": 1.0, "p50": 1.0}
    assert r["jangada"]["put-64"] == {"ops_per_s": None, "p50": None}  # no etcd put-64 in this run
    assert r["jangada"]["put-64-5m"] == {"ops_per_s": None, "p50": None}  # 5 members vs 3: no ratio


def test_the_table_orders_rows_by_workload_then_system_and_shows_ratios() -> None:
    rows = table.rows(FIXED, {})
    assert [(r[0], r[3]) for r in rows] == [("jangada", "put-16"), ("etcd", "put-16"), ("pysyncobj", "put-16"),
                                            ("jangada", "put-64"), ("jangada", "put-64-5m")]
    jangada_16 = dict(zip(table.COLUMNS, rows[0]))
    assert jangada_16["ops/s"] == "2,000" and jangada_16["ops/s vs etcd"] == "0.50x"
    assert jangada_16["p50 vs etcd"] == "2.00x" and jangada_16["load CPU us/op"] == "31"
    assert dict(zip(table.COLUMNS, rows[1]))["ops/s vs etcd"] == "-"
    # PySyncObj's load runs inside its leader: the CPU shown is server and load together, and says so.
    assert dict(zip(table.COLUMNS, rows[2]))["load CPU us/op"] == "in leader: 100 w/ server"


def test_cluster_cpu_per_op_counts_every_member_over_every_op() -> None:
    row = m("etcd", "put-16", 1000.0, cluster_cpu_s=2.4)  # 8,000 ops in 8 s
    assert row.cluster_us_per_op == pytest.approx(300.0) and row.to_dict()["cluster_us_per_op"] == 300.0
    assert dict(zip(table.COLUMNS, table.rows([row], {})[0]))["cluster CPU us/op"] == "300"
    assert m("etcd", "put-16", 1000.0).cluster_us_per_op is None


def test_server_cpu_reads_the_processes_it_was_given() -> None:
    import os
    import time
    from cluster.bench.compare.cpu import ServerCpu
    cpu = ServerCpu([os.getpid()])
    cpu.begin()
    deadline = time.process_time() + 0.1
    while time.process_time() < deadline:
        pass
    used = cpu.end()
    # The kernel counts CPU in clock ticks (10 ms): each of the two readings may be
    # up to one tick short, and the sums are floats (0.0399999... failed a >= 0.04).
    assert used is not None and used >= 0.08 - 1e-6 and cpu.end() == used  # read once


def test_durability_labels_say_who_fsyncs() -> None:
    assert jangada.durability("always") == "fsync" and etcd.DURABILITY == "fsync"
    assert jangada.durability("none").startswith("NO fsync") and syncobj.DURABILITY.startswith("NO fsync")
    assert table.fsyncs("fsync") and not table.fsyncs(syncobj.DURABILITY)
    md = table.markdown(FIXED, {})
    assert "| pysyncobj | 3 | NO fsync |" in md and "| jangada | 3 | fsync |" in md
    assert "durability differs: pysyncobj acknowledged writes WITHOUT fsync" in md
    assert "PySyncObj writes its journal file and never fsyncs it" in md


def test_jangada_without_fsync_next_to_an_fsyncing_system_is_called_out() -> None:
    rows = [m("etcd", "put-16", 4000.0), m("jangada", "put-16", 9000.0, durability=jangada.durability("none"))]
    assert any(c.startswith("durability differs: jangada") for c in table.caveats(rows, {}))
    same = [m("etcd", "put-16", 4000.0), m("jangada", "put-16", 3000.0)]
    assert not any("durability differs" in c for c in table.caveats(same, {}))


def test_five_members_against_the_80_percent_target() -> None:
    assert table.five_vs_three(FIXED) == {"ratio": 0.75, "target": 0.80, "met": False}
    high = [m("jangada", "put-64", 4000.0), m("jangada", "put-64-5m", 3400.0, members=5)]
    assert table.five_vs_three(high) == {"ratio": 0.85, "target": 0.80, "met": True}
    low = [m("jangada", "put-64", 4000.0), m("jangada", "put-64-5m", 2000.0, members=5)]
    assert table.five_vs_three(low) == {"ratio": 0.5, "target": 0.80, "met": False}
    assert "NOT met" in table.markdown(low, {})
    assert table.five_vs_three(FIXED[:3]) is None


def test_a_saturated_load_generator_is_flagged_per_process() -> None:
    busy = m("etcd", "put-64", 5000.0, cpu=7.6, elapsed=8.0)  # 0.95 of one core
    two = m("jangada", "put-64", 4000.0, cpu=12.0, processes=2, elapsed=8.0)  # 0.75 of each of 2
    assert busy.saturated and not two.saturated and busy.load_cores == pytest.approx(0.95)
    assert "SATURATED" in table.rows([busy], {})[0][7]
    assert any("load generator was saturated" in c for c in table.caveats([busy, two], {}))


def test_the_json_document_schema_is_stable() -> None:
    doc = table.document(FIXED, {"etcd": "why"}, "2026-11-22T00:00:00", Settings(8.0), {"cpus": 2})
    assert tuple(doc) == table.DOC_KEYS and doc["schema"] == table.SCHEMA == 3
    assert all(tuple(x) == table.MEASUREMENT_KEYS for x in doc["measurements"])
    assert (doc["duration_s"], doc["keys"], doc["value_size"]) == (8.0, 1000, 100)
    assert doc["skipped"] == {"etcd": "why"} and doc["systems"] == ["etcd", "jangada", "pysyncobj"]
    assert json.loads(json.dumps(doc)) == doc


ETCDLOAD_OUT = ('{"level":"warn","msg":"retrying of unary invoker failed"}\n'
                '{"workload":"put","clients":16,"conns":8,"target":"leader","count":40000,"ok":39998,"errors":2,'
                '"error_kinds":{"rpctypes.EtcdError":2},"elapsed_s":8.0,"ops_per_s":4999.75,'
                '"latency_ms":{"max":40.1,"p50":3.1,"p90":5.2,"p99":9.9,"p99.9":20.0},"cpu_s":2.4}\n')


def test_the_etcdload_parser_takes_its_last_json_line() -> None:
    doc = etcd.parse_etcdload(ETCDLOAD_OUT)
    assert doc["ok"] == 39998 and doc["latency_ms"]["p99.9"] == 20.0
    got = etcd.measurement(WORKLOADS[1], doc)
    assert (got.system, got.workload, got.durability, got.ops_per_s, got.errors) == (
        "etcd", "put-16", "fsync", 4999.75, 2)
    assert got.error_kinds == {"rpctypes.EtcdError": 2} and got.load_us_per_op == pytest.approx(60.0)
    assert "16 goroutines over 8 gRPC conns" in got.generator


@pytest.mark.parametrize("stdout, message", [
    ("", "printed no result"),
    ("panic: boom\n", "printed no result"),
    ('{"count": 1}\n', "lacks"),
])
def test_the_etcdload_parser_rejects_what_is_not_a_result(stdout: str, message: str) -> None:
    with pytest.raises(etcd.EtcdError, match=message):
        etcd.parse_etcdload(stdout)


def test_etcdload_arguments_per_workload() -> None:
    by = {w.key: etcd.etcdload_args(w, ["127.0.0.1:1", "127.0.0.1:2"], Settings(8.0, keys=50)) for w in WORKLOADS[:5]}
    assert by["put-64"][:4] == ["-workload", "put", "-clients", "64"] and by["put-64"][-1] == "leader"
    assert by["get-lin-16"][1] == "get" and by["get-lin-16"][-1] == "leader"
    assert by["get-ser-16"][1] == "get-serializable" and by["get-ser-16"][-1] == "all"
    assert "127.0.0.1:1,127.0.0.1:2" in by["put-1"]
    assert by["put-1"][by["put-1"].index("-keys") + 1] == "50" and "-value-size" in by["put-1"]


def test_a_cached_etcdload_is_not_rebuilt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = tmp_path / "main.go"
    source.write_text("package main\n")
    import hashlib
    home = tmp_path / "cache" / hashlib.sha256(source.read_bytes()).hexdigest()[:16]
    home.mkdir(parents=True)
    (home / "etcdload").write_text("")
    monkeypatch.setattr(etcd, "go_binary", lambda: None)  # building now would fail
    assert etcd.build_etcdload(source, tmp_path / "cache") == home / "etcdload"
    source.write_text("package main\n// changed\n")
    with pytest.raises(etcd.EtcdError, match="golang-go"):
        etcd.build_etcdload(source, tmp_path / "cache")


def test_missing_packages_are_named() -> None:
    nothing = systems.etcd_missing(exists=lambda path: False, which=lambda name: None)
    assert nothing == ["etcd-server", "golang-go", "golang-etcd-server-dev"]
    assert systems.etcd_missing(exists=lambda path: True, which=lambda name: "/usr/bin/go") == []
    assert systems.pysyncobj_missing(find=lambda name: None) == ["pysyncobj"]
    assert systems.missing("jangada") == []


def test_the_skip_message_says_what_is_missing_and_how_to_install_it() -> None:
    msg = systems.skip_message("etcd", ["etcd-server", "golang-go"])
    assert "missing etcd-server, golang-go" in msg and "--install" in msg
    assert "apt-get install -y etcd-server golang-go" in msg
    assert "pip install pysyncobj" in systems.skip_message("pysyncobj", ["pysyncobj"])
    assert systems.install_requested(False, {"JANGADA_BENCH_INSTALL": "1"})
    assert not systems.install_requested(False, {}) and systems.install_requested(True, {})


def test_a_system_that_is_not_installed_is_skipped_in_the_output_table_and_json(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(systems, "missing", lambda system: ["pysyncobj"] if system == "pysyncobj" else [])
    monkeypatch.delenv("JANGADA_BENCH_INSTALL", raising=False)
    code = cli.main(["--systems", "pysyncobj", "--out", str(tmp_path), "--quiet"])
    out = capsys.readouterr().out
    assert code == 0
    assert "pysyncobj skipped: not installed here (missing pysyncobj); rerun with --install" in out
    doc = json.loads((tmp_path / "compare.json").read_text())
    assert doc["measurements"] == [] and "missing pysyncobj" in doc["skipped"]["pysyncobj"]
    assert "| pysyncobj | - | - | - | skipped |" in (tmp_path / "compare.md").read_text()


def test_install_is_tried_only_when_asked_and_a_failed_install_skips_the_system(
        monkeypatch: pytest.MonkeyPatch) -> None:
    lacking = {"etcd": ["etcd-server"], "pysyncobj": ["pysyncobj"]}
    tried: list[str] = []

    def install(system: str, packages: list[str]) -> str | None:
        tried.append(system)
        if system == "pysyncobj":
            lacking["pysyncobj"] = []  # installed
            return None
        return "apt-get install failed: E: Unable to locate package"

    monkeypatch.setattr(systems, "missing", lambda system: lacking.get(system, []))
    monkeypatch.setattr(systems, "install", install)
    assert cli.check_systems(["jangada", "etcd"], False, print) == {
        "etcd": systems.skip_message("etcd", ["etcd-server"])} and tried == []
    skipped = cli.check_systems(["jangada", "etcd", "pysyncobj"], True, print)
    assert tried == ["etcd", "pysyncobj"]
    assert skipped == {"etcd": "install failed: apt-get install failed: E: Unable to locate package"}


@pytest.mark.parametrize("argv, message", [
    (["--systems", "redis"], "choose from jangada, jangada-idleface, jangada-secure, jangada-grpc, "
                             "jangada-grpc-tls, grpc-noop, etcd, jangada-loopwrites, jangada-nofsync, pysyncobj"),
    (["--idle", "-1"], "--idle must be"),
    (["--workloads", "put-2"], "--workloads"),
    (["--duration", "0"], "--duration must be"),
    (["--duration", "x"], "invalid float"),
    (["--keys", "0"], "--keys must be"),
    (["--bogus"], "unrecognized"),
])
def test_usage_errors_exit_2_with_one_line(argv: list[str], message: str,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err


def test_the_chart_is_drawn_with_unfsynced_systems_named(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from cluster.bench.compare.chart import draw
    draw(FIXED, str(tmp_path / "c.png"), "title")
    assert (tmp_path / "c.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_compare_is_a_subcommand_of_the_bench_and_answers_help(capsys: pytest.CaptureFixture[str]) -> None:
    from cluster.bench.cli import main
    assert main(["compare", "--help"]) == 0
    out = capsys.readouterr().out
    assert "usage: python -m cluster.bench compare" in out and "put-64-5m" in out


# -- jangada-grpc: jangada's cluster through its etcd gRPC face, driven by etcdload ----------------------

def test_jangada_grpc_is_a_default_system_for_every_workload_etcd_runs() -> None:
    from cluster.bench.compare.plan import SYSTEMS
    assert SYSTEMS == ("jangada", "jangada-idleface", "jangada-secure", "jangada-grpc", "jangada-grpc-tls",
                       "grpc-noop", "etcd", "jangada-loopwrites", "jangada-nofsync", "pysyncobj")
    for w in WORKLOADS:
        assert ("jangada-grpc" in w.systems) == ("etcd" in w.systems), w.key
    assert cli.parse([]).systems == list(SYSTEMS)
    assert cli.parse(["--systems", "jangada-grpc"]).systems == ["jangada-grpc"]
    assert "put-64-5m   put, 64 in flight, 5 members (jangada only)" in cli.EPILOG


def test_jangada_grpc_rows_sit_between_jangada_and_etcd_with_ratios_to_both() -> None:
    rows = [m("etcd", "put-16", 4000.0, p50=4.0), m("jangada-grpc", "put-16", 3000.0, p50=5.0),
            m("jangada", "put-16", 2000.0, p50=8.0), m("jangada-grpc", "get-ser-16", 500.0)]
    cells = table.rows(rows, {})
    assert [(r[0], r[3]) for r in cells] == [("jangada", "put-16"), ("jangada-grpc", "put-16"), ("etcd", "put-16"),
                                             ("jangada-grpc", "get-ser-16")]
    grpc_16 = dict(zip(table.COLUMNS, cells[1]))
    assert grpc_16["ops/s vs etcd"] == "0.75x" and grpc_16["p50 vs etcd"] == "1.25x"
    assert table.vs_native(rows, "jangada-grpc") == {"put-16": 1.5}  # no native get-ser-16 row: no ratio
    notes = table.footnotes(rows, {})
    assert "jangada-grpc / jangada native ops/s: put-16 1.50x" in notes
    assert any(n.startswith("durability, jangada-grpc: fsync = as jangada's") for n in notes)


def test_etcdload_rows_name_the_system_durability_and_target_they_were_given() -> None:
    doc = etcd.parse_etcdload(ETCDLOAD_OUT)
    got = etcd.measurement(WORKLOADS[1], doc, 1.5, system="jangada-grpc", durability=jangada.durability("always"),
                           target="leader")
    assert (got.system, got.durability, got.cluster_cpu_s, got.ops_per_s) == ("jangada-grpc", "fsync", 1.5, 4999.75)
    assert got.generator.endswith("target leader") and got.load_us_per_op == pytest.approx(60.0)
    assert etcd.etcdload_args(WORKLOADS[1], ["h:1"], Settings(1.0), target="all")[-1] == "all"


def test_the_grpc_cluster_gives_every_member_a_grpc_url_and_the_native_one_none(tmp_path: Path) -> None:
    native = jangada.JangadaCluster(tmp_path, 3)
    assert [(mem.grpc, mem.gateway) for mem in native.spec.members] == [("", "")] * 3  # no etcd face at all
    faced = jangada.JangadaCluster(tmp_path, 3, grpc=True)
    urls = [mem.grpc for mem in faced.spec.members]
    assert all(u.startswith("http://127.0.0.1:") for u in urls) and all(not mem.gateway for mem in faced.spec.members)
    ports = [u.rsplit(":", 1)[1] for u in urls] + [a.rsplit(":", 1)[1] for mem in faced.spec.members
                                                  for a in (mem.peer, mem.client)]
    assert len(set(ports)) == 9
    assert 'grpc = "http://127.0.0.1:' in faced.config.read_text()


def test_jangada_grpc_loads_the_leaders_face_or_every_face(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from cluster.bench import runner
    from cluster.bench.compare import jangada_grpc
    spec = jangada.JangadaCluster(tmp_path, 3, grpc=True).spec
    second = spec.members[1]
    monkeypatch.setattr(runner, "survey", lambda endpoints, timeout=1.0: runner.ClusterView(
        list(endpoints), second.client, {}))
    by = {w.key: jangada_grpc.target(w, spec) for w in WORKLOADS[:5]}
    leader = second.grpc.removeprefix("http://")
    assert by["put-1"] == by["put-64"] == by["get-lin-16"] == ([leader], "leader")
    assert by["get-ser-16"] == ([mem.grpc.removeprefix("http://") for mem in spec.members], "all")
    monkeypatch.setattr(runner, "survey", lambda endpoints, timeout=1.0: runner.ClusterView(list(endpoints), None, {}))
    with pytest.raises(jangada.JangadaError, match="no leader"):
        jangada_grpc.target(WORKLOADS[0], spec)


def test_jangada_grpc_needs_go_and_clientv3_but_no_etcd_server(monkeypatch: pytest.MonkeyPatch) -> None:
    assert systems.etcdload_missing(exists=lambda path: False, which=lambda name: None) == [
        "golang-go", "golang-etcd-server-dev"]
    assert systems.etcdload_missing(exists=lambda path: path != etcd.ETCD, which=lambda name: "/usr/bin/go") == []
    assert "apt-get install -y golang-go" in systems.skip_message("jangada-grpc", ["golang-go"])
    monkeypatch.setattr(systems, "etcdload_missing", lambda: ["golang-go"])
    assert systems.missing("jangada-grpc") == ["golang-go"]


# -- jangada-idleface: the native load on members whose etcd faces are on and idle -----------------------

def test_jangada_idleface_is_a_default_system_next_to_jangada_for_the_3_member_workloads() -> None:
    from cluster.bench.compare.plan import SYSTEMS
    assert SYSTEMS.index("jangada-idleface") == SYSTEMS.index("jangada") + 1
    assert [w.key for w in WORKLOADS if "jangada-idleface" in w.systems] == [
        "put-1", "put-16", "put-64", "get-lin-16", "get-ser-16"]
    assert systems.missing("jangada-idleface") == []  # the face's grpcio is jangada's own dependency


def test_the_idle_face_cluster_turns_on_grpc_and_the_gateway_on_distinct_ports(tmp_path: Path) -> None:
    faced = jangada.JangadaCluster(tmp_path, 3, grpc=True, gateway=True)
    assert all(mem.grpc.startswith("http://127.0.0.1:") and mem.gateway.startswith("http://127.0.0.1:")
               for mem in faced.spec.members)
    ports = {a.rsplit(":", 1)[1] for mem in faced.spec.members for a in (mem.peer, mem.client, mem.grpc, mem.gateway)}
    assert len(ports) == 12
    text = faced.config.read_text()
    assert text.count('grpc = "http://127.0.0.1:') == 3 and text.count('gateway = "http://127.0.0.1:') == 3


def test_idleface_rows_follow_jangada_and_get_a_ratio_to_the_native_rows() -> None:
    rows = [m("etcd", "put-16", 4000.0, p50=4.0), m("jangada-grpc", "put-16", 500.0),
            m("jangada-idleface", "put-16", 1900.0, p50=8.4), m("jangada", "put-16", 2000.0, p50=8.0),
            m("jangada-idleface", "put-64", 3000.0)]
    cells = table.rows(rows, {})
    assert [(r[0], r[3]) for r in cells] == [("jangada", "put-16"), ("jangada-idleface", "put-16"),
                                             ("jangada-grpc", "put-16"), ("etcd", "put-16"),
                                             ("jangada-idleface", "put-64")]
    assert dict(zip(table.COLUMNS, cells[1]))["ops/s vs etcd"] == "0.47x"
    assert table.vs_native(rows, "jangada-idleface") == {"put-16": 0.95}  # no native put-64: no ratio
    notes = table.footnotes(rows, {})
    idle = [n for n in notes if n.startswith("jangada-idleface / jangada ops/s")]
    assert idle == ["jangada-idleface / jangada ops/s (native load, faces on and idle vs off): put-16 0.95x"]
    assert notes.index(idle[0]) < notes.index("jangada-grpc / jangada native ops/s: put-16 0.25x")
    assert any(n.startswith("durability, jangada-idleface: fsync = as jangada's") for n in notes)
    assert table.five_vs_three([m("jangada-idleface", "put-64", 1.0)]) is None  # the target is jangada's own


def test_run_system_runs_the_native_load_with_idle_faces_for_jangada_idleface(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[list[str], bool]] = []

    def run(mine: list[Any], home: Path, settings: Settings, each: Any = None, idle_faces: bool = False,
            secure: bool = False, nofsync: bool = False, idle: Any = None) -> list[Any]:
        assert not secure and not nofsync
        calls.append(([w.key for w in mine], idle_faces))
        return []

    monkeypatch.setattr(jangada, "run", run)
    cli.run_system("jangada-idleface", list(WORKLOADS), tmp_path, Settings(1.0), lambda m: None)
    cli.run_system("jangada", list(WORKLOADS), tmp_path, Settings(1.0), lambda m: None)
    assert calls == [(["put-1", "put-16", "put-64", "get-lin-16", "get-ser-16"], True),
                     ([w.key for w in WORKLOADS], False)]


def test_wait_for_faces_waits_for_the_gateway_too(tmp_path: Path) -> None:
    import socket
    faced = jangada.JangadaCluster(tmp_path, 1, grpc=True, gateway=True)
    with socket.socket() as grpc_port:
        grpc_port.bind(("127.0.0.1", int(faced.spec.members[0].grpc.rsplit(":", 1)[1])))
        grpc_port.listen()
        with pytest.raises(jangada.JangadaError, match="member 1's gateway did not listen"):
            jangada.wait_for_faces(faced.spec, timeout=0.3)


# -- jangada-secure / jangada-grpc-tls: the same loads over CURVE / TLS (issue 15) -----------------------

def test_the_secure_systems_follow_their_plaintext_twins_for_every_3_member_workload() -> None:
    from cluster.bench.compare.plan import SYSTEMS
    assert SYSTEMS.index("jangada-secure") > SYSTEMS.index("jangada")
    assert SYSTEMS.index("jangada-grpc-tls") == SYSTEMS.index("jangada-grpc") + 1
    for w in WORKLOADS:
        assert ("jangada-secure" in w.systems) == ("jangada-grpc-tls" in w.systems) == (w.members == 3), w.key
    assert cli.parse(["--systems", "jangada-secure,jangada-grpc-tls"]).systems == ["jangada-secure",
                                                                                    "jangada-grpc-tls"]
    assert systems.missing("jangada-secure") == []
    assert systems.APT_PACKAGES["jangada-grpc-tls"] == systems.APT_PACKAGES["jangada-grpc"]


def test_vs_plaintext_divides_each_secure_row_by_its_twin_in_the_same_run() -> None:
    rows = [m("jangada", "put-64", 4000.0, p50=10.0), m("jangada-secure", "put-64", 3000.0, p50=12.5),
            m("jangada-grpc", "get-lin-16", 2000.0, p50=4.0), m("jangada-grpc-tls", "get-lin-16", 1000.0, p50=8.0),
            m("jangada-secure", "get-lin-16", 900.0)]  # no plaintext get-lin-16 row: no ratio
    assert table.vs_plaintext(rows) == {
        "jangada-secure": {"put-64": {"ops_per_s": 0.75, "p50": 1.25}},
        "jangada-grpc-tls": {"get-lin-16": {"ops_per_s": 0.5, "p50": 2.0}}}
    notes = table.footnotes(rows, {})
    assert "jangada-secure / jangada (CURVE vs plaintext, native load): put-64 ops/s 0.75x p50 1.25x" in notes
    assert "jangada-grpc-tls / jangada-grpc (TLS vs plaintext, gRPC face): get-lin-16 ops/s 0.50x p50 2.00x" in notes
    assert any(n.startswith("durability, jangada-secure: fsync = as jangada's") for n in notes)
    assert any(n.startswith("durability, jangada-grpc-tls: fsync = as jangada-grpc's") for n in notes)
    doc = table.document(rows, {}, "2026-12-06T00:00:00", Settings(8.0), {"cpus": 2})
    assert doc["vs_plaintext"] == table.vs_plaintext(rows)
    assert [(r[0], r[3]) for r in table.rows(rows, {})] == [
        ("jangada", "put-64"), ("jangada-secure", "put-64"), ("jangada-secure", "get-lin-16"),
        ("jangada-grpc", "get-lin-16"), ("jangada-grpc-tls", "get-lin-16")]
    assert table.vs_plaintext(FIXED) == {}


def test_the_curve_cluster_has_a_key_file_per_member_and_the_load_its_public_keys(tmp_path: Path) -> None:
    from cluster.curve_keys import read_key_file
    secure = jangada.JangadaCluster(tmp_path, 3, curve=True)
    assert secure.spec.curve.enabled and secure.curve is not None
    for mem in secure.spec.members:
        path = secure.spec.config_path(secure.spec.curve.secret_key, mem.id)
        assert read_key_file(path)[0] == mem.curve_public and path.stat().st_mode & 0o777 == 0o600
    assert secure.curve_keys == tuple((mem.client, mem.curve_public) for mem in secure.spec.members)
    assert secure.curve.server_keys == dict(secure.curve_keys)
    assert "enabled = true" in secure.config.read_text()
    (tmp_path / "plain").mkdir()
    plain = jangada.JangadaCluster(tmp_path / "plain", 3)
    assert plain.curve is None and plain.curve_keys == ()


def test_the_tls_cluster_has_https_faces_and_certificates_its_ca_signed(tmp_path: Path) -> None:
    from cryptography import x509
    cluster = jangada.JangadaCluster(tmp_path, 3, grpc=True, tls=True)
    assert all(mem.grpc.startswith("https://127.0.0.1:") for mem in cluster.spec.members)
    ca = x509.load_pem_x509_certificate(cluster.ca_cert.read_bytes())
    for mem in cluster.spec.members:
        cert = x509.load_pem_x509_certificate(cluster.spec.config_path(cluster.spec.tls.cert, mem.id).read_bytes())
        cert.verify_directly_issued_by(ca)
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
        assert cluster.spec.config_path(cluster.spec.tls.key, mem.id).stat().st_mode & 0o777 == 0o600
    assert cluster.spec.tls.ca == str(cluster.ca_cert) and not cluster.spec.tls.client_cert_auth


def test_jangada_grpc_tls_gives_etcdload_the_ca_and_its_own_system_name(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from cluster.bench.compare import jangada_grpc
    cluster = jangada.JangadaCluster(tmp_path, 3, grpc=True, tls=True)
    leader = cluster.spec.members[0]
    monkeypatch.setattr(jangada_grpc, "leader_grpc_endpoint", lambda spec: jangada_grpc.host_port(leader.grpc))
    seen: list[list[str]] = []

    def run_etcdload(binary: Path, args: list[str], pids: list[int], settings: Settings,
                     what: str) -> tuple[dict[str, Any], float]:
        seen.append(args)
        return etcd.parse_etcdload(ETCDLOAD_OUT), 1.0

    monkeypatch.setattr(etcd, "run_etcdload", run_etcdload)
    got = jangada_grpc.measure(Path("etcdload"), WORKLOADS[2], cluster, Settings(1.0), jangada_grpc.TLS_SYSTEM)
    assert got.system == "jangada-grpc-tls" and got.durability == "fsync"
    assert seen[0][-2:] == ["-cacert", str(cluster.ca_cert)]
    assert seen[0][seen[0].index("-endpoints") + 1] == leader.grpc.removeprefix("https://")
    (tmp_path / "plain").mkdir()
    plain = jangada.JangadaCluster(tmp_path / "plain", 3, grpc=True)
    jangada_grpc.measure(Path("etcdload"), WORKLOADS[2], plain, Settings(1.0))
    assert "-cacert" not in seen[1]


def test_run_system_dispatches_the_secure_systems(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from cluster.bench.compare import jangada_grpc
    calls: list[tuple[str, bool]] = []

    def native(mine: list[Any], home: Path, settings: Settings, each: Any = None, idle_faces: bool = False,
               secure: bool = False, nofsync: bool = False, idle: Any = None) -> list[Any]:
        calls.append(("native", secure))
        return []

    def grpc(mine: list[Any], home: Path, settings: Settings, each: Any = None, tls: bool = False) -> list[Any]:
        calls.append(("grpc", tls))
        return []

    monkeypatch.setattr(jangada, "run", native)
    monkeypatch.setattr(jangada_grpc, "run", grpc)
    for system in ("jangada", "jangada-secure", "jangada-grpc", "jangada-grpc-tls"):
        cli.run_system(system, list(WORKLOADS), tmp_path, Settings(1.0), lambda m: None)
    assert calls == [("native", False), ("native", True), ("grpc", False), ("grpc", True)]


def test_a_curve_load_process_secures_its_socket_and_a_plaintext_one_does_not() -> None:
    import zmq
    from cluster.bench import pipeline, worker
    from cluster.bench.options import BenchOptions
    from cluster.curve_keys import new_key_pair
    public, _ = new_key_pair()
    options = BenchOptions(pipeline=True, curve_keys=(("tcp://127.0.0.1:1", public),))
    curve = worker.curve_client(options)
    assert curve is not None and curve.server_keys == {"tcp://127.0.0.1:1": public}
    assert worker.curve_client(BenchOptions()) is None
    pipe = pipeline.Pipeline("tcp://127.0.0.1:1", 1, curve)
    try:
        assert pipe.sock.getsockopt(zmq.MECHANISM) == zmq.CURVE
    finally:
        pipe.close()
    plain = pipeline.Pipeline("tcp://127.0.0.1:1", 1)
    try:
        assert plain.sock.getsockopt(zmq.MECHANISM) == zmq.NULL
    finally:
        plain.close()


def test_run_system_runs_jangada_nofsync_on_puts_only_and_measures_idle_for_the_idle_systems(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[list[str], bool, bool]] = []

    def run(mine: list[Any], home: Path, settings: Settings, each: Any = None, idle_faces: bool = False,
            secure: bool = False, nofsync: bool = False, idle: Any = None) -> list[Any]:
        calls.append(([w.key for w in mine], nofsync, idle is not None))
        if idle is not None:
            idle([11, 12, 13])
        return []

    monkeypatch.setattr(jangada, "run", run)
    seen: list[tuple[str, list[int]]] = []
    for system in ("jangada-nofsync", "jangada", "jangada-idleface"):
        cli.run_system(system, list(WORKLOADS), tmp_path, Settings(1.0), lambda m: None,
                       lambda s, pids: seen.append((s, pids)))
    assert calls == [(["put-1", "put-16", "put-64"], True, False),
                     ([w.key for w in WORKLOADS], False, True),
                     (["put-1", "put-16", "put-64", "get-lin-16", "get-ser-16"], False, False)]
    assert seen == [("jangada", [11, 12, 13])]


def test_the_idle_line_and_the_nofsync_ratio_are_printed_with_their_targets() -> None:
    rows = [m("jangada-nofsync", "put-16", 15000.0), m("pysyncobj", "put-16", 10000.0),
            m("jangada-nofsync", "put-64", 20000.0)]
    assert table.nofsync_vs_pysyncobj(rows) == {"put-16": 1.5}  # no pysyncobj put-64: no ratio
    notes = table.footnotes(rows, {}, {"jangada": 0.05, "etcd": 0.03, "pysyncobj": 0.01}, 5.0)
    assert notes[0] == ("idle CPU, 3 members, 5 s, nothing asked: jangada 0.050 cores, etcd 0.030 cores, "
                        "pysyncobj 0.010 cores; jangada / etcd 1.67x (target <= 2x: met)")
    assert "jangada-nofsync / pysyncobj ops/s (both WITHOUT fsync): put-16 1.50x (target >= 1.5x)" in notes
    assert any(n.startswith("durability, jangada-nofsync: NO fsync") for n in notes)
    assert table.idle_line({"jangada": 0.3, "etcd": 0.03}, 10.0).endswith("10.00x (target <= 2x: NOT met)")
    assert table.idle_line({}, 5.0) is None
    doc = table.document(rows, {}, "2026-12-06T00:00:00", Settings(8.0, idle_s=5.0), {}, {"jangada": 0.05})
    assert doc["idle_cpu"] == {"seconds": 5.0, "members": 3, "cores": {"jangada": 0.05}}
    assert doc["nofsync_vs_pysyncobj"] == {"put-16": 1.5}


# -- grpc-noop: the ceiling of a gRPC face in Python (Python gRPC servers that do nothing) ---------------

def test_grpc_noop_runs_where_etcd_does_and_is_measured_against_the_face() -> None:
    for w in WORKLOADS:
        assert ("grpc-noop" in w.systems) == ("etcd" in w.systems), w.key
    rows = [m("etcd", "put-64", 8000.0, p50=7.0), m("grpc-noop", "put-64", 4000.0, durability=grpc_noop.DURABILITY),
            m("jangada-grpc", "put-64", 1000.0), m("jangada-grpc", "put-16", 900.0)]
    cells = table.rows(rows, {})
    assert [(r[0], r[3]) for r in cells] == [("jangada-grpc", "put-16"), ("jangada-grpc", "put-64"),
                                             ("grpc-noop", "put-64"), ("etcd", "put-64")]
    assert table.vs_ceiling(rows, "jangada-grpc", "grpc-noop") == {"put-64": 0.25}  # no put-16 ceiling: no ratio
    notes = table.footnotes(rows, {})
    assert any(n.startswith("jangada-grpc / grpc-noop ops/s") and n.endswith("put-64 0.25x") for n in notes)
    assert any(n.startswith("durability, grpc-noop: NOTHING stored") for n in notes)
    assert any("durability differs: grpc-noop acknowledged writes WITHOUT fsync" in n for n in notes)
    assert dict(zip(table.COLUMNS, [c for c in cells if c[0] == "grpc-noop"][0]))["ops/s vs etcd"] == "0.50x"


def test_grpc_noop_aims_its_load_as_jangada_grpc_does(tmp_path: Path) -> None:
    servers = grpc_noop.NoopServers(tmp_path, 100)
    assert len(set(servers.ports)) == 3
    by_key = {w.key: w for w in WORKLOADS}
    assert grpc_noop.target(by_key["put-64"], servers) == (servers.endpoints[:1], "leader")
    assert grpc_noop.target(by_key["get-lin-16"], servers) == (servers.endpoints[:1], "leader")
    assert grpc_noop.target(by_key["get-ser-16"], servers) == (servers.endpoints, "all")
    assert systems.missing("grpc-noop") == systems.etcdload_missing()


def test_a_grpc_noop_server_refuses_bad_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    assert grpc_noop.main(["--port", "0"]) == 2
    assert "--port must be" in capsys.readouterr().err
