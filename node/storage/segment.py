"""WAL segment files: their names, their preamble, and reading one back.

A segment is named ``<seq:016x>-<first_index:016x>.wal``; ``seq`` counts up from 0
with no holes (compaction only ever removes a prefix), and ``first_index`` is the index
the next entry had when the segment was created. A segment is born complete: its
preamble (HEADER, the newest SNAPSHOT marker, the current HARD_STATE) is written to a
``.tmp`` file, fsynced, renamed into place and the directory fsynced, so no segment is
ever seen without its header, and deleting older segments never loses the hard state
or the snapshot marker.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import msgpack

from .errors import ForeignSegment, RecordCorrupt, SegmentMissing
from .framing import BadRecord, Frame, TornTail, scan_frames
from .records import (
    FORMAT_VERSION,
    RECORD_KINDS,
    CoveredEntries,
    Record,
    RecordKind,
    SegmentHeader,
    SnapshotMarker,
    decode,
)

SUFFIX = ".wal"
TMP_SUFFIX = ".wal.tmp"
_NAME = re.compile(r"^([0-9a-f]{16})-([0-9a-f]{16})\.wal$")


@dataclass(frozen=True, slots=True, order=True)
class SegmentName:
    seq: int
    first_index: int

    @property
    def filename(self) -> str:
        return f"{self.seq:016x}-{self.first_index:016x}{SUFFIX}"


@dataclass(frozen=True, slots=True)
class Identity:
    """Whose log this is: every segment header must name exactly this."""

    cluster_id: str
    node_id: int


def parse_name(filename: str) -> SegmentName | None:
    match = _NAME.match(filename)
    if match is None:
        return None
    return SegmentName(int(match.group(1), 16), int(match.group(2), 16))


def find_segments(directory: Path) -> list[tuple[SegmentName, Path]]:
    """Every segment file in ``directory``, in seq order, unchecked."""
    return sorted((name, path) for path in directory.iterdir() if (name := parse_name(path.name)) is not None)


def first_missing(found: list[tuple[SegmentName, Path]]) -> tuple[int, Path] | None:
    """The first seq missing between two segments, and the segment after the hole."""
    for (before, _), (after, path) in zip(found, found[1:]):
        if after.seq != before.seq + 1:
            return before.seq + 1, path
    return None


def list_segments(directory: Path) -> list[tuple[SegmentName, Path]]:
    """Segments in seq order. Raises SegmentMissing if the seqs are not consecutive:
    compaction removes only a prefix, so a hole means a file was lost."""
    found = find_segments(directory)
    missing = first_missing(found)
    if missing is not None:
        seq, path = missing
        raise SegmentMissing(path, 0, f"segment seq {seq} ({seq:016x}-*.wal) is missing before this one")
    return found


@dataclass(frozen=True, slots=True)
class SegmentRead:
    """One segment's decoded records, each with its byte offset, and how it ended."""

    path: Path
    name: SegmentName
    records: list[tuple[int, Record]]
    torn: TornTail | None
    valid_end: int


@dataclass(frozen=True, slots=True)
class SegmentScan:
    """One segment split into CRC-checked frames, its header checked, nothing else
    decoded yet: recovery looks at every segment's snapshot markers before it
    decodes any entries (records.CoveredEntries)."""

    path: Path
    name: SegmentName
    frames: list[Frame]
    torn: TornTail | None
    valid_end: int

    def markers(self) -> list[SnapshotMarker]:
        return [record for frame in self.frames if frame.kind == RecordKind.SNAPSHOT
                and isinstance(record := _decode_located(self.path, frame.offset, frame.kind, frame.payload),
                               SnapshotMarker)]

    def decode(self, covered: CoveredEntries | None = None) -> SegmentRead:
        """The records, with the entry batches `covered` covers left unread."""
        records = [(frame.offset, _decode_located(self.path, frame.offset, frame.kind, frame.payload, covered))
                   for frame in self.frames]
        return SegmentRead(self.path, self.name, records, self.torn, self.valid_end)


def scan_segment(path: Path, name: SegmentName, identity: Identity, *, is_last: bool) -> SegmentScan:
    """Read, split and check one segment. Only the last segment may end in a torn tail."""
    scan = scan_frames(path.read_bytes(), is_last=is_last, valid_kinds=RECORD_KINDS)
    if isinstance(scan.end, BadRecord):
        raise RecordCorrupt(path, scan.end.offset, scan.end.reason)
    _check_header(path, name, identity, scan.frames)
    torn = scan.end if isinstance(scan.end, TornTail) else None
    return SegmentScan(path, name, scan.frames, torn, scan.valid_end)


def read_segment(path: Path, name: SegmentName, identity: Identity, *, is_last: bool) -> SegmentRead:
    """Read, check and decode one segment. Only the last segment may end in a torn tail."""
    return scan_segment(path, name, identity, is_last=is_last).decode()


def _decode_located(path: Path, offset: int, kind: int, payload: bytes,
                    covered: CoveredEntries | None = None) -> Record:
    try:
        return decode(kind, payload, covered)
    except (ValueError, TypeError, IndexError, msgpack.UnpackException) as exc:
        # The CRC matched, so these are the bytes we wrote: a format bug or a
        # deliberate forgery. Either way, not something to skip.
        raise RecordCorrupt(path, offset, f"undecodable {RecordKind(kind).name} payload: {exc}") from exc


def _check_header(path: Path, name: SegmentName, identity: Identity, frames: list[Frame]) -> None:
    if not frames:
        # The preamble is written before the rename, so even a torn last segment has it.
        raise RecordCorrupt(path, 0, "segment has no header record")
    first = frames[0]
    header = _decode_located(path, first.offset, first.kind, first.payload)
    if not isinstance(header, SegmentHeader):
        raise RecordCorrupt(path, first.offset, f"first record is {type(header).__name__}, not a segment header")
    expected = SegmentHeader(identity.cluster_id, identity.node_id, name.seq, name.first_index, FORMAT_VERSION)
    if header != expected:
        raise ForeignSegment(path, first.offset, f"header says {_describe(header)}, expected {_describe(expected)}")
    for frame in frames[1:]:
        if frame.kind == RecordKind.HEADER:
            raise RecordCorrupt(path, frame.offset, "a second segment header inside the segment")


def _describe(header: SegmentHeader) -> str:
    return (
        f"cluster={header.cluster_id!r} node={header.node_id} version={header.version} "
        f"seq={header.seq} first_index={header.first_index}"
    )
