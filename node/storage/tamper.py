"""Silent corruption on purpose, for tests and drills of the corruption checks
(node/corruption_check.py): change bytes inside a node's WAL records *and*
recompute their CRCs, so the node's own checks (framing.py's header check and
record CRC) find nothing wrong and it replays a state that differs from its
peers'. Only a comparison between members can then see it -- which is what the
checks are for.

This is the one place outside the WAL's own writer that writes frames: it lives
here so that the framing stays private to node/storage. Never run it on a
member whose process is running (the data directory's lock is taken).
"""
from __future__ import annotations

import os
from pathlib import Path

from .dir_lock import lock_data_dir
from .framing import encode_frame, scan_frames
from .records import RECORD_KINDS, RecordKind
from .segment import list_segments


def rewrite_wal_bytes(data_dir: Path, old: bytes, new: bytes) -> int:
    """Replace every `old` by `new` (the same length: no offset moves) inside the
    payloads of the ENTRIES records of `data_dir`'s WAL, each record re-framed
    with a valid CRC; returns how many records changed. Raises ValueError if the
    lengths differ, and FileNotFoundError without a WAL."""
    if len(old) != len(new) or not old:
        raise ValueError("old and new must be non-empty and of the same length")
    changed = 0
    lock = lock_data_dir(data_dir)
    try:
        segments = list_segments(data_dir / "wal")
        if not segments:
            raise FileNotFoundError(f"no WAL segment under {data_dir / 'wal'}")
        for index, (_, path) in enumerate(segments):
            changed += _rewrite_segment(path, old, new, is_last=index == len(segments) - 1)
    finally:
        os.close(lock)
    return changed


def _rewrite_segment(path: Path, old: bytes, new: bytes, is_last: bool) -> int:
    data = bytearray(path.read_bytes())
    scan = scan_frames(bytes(data), is_last=is_last, valid_kinds=RECORD_KINDS)
    changed = 0
    for frame in scan.frames:
        if frame.kind != RecordKind.ENTRIES or old not in frame.payload:
            continue
        framed = encode_frame(frame.kind, frame.payload.replace(old, new))
        data[frame.offset:frame.offset + len(framed)] = framed
        changed += 1
    if changed:
        path.write_bytes(bytes(data))
    return changed
