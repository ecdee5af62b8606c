"""`python -m cluster.bench cost` (cluster/bench/cost.py). Never asserts on speed:
only that each member's figures exist and are positive.

The full callgrind run of a cluster takes over a minute (three nodes under
valgrind): it runs with JANGADA_CALLGRIND_TESTS=1 (docs/performance.md, "Cost
per put"); the default suite reads a real callgrind dump of a tiny program and
runs the CPU-time half on a real cluster."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from cluster.bench import cost


def test_the_totals_line_of_a_dump_is_its_instruction_count() -> None:
    assert cost.callgrind_totals(b"events: Ir\nfn=main\n3 7\nsummary: 1200\ntotals: 1234\n") == 1234
    assert cost.callgrind_totals(b"events: Ir\nsummary: 99\n") == 99
    with pytest.raises(cost.CostError):
        cost.callgrind_totals(b"events: Ir\nfn=main\n")


@pytest.mark.skipif(cost.valgrind_missing() is not None, reason=f"{cost.valgrind_missing()}")
def test_a_real_callgrind_dump_parses_to_a_positive_count(tmp_path: Path) -> None:
    out = tmp_path / "callgrind.out"
    subprocess.run(["valgrind", "--tool=callgrind", "--dump-instr=no", f"--callgrind-out-file={out}",
                    f"--log-file={tmp_path / 'valgrind.log'}", sys.executable, "-S", "-c", "pass"],
                   check=True, timeout=120)
    assert cost.callgrind_totals(out.read_bytes()) > 1_000_000  # an interpreter's start-up at least


def test_the_cpu_half_reports_every_member_with_one_leader(tmp_path: Path) -> None:
    # Enough puts that a follower's CPU is above psutil's 10 ms clock tick (a follower
    # spends a few hundred us per put: 20 puts could read as 0.0).
    report = cost.measure(tmp_path, puts=300, idle_s=0.5, fsync="none", callgrind=False, native=True)
    assert sorted(p.role for p in report.processes) == ["follower", "follower", "leader"]
    assert report.processes[0].role == "leader"
    for p in report.processes:
        assert p.cpu_us_per_put is not None and p.cpu_us_per_put > 0
        assert p.idle_cores is not None and p.idle_cores >= 0
        assert p.instructions_per_put is None
    text = cost.render(report)
    assert "idle cluster:" in text and "leader" in text


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    from cluster.bench.cli import main
    assert main(["cost", "--puts", "0"]) == 2
    assert "--puts must be" in capsys.readouterr().err


@pytest.mark.skipif(os.environ.get("JANGADA_CALLGRIND_TESTS") != "1",
                    reason="a cluster under callgrind takes over a minute: set JANGADA_CALLGRIND_TESTS=1")
@pytest.mark.skipif(cost.valgrind_missing() is not None, reason=f"{cost.valgrind_missing()}")
def test_instructions_per_put_are_counted_for_every_member(tmp_path: Path) -> None:
    report = cost.measure(tmp_path, puts=3, idle_s=0.5, fsync="none", callgrind=True, native=False)
    assert sorted(p.role for p in report.processes) == ["follower", "follower", "leader"]
    for p in report.processes:
        assert p.instructions_per_put is not None and p.instructions_per_put > 0
        assert p.idle_instructions_per_s is not None and p.idle_instructions_per_s > 0
