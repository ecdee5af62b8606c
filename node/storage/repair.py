"""The operator's explicit repair: cut the WAL at its first bad record.

Never run automatically. A node whose log lost acknowledged entries may have voted or
acknowledged appends it no longer remembers, which can break Raft's safety; after a
repair the safe course is to remove the member and add it back empty (as etcd
advises), or to be certain a quorum of other nodes holds everything it dropped.

Nothing is deleted: the bytes cut from the bad segment are kept in a copy of it,
``<segment>.broken``, and every later segment is renamed to ``<name>.broken``.
"""
from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from .dir_lock import lock_data_dir
from .durable import sync_dir, truncate_durably
from .errors import CorruptionError
from .segment import Identity, SegmentName, find_segments, first_missing, read_segment

log = logging.getLogger(__name__)

BROKEN_SUFFIX = ".broken"


@dataclass(frozen=True, slots=True)
class RepairReport:
    """What repair did. ``problem`` is None when the WAL had nothing to repair."""

    problem: str | None
    truncated: Path | None = None
    offset: int = 0
    bytes_dropped: int = 0
    set_aside: tuple[Path, ...] = ()

    def describe(self) -> str:
        if self.problem is None:
            return "WAL is intact: nothing to repair"
        lines = [f"problem: {self.problem}"]
        if self.truncated is not None:
            lines.append(f"truncated {self.truncated} at byte {self.offset} ({self.bytes_dropped} bytes dropped, "
                         f"original kept as {self.truncated.name}{BROKEN_SUFFIX})")
        lines += [f"set aside {path}" for path in self.set_aside]
        return "\n".join(lines)


def repair(data_dir: Path | str, cluster_id: str, node_id: int) -> RepairReport:
    """Truncate the WAL of ``data_dir`` at its first bad record (a CRC mismatch,
    garbage, a foreign header, or the segment after a missing one)."""
    data_dir = Path(data_dir)
    lock_fd = lock_data_dir(data_dir)
    try:
        return _repair_wal(data_dir / "wal", Identity(cluster_id, node_id))
    finally:
        os.close(lock_fd)


def _repair_wal(wal_dir: Path, identity: Identity) -> RepairReport:
    found = find_segments(wal_dir)
    missing = first_missing(found)
    usable = found if missing is None else found[: [p for _, p in found].index(missing[1])]
    for position, (name, path) in enumerate(usable):
        try:
            read_segment(path, name, identity, is_last=position == len(found) - 1)
        except CorruptionError as exc:
            return _cut(found[position:], exc.offset, str(exc))
    if missing is not None:
        seq, path = missing
        return _cut(found[len(usable):], 0, f"segment seq {seq} is missing before {path}")
    return RepairReport(problem=None)


def _cut(doomed: list[tuple[SegmentName, Path]], offset: int, problem: str) -> RepairReport:
    """Cut the first of ``doomed`` segments at ``offset`` (all of it if the header is
    what is bad) and set every later one aside."""
    (_, first), later = doomed[0], doomed[1:]
    set_aside = [_set_aside(path) for _, path in later]
    truncated: Path | None = None
    dropped = 0
    if offset == 0:
        set_aside.insert(0, _set_aside(first))
    else:
        dropped = first.stat().st_size - offset
        shutil.copy2(first, first.with_name(first.name + BROKEN_SUFFIX))
        truncate_durably(first, offset)
        truncated = first
    sync_dir(first.parent)
    report = RepairReport(problem, truncated, offset, dropped, tuple(set_aside))
    log.warning("WAL repaired by operator request:\n%s", report.describe())
    return report


def _set_aside(path: Path) -> Path:
    target = path.with_name(path.name + BROKEN_SUFFIX)
    os.replace(path, target)
    return target
