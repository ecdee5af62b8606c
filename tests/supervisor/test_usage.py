"""`python -m supervisor`: bad arguments exit 2 with one clear line; commands that
need a cluster say there is none (exit 1). In-process: `main(argv) -> int`."""
from __future__ import annotations

from pathlib import Path

import pytest

from supervisor.__main__ import main


@pytest.fixture(autouse=True)
def empty_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("JANGADA_DATA_DIR", raising=False)


@pytest.mark.parametrize("argv, message", [
    ([], "required"),
    (["bogus"], "invalid choice"),
    (["up", "0"], "N must be 1..99"),
    (["up", "three"], "invalid int"),
    (["up", "3", "--base-port", "80"], "--base-port"),
    (["up", "3", "--config", "no-such-config"], "no such file"),
    (["chaos", "--interval", "0"], "must be > 0"),
    (["chaos", "--interval", "0.01"], "--interval"),
    (["chaos", "--duration", "99999"], "--duration"),
    (["kill", "1", "--signal", "HUP"], "--signal"),
    (["status", "--bogus"], "unrecognized"),
    (["keys"], "--config"),
    (["keys", "--config", "no-such-config"], "no such file"),
])
def test_bad_arguments_exit_2(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err


@pytest.mark.parametrize("argv", [["status"], ["kill", "1"], ["restart", "1"], ["logs", "1"], ["chaos"]])
def test_no_cluster_here_exits_1(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "no cluster here" in err or "no log for node 1" in err


def test_down_with_no_cluster_is_fine(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["down"]) == 0
    assert "no cluster running" in capsys.readouterr().out


def test_help_names_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("up", "status", "down", "kill", "restart", "logs", "chaos", "keys", "--secure", "exit status"):
        assert command in out
