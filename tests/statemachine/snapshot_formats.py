"""Test support: older snapshot formats, made from a current stream, to check that
what older nodes wrote still loads (node/statemachine/snapshot_stream.py)."""
from __future__ import annotations

from typing import Any


def as_record_chunks(chunks: list[Any], version: int = 4) -> list[Any]:
    """Unpacked FORMAT 5 chunks as a FORMAT `version` (<= 4) stream holds them: the
    header's version, and each `kvcols` chunk as a `kvs` chunk of [sub, kv] records
    (the other chunks are the same in formats 4 and 5)."""
    out: list[Any] = [["jangada-kv", version, *chunks[0][2:]]]
    for chunk in chunks[1:]:
        if chunk[0] == "kvcols":
            subs, *columns = chunk[1:]
            out.append(["kvs", [[sub, list(kv)] for sub, kv in zip(subs, zip(*columns))]])
        else:
            out.append(chunk)
    return out
