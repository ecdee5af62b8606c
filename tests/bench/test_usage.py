"""`python -m cluster.bench`: a bad command line exits 2 with one line before anything
connects; no cluster here exits 1 and says how to start one."""
from __future__ import annotations

from pathlib import Path

import pytest

from cluster.bench.cli import main
from cluster.bench.options import DEFAULT_DURATION_CAP, DEFAULT_OPS, build_parser, options_from_args


@pytest.fixture(autouse=True)
def empty_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("JANGADA_DATA_DIR", raising=False)
    monkeypatch.delenv("JANGADA_ENDPOINTS", raising=False)


@pytest.mark.parametrize("argv, message", [
    ([], "required"),
    (["frob"], "invalid choice"),
    (["put", "--bogus"], "unrecognized arguments"),
    (["put", "--ops", "0"], "--ops must be"),
    (["put", "--ops", "x"], "not an integer"),
    (["put", "--ops", "3", "-c", "4"], "at least the number of clients"),
    (["put", "--duration", "0"], "--duration must be"),
    (["put", "--duration", "4000"], "--duration must be"),
    (["put", "--processes", "0"], "--processes must be"),
    (["put", "--in-flight", "1000"], "--in-flight must be"),
    (["put", "--keys", "0"], "--keys must be"),
    (["put", "--value-size", "-1"], "--value-size must be"),
    (["mixed", "--read-ratio", "1.5"], "--read-ratio must be"),
    (["range", "--range-limit", "0"], "--range-limit must be"),
    (["put", "--target", "nobody"], "invalid choice"),
    (["put", "--timeout", "0"], "--timeout must be"),
    (["put", "--attempt-timeout", "6"], "--attempt-timeout must be"),
    (["put", "--serializable"], "--serializable applies"),
    (["put", "--plot", "out.svg"], ".png"),
    (["put", "--endpoints", "nonsense"], "--endpoints"),
    (["get", "--kill-leader", "2", "-d", "10"], "write unavailability"),
    (["put", "--kill-leader", "5", "-d", "4"], "at least (kills + 1)"),
    (["put", "--kill-leader", "101"], "--kill-leader must be"),
    (["put", "--kill-interval", "0.1"], "--kill-interval must be"),
    (["put", "--kill-leader", "1", "-d", "5", "--pipeline"], "drop --pipeline"),
])
def test_usage_errors_exit_2_with_one_line(argv: list[str], message: str,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err


def test_plot_without_matplotlib_is_a_usage_error_naming_the_extra(capsys: pytest.CaptureFixture[str]) -> None:
    import importlib.util
    if importlib.util.find_spec("matplotlib") is not None:
        pytest.skip("matplotlib is installed here: --plot works")
    assert main(["put", "--plot", "out.png"]) == 2
    assert "jangada[bench]" in capsys.readouterr().err


def test_no_cluster_here_exits_1_and_says_how_to_start_one(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["put"]) == 1
    assert "python -m supervisor up 3" in capsys.readouterr().err


def test_every_run_is_bounded() -> None:
    parse = build_parser().parse_args
    default = options_from_args(parse(["put"]))
    assert (default.ops, default.duration) == (DEFAULT_OPS, DEFAULT_DURATION_CAP)
    timed = options_from_args(parse(["get", "-d", "5"]))
    assert (timed.ops, timed.duration) == (None, 5.0)
    both = options_from_args(parse(["put", "-n", "50", "-d", "5", "-p", "2", "-c", "3"]))
    assert (both.ops, both.duration, both.clients) == (50, 5.0, 6)
