"""`python -m node`: --help explains, and a bad config fails naming the field."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from cluster.spec import load_spec
from node.__main__ import main


def test_help_explains_the_flags() -> None:
    out = subprocess.run([sys.executable, "-m", "node", "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0
    for flag in ("--config", "--id", "--data-dir", "exit status"):
        assert flag in out.stdout


def test_a_bad_field_is_named_and_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "c.toml"
    config.write_text(re.sub(r"heartbeat_ticks = \d+", "heartbeat_ticks = 99", load_spec("cluster-3").to_toml()))
    assert main(["--config", str(config), "--id", "1"]) == 2
    assert "timing.election_ticks" in capsys.readouterr().err


def test_an_unknown_id_is_named_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", "cluster-3", "--id", "9"]) == 2
    assert "--id: node 9 is not a member" in capsys.readouterr().err
