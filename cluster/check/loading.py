"""Reading a history file in either supported format, detected from its first line."""
from __future__ import annotations

from pathlib import Path
from typing import Literal

from .history import HistoryError, Operation, read_jsonl
from .jepsen import looks_like_jepsen, read_jepsen

Format = Literal["auto", "jsonl", "jepsen"]


def load_history(path: Path, fmt: Format = "auto") -> list[Operation]:
    """Parse `path`; `HistoryError` (with the line number) if it cannot be read.

    "auto" picks JSON lines if the first non-blank line starts with `{`, Jepsen if
    it is a Jepsen `INFO jepsen.util - ...` line.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        line = path.read_bytes()[:err.start].count(b"\n") + 1
        raise HistoryError(line, "not UTF-8 text", str(path)) from None
    lines = text.splitlines()
    if fmt == "auto":
        fmt = detect_format(lines, str(path))
    if fmt == "jsonl":
        return read_jsonl(lines, source=str(path))
    return read_jepsen(lines, source=str(path))


def detect_format(lines: list[str], source: str = "") -> Format:
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        if line.lstrip().startswith("{"):
            return "jsonl"
        if looks_like_jepsen(line):
            return "jepsen"
        raise HistoryError(number, "neither a JSON-lines operation nor a Jepsen log line", source)
    return "jsonl"  # empty: an empty history, trivially linearizable
