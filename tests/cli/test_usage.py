"""`python -m cluster`: usage errors exit 128 (etcdctl's ExitBadArgs) with one line
before anything connects; no cluster found exits 2 (ExitBadConnection) saying how
to start one; --help from any directory."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cluster.cli import build_parser, main


@pytest.fixture(autouse=True)
def empty_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("JANGADA_DATA_DIR", raising=False)
    monkeypatch.delenv("JANGADA_ENDPOINTS", raising=False)


@pytest.mark.parametrize("argv, message", [
    ([], "required"),
    (["frob"], "invalid choice"),
    (["get", "k", "--bogus"], "unrecognized arguments: --bogus"),
    (["get", ""], "must not be empty"),
    (["put", "", "v"], "must not be empty"),
    (["del", ""], "must not be empty"),
    (["get", "a", "--prefix", "--from-key"], "only one of"),
    (["get", "a", "z", "--prefix"], "only one of"),
    (["get", "a", "--limit", "-1"], "must be >= 0"),
    (["get", "a", "--rev", "x"], "not an integer"),
    (["get", "a", "-w", "yaml"], "invalid choice"),
    (["get", "a", "--timeout", "0"], "must be in"),
    (["compact"], "required"),
    (["--endpoints", "nonsense", "get", "a"], "--endpoints"),
    (["endpoint", "frob"], "invalid choice"),
    (["lease"], "required"),
    (["lease", "grant"], "required"),
    (["lease", "grant", "0"], "must be >= 1 second"),
    (["lease", "grant", "1.5"], "not a whole number"),
    (["lease", "grant", "5", "--id", "0"], "out of range"),
    (["lease", "revoke", "xyz"], "not a lease id"),
    (["lease", "keepalive", "8000000000000000"], "out of range"),
    (["lease", "timetolive"], "required"),
    (["lease", "list", "extra"], "unrecognized arguments"),
    (["put", "--lease", "zz", "k", "v"], "not a lease id"),
    (["put", "--ignore-value", "k", "v"], "needs only 1 argument when 'ignore-value' is set"),
    (["member", "add", "4"], "--peer"),
    (["member", "add", "4", "--peer", "h:1", "--grpc", "nonsense"], "--grpc"),
    (["member", "add", "4", "--peer", "h:1", "--gateway", "h:99999"], "--gateway"),
])
def test_usage_errors_exit_128_with_one_line(argv: list[str], message: str,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 128
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_member_add_takes_optional_client_and_etcd_faces() -> None:
    args = build_parser().parse_args(["member", "add", "4", "--peer", "h:1", "--grpc", "h:3",
                                      "--gateway", "http://h:4", "--voter"])
    assert (args.peer, args.client, args.grpc, args.gateway, args.voter) == (
        "tcp://h:1", None, "http://h:3", "http://h:4", True)
    plain = build_parser().parse_args(["member", "add", "4", "--peer", "h:1", "--client", "h:2"])
    assert (plain.client, plain.grpc, plain.gateway, plain.voter) == ("tcp://h:2", None, None, False)


def test_a_bad_txn_exits_3_and_an_unreadable_file_6(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "t.txt"
    path.write_text('size("k") = 1\n')
    assert main(["txn", "--file", str(path)]) == 3  # etcdctl's ExitInvalidInput
    assert "txn line 1" in capsys.readouterr().err
    assert main(["txn", "--file", str(tmp_path / "missing")]) == 6  # ExitIO
    assert "cannot read" in capsys.readouterr().err


def test_no_cluster_here_exits_2_and_says_how_to_start_one(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["get", "k"]) == 2
    assert "python -m supervisor up 3" in capsys.readouterr().err


def test_global_options_go_before_or_after_the_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-w", "json", "get", ""]) == 128
    assert main(["get", "", "-w", "json"]) == 128


def test_help_works_from_any_directory(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "cluster", "--help"], cwd=tmp_path, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0
    for word in ("put", "get", "del", "txn", "compact", "endpoint", "member", "--endpoints", "-w"):
        assert word in out.stdout
