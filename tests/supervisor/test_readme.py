"""Every command the README shows, run verbatim as subprocesses (issue #5): the
set-up command's `supervisor up 5` in the foreground, then the quick-start lines."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.supervisor.harness import Session, clean_env, wait_for

README = Path(__file__).resolve().parents[2] / "README.md"


def _block(text: str, marker: str) -> list[str]:
    match = re.search(rf"<!-- {marker}:begin -->\s*```\n(.*?)```", text, re.S)
    assert match, f"README.md has no {marker} block"
    return [line for line in match.group(1).splitlines() if line.strip()]


def _readme() -> tuple[list[str], list[str]]:
    text = README.read_text()
    setup = re.search(r"## Set up.*?```\n(.*?)\n```", text, re.S)
    assert setup, "README.md has no set-up command"
    start = setup.group(1).split("&&")[-1].split()
    return start, _block(text, "readme:quickstart")


def test_readme_shows_the_quickstart_the_issue_asks_for() -> None:
    start, lines = _readme()
    assert start[1:] == ["-m", "supervisor", "up", "5"]
    assert lines[:3] == ["python -m cluster put greeting hello", "python -m cluster get greeting",
                         "python -m supervisor status"]
    assert "kill -9" in lines[3] and "--leader-pid" in lines[3]
    assert lines[4] == "python -m cluster get greeting"


@pytest.mark.timeout(180)
def test_readme_quickstart_runs_verbatim(session: Session) -> None:
    start, lines = _readme()
    # `python3.11` / `python` in the README are this interpreter (the venv's in CI).
    up = session.popen(start[2], *start[3:])
    wait_for(lambda: (s := session.state()) is not None and s.ready, 90, "the cluster to be ready")
    session.track()
    env = clean_env()
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    outputs = []
    for line in lines:
        if line.startswith("kill"):
            # Only ever a node this test started: check what the line will target.
            leader = wait_for(lambda: (r := session.supervisor("status", "--leader-pid")).returncode == 0
                              and int(r.stdout), 30, "a leader pid")
            assert leader in session.tracked
        if line == "python -m supervisor status":
            wait_for(lambda: session.supervisor("status").stdout.count("| leader ") == 1, 30,
                     "`status` to show one leader")
        done = subprocess.run(["bash", "-c", line], cwd=session.cwd, env=env, capture_output=True,
                              text=True, timeout=60)
        assert done.returncode == 0, f"{line!r} failed: {done.stdout}{done.stderr}"
        outputs.append(done.stdout)
    assert outputs[0] == "OK\n"
    assert outputs[1] == "greeting\nhello\n"
    assert "| leader " in outputs[2]
    assert outputs[4] == "greeting\nhello\n", "get after killing the leader"
    up.send_signal(signal.SIGINT)
    output, _ = up.communicate(timeout=60)
    assert up.returncode == 0, output
    assert session.alive() == []
