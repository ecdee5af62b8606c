"""`python -m cluster.check`: verdict lines, exit codes, unreadable input, timeline."""
from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cluster.check.__main__ import main
from cluster.check.history import save_jsonl

from .history_builder import get, history, info, put
from .test_jepsen_verdicts import TESTDATA

REPO = Path(__file__).resolve().parents[2]

STALE_READ = history(put(1, "x", 1, 0, 1), put(1, "x", 2, 2, 3), get(2, "x", 1, 4, 5),
                     put(1, "y", 7, 0, 1), get(2, "y", 7, 2, 3))
FINE = history(put(1, "x", 1, 0, 10, revision=2), put(2, "x", 2, 1, 9, revision=3),
               get(3, "x", 1, 11, 12, revision=3))


def _run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    return main(list(argv), out=out), out.getvalue()


def _save(tmp_path: Path, ops: list, name: str = "h.jsonl") -> Path:  # type: ignore[type-arg]
    path = tmp_path / name
    save_jsonl(ops, path)
    return path


def test_linearizable_history_exits_0(tmp_path: Path) -> None:
    code, out = _run(str(_save(tmp_path, FINE)))
    assert code == 0
    assert out.splitlines()[0] == "linearizable"
    assert "revision order: 0 regression(s)" in out


def test_not_linearizable_exits_1_and_prints_the_counterexample(tmp_path: Path) -> None:
    code, out = _run(str(_save(tmp_path, STALE_READ)))
    assert code == 1
    assert out.splitlines()[0] == "not linearizable"
    assert "key x: not linearizable" in out
    assert "could not place: #2 2:get(x) -> 1" in out
    assert "key y" not in out  # linearizable keys are only counted


def test_revision_regression_exits_1(tmp_path: Path) -> None:
    ops = history(put(1, "x", 1, 0, 1, revision=5), put(1, "x", 2, 2, 3, revision=4))
    code, out = _run(str(_save(tmp_path, ops)))
    assert code == 1
    assert out.splitlines()[0] == "linearizable"
    assert "revision order: 1 regression(s)" in out


def test_unreadable_line_exits_2_naming_the_line(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    path = _save(tmp_path, FINE)
    path.write_text(path.read_text() + '{"process": 1, "op": "put"\n')
    code, _ = _run(str(path))
    assert code == 2
    assert f"{path}:4: not JSON" in capsys.readouterr().err


def test_invalid_operation_exits_2_naming_the_line(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('\n{"process":1,"op":"frob","key":"x","invoke":0,"complete":1,'
                    '"outcome":"ok"}\n')
    assert _run(str(path))[0] == 2
    assert f"{path}:2: op must be one of put/get/delete/cas" in capsys.readouterr().err


def test_missing_file_and_foreign_format_exit_2(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(str(tmp_path / "absent.jsonl"))[0] == 2
    garbage = tmp_path / "garbage.txt"
    garbage.write_text("hello\n")
    assert _run(str(garbage))[0] == 2
    assert f"{garbage}:1: neither" in capsys.readouterr().err


def test_timeout_exits_3_unknown(tmp_path: Path) -> None:
    hard = history(*[info(put(i, "x", i, 0)) for i in range(14)],
                   *[get(100 + i, "x", i, 1 + 2 * i, 2 + 2 * i) for i in range(14)],
                   get(99, "x", -1, 100, 101))
    code, out = _run(str(_save(tmp_path, hard)), "--timeout", "0.000001")
    assert code == 3
    assert out.splitlines()[0] == "unknown"


def test_timeline_file_names_the_key_and_the_operations(tmp_path: Path) -> None:
    timeline = tmp_path / "out" / "timeline.html"
    timeline.parent.mkdir()
    code, out = _run(str(_save(tmp_path, STALE_READ)), "--timeline", str(timeline))
    assert code == 1 and f"timeline: {timeline}" in out
    page = timeline.read_text()
    assert page.startswith("<!DOCTYPE html>") and "<svg" in page
    assert "<code>x</code>" in page
    for text in ("put(x, 1)", "put(x, 2)", "get(x) -&gt; 1", "could not place", "not linearizable"):
        assert text in page, text
    assert "http://" not in page.replace("http://www.w3.org/2000/svg", "")  # no external assets


def test_jepsen_format_is_detected_and_forced(tmp_path: Path) -> None:
    log = TESTDATA / "etcd_002.log"
    assert _run(str(log))[0] == 0
    assert _run(str(log), "--format", "jepsen")[0] == 0
    assert _run(str(log), "--format", "jsonl")[0] == 2
    assert _run(str(TESTDATA / "etcd_000.log"), "--timeline", str(tmp_path / "t.html"))[0] == 1
    assert "register" in (tmp_path / "t.html").read_text()


def test_module_runs_from_any_directory(tmp_path: Path) -> None:
    path = _save(tmp_path, STALE_READ)
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    done = subprocess.run([sys.executable, "-m", "cluster.check", path.name], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, done.stderr
    assert done.stdout.startswith("not linearizable\n")
