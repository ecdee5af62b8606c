"""Record framing: how one record is laid out in a WAL segment, and how a segment's
bytes are split back into records.

Layout (little-endian), a 12-byte header then the payload::

    0  u32  payload length
    4  u8   record kind
    5  u8   reserved, always 0
    6  u16  header check: low 16 bits of crc32(bytes 0..6)
    8  u32  crc32 over bytes 0..8 followed by the payload
    12      payload

CRC: zlib.crc32 (IEEE polynomial). crc32c would be stronger on hardware with SSE4.2,
but the standard library has no crc32c; zlib.crc32 runs at GB/s in C, catches every
burst error up to 32 bits, and costs us no dependency.

Why a separate header check: the length decides where the next record starts. If a
flipped bit in a *middle* record's length made it point past the end of the file, a
reader that trusted the length would mistake acknowledged data for a torn tail and
drop it. With the check, a bad length is reported as corruption, not as a tail.

Theory of torn tails. Records are only ever appended, each append is one write() of
whole frames. The active (last) segment may have preallocated space after its data
(node/storage/wal.py: zeros, up to PREALLOCATE_BYTES); every other segment was cut to
its data when the next one was created, so there end-of-file is end-of-data.
A crash in the middle of a write can leave, at the very end of the *last* segment:
a partial header; a whole header whose payload runs past end-of-file; or, after a
power failure that persisted the new file size but only some of the sectors, a final
record with holes of zeros, followed by zeros. So, in the last segment only, with
``z`` the offset where the trailing run of zero bytes starts (``z`` = size if none),
a record at offset ``o`` that fails a check is a torn tail when

* its header is incomplete or bad and reaches into the zeros (``o + 12 > z``), or
* its header is good and its payload runs past end-of-file, or
* its header is good, its CRC fails, and nothing but zeros follows it (``end >= z``).

Anything else that fails a check is corruption: some valid-looking data follows the
bad record, so it cannot be the write that a crash interrupted.
"""
from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from typing import Iterable

HEADER = struct.Struct("<IBBHI")
HEADER_SIZE = HEADER.size  # 12
_CHECKED = struct.Struct("<IBB")
#: The reason of a tail that is nothing but zeros from a record boundary on: space
#: the WAL preallocated (node/storage/wal.py), or sectors a power failure lost.
ZERO_TAIL = "zero-filled tail"
#: A record larger than this is refused on write and treated as garbage on read.
MAX_PAYLOAD = 256 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Frame:
    """One decoded record: where it starts in its file, its kind and its payload."""

    offset: int
    kind: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class CleanEnd:
    """Every byte of the file belongs to a valid record."""


@dataclass(frozen=True, slots=True)
class TornTail:
    """The last segment ends in a partial or half-persisted record starting at
    ``offset``; ``dropped`` bytes (up to end-of-file) are not part of the log."""

    offset: int
    dropped: int
    reason: str


@dataclass(frozen=True, slots=True)
class BadRecord:
    """A record at ``offset`` fails its checks and is not a torn tail."""

    offset: int
    reason: str


ScanEnd = CleanEnd | TornTail | BadRecord


def _header_check(length: int, kind: int) -> int:
    return zlib.crc32(_CHECKED.pack(length, kind, 0)) & 0xFFFF


def encode_frame(kind: int, payload: bytes) -> bytes:
    """Frame one record. ``kind`` is 1..255 (0 is never valid, so zero fill is never
    mistaken for a record)."""
    if not 0 < kind < 256:
        raise ValueError(f"record kind out of range: {kind}")
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"record payload too large: {len(payload)} bytes")
    length = len(payload)
    head = _CHECKED.pack(length, kind, 0) + struct.pack("<H", _header_check(length, kind))
    crc = zlib.crc32(payload, zlib.crc32(head))
    return head + struct.pack("<I", crc) + payload


def encode_frames(records: Iterable[tuple[int, bytes]]) -> bytes:
    return b"".join(encode_frame(kind, payload) for kind, payload in records)


@dataclass(frozen=True, slots=True)
class Scan:
    """The result of splitting a file's bytes into records."""

    frames: list[Frame]
    end: ScanEnd

    @property
    def valid_end(self) -> int:
        """Offset just past the last valid record."""
        if isinstance(self.end, CleanEnd):
            last = self.frames[-1] if self.frames else None
            return last.offset + HEADER_SIZE + len(last.payload) if last else 0
        return self.end.offset


def scan_frames(data: bytes, *, is_last: bool, valid_kinds: frozenset[int]) -> Scan:
    """Split ``data`` (a whole segment) into frames.

    ``is_last``: only the last segment of the log may end in a torn tail; in any
    other segment every failure is corruption.
    """
    frames: list[Frame] = []
    view = memoryview(data)
    size = len(data)
    zeros_from = len(data.rstrip(b"\0"))
    offset = 0
    while offset < size:
        problem = _check_frame(data, view, offset, zeros_from, valid_kinds)
        if isinstance(problem, Frame):
            frames.append(problem)
            offset += HEADER_SIZE + len(problem.payload)
            continue
        reason, may_be_torn = problem
        if is_last and may_be_torn:
            return Scan(frames, TornTail(offset, size - offset, reason))
        return Scan(frames, BadRecord(offset, reason))
    return Scan(frames, CleanEnd())


def _check_frame(
    data: bytes, view: memoryview, offset: int, zeros_from: int, valid_kinds: frozenset[int]
) -> Frame | tuple[str, bool]:
    """The frame at ``offset``, or (why it is bad, whether it could be a torn tail).
    ``zeros_from``: where the trailing run of zero bytes starts."""
    size = len(data)
    if offset >= zeros_from:
        return ZERO_TAIL, True
    if size - offset < HEADER_SIZE:
        return "partial record header at end of file", True
    length, kind, reserved, check, crc = HEADER.unpack_from(data, offset)
    if reserved != 0 or check != _header_check(length, kind) or kind not in valid_kinds:
        return f"bad record header (kind={kind} length={length})", offset + HEADER_SIZE > zeros_from
    if length > MAX_PAYLOAD:
        return f"record length {length} exceeds the maximum", False
    end = offset + HEADER_SIZE + length
    if end > size:
        return f"record of {length} bytes runs past end of file", True
    head = view[offset : offset + 8]
    payload = view[offset + HEADER_SIZE : end]
    if zlib.crc32(payload, zlib.crc32(head)) != crc:
        # A failed CRC is a torn write only if nothing but zeros follows it: a
        # record in the middle was acknowledged once; losing it would be silent.
        return "crc mismatch", end >= zeros_from
    return Frame(offset, kind, bytes(payload))
