"""`python -m cluster.bench scale` (cluster/bench/scale.py): its usage errors, its
report, and one small real fill of a jangada cluster (nothing asserts on speed)."""
from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from cluster.bench.cli import main
from cluster.bench.scale import render, row_text


@pytest.mark.parametrize("argv", [["scale", "--systems", "zookeeper"], ["scale", "--keys", "0"],
                                  ["scale", "--in-flight", "1000"]])
def test_usage_errors_exit_2_with_one_line(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("Error:") and err.count("\n") == 1


ROW = {"keys": 200000, "ops_per_s": 4489.0, "p50_ms": 10.9, "p99_ms": 66.0, "errors": 0, "interruptions": 1,
       "leader_changes": 1, "loop_turn_max_ms": {"1": 166.0, "2": 158.4}, "loop_turn_cpu_max_ms": {"1": 27.0},
       "rss_mib": {"1": 129.0, "2": 130.0}, "snapshot_mib": 19.5}


def test_a_row_names_every_figure_and_the_report_gives_rss_per_key() -> None:
    text = row_text(ROW)
    assert "200,000 keys" in text and "4,489 ops/s" in text and "leader changes 1" in text
    assert "[1: 166/27, 2: 158/0]" in text and "RSS MiB [1: 129, 2: 130]" in text
    report = render({"jangada": {"steps": [ROW], "follower_restart_s": 1.5, "cluster_restart_s": 4.0}})
    assert f"RSS per key (largest member): {130 * 2**20 / 200000:.0f} bytes" in report
    assert "follower restart: 1.5 s; whole-cluster restart: 4.0 s" in report


def test_a_small_fill_reports_every_step_and_the_members_loop_turns(tmp_path: Path) -> None:
    out = io.StringIO()
    figures = tmp_path / "scale.json"
    assert main(["scale", "--keys", "300", "--step", "150", "--in-flight", "8", "--systems", "jangada",
                 "--no-restart", "--root", str(tmp_path / "data"), "--json", str(figures)], out) == 0
    steps = json.loads(figures.read_text())["jangada"]["steps"]
    assert [s["keys"] for s in steps] == [150, 300] and all(s["errors"] == 0 for s in steps)
    assert all(set(s["loop_turn_max_ms"]) == {"1", "2", "3"} for s in steps)
    assert all(len(s["rss_mib"]) == 3 and min(s["rss_mib"].values()) > 0 for s in steps)
    assert "== jangada" in out.getvalue()
