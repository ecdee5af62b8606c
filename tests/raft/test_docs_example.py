"""docs/raft-core.md shows the worked example exactly as the code produces it."""
from __future__ import annotations

from pathlib import Path

from node.simulation.example import transcript

DOC = Path(__file__).resolve().parents[2] / "docs" / "raft-core.md"


def test_worked_example_in_docs_matches_the_code() -> None:
    text = transcript()
    assert "leader lead=1" in text and "apply: 1/2 'x=1'" in text
    assert text in DOC.read_text(), "docs/raft-core.md is stale: paste `python -m node.simulation.example`"
