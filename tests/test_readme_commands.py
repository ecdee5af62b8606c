"""Every `python -m MODULE` the README names exists and answers --help: no command
shown to a newcomer may be stale. (The quick start itself runs verbatim in
tests/supervisor/test_readme.py.)"""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
MODULES = sorted(set(re.findall(r"python(?:3(?:\.11)?)? -m ([A-Za-z_][\w.]*)", README.read_text()))
             - {"pip", "pytest"})


def test_the_readme_names_the_main_commands() -> None:
    assert {"supervisor", "cluster", "node.simulation", "cluster.bench"} <= set(MODULES)


@pytest.mark.parametrize("module", MODULES)
def test_readme_command_answers_help(module: str, tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", module, "--help"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"python -m {module} --help: {done.stderr}"
    assert "usage:" in done.stdout.lower()
