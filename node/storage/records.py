"""The typed records a WAL holds, and their msgpack payloads.

Payloads are msgpack arrays (not maps): the WAL is written on every append, so field
names would be pure overhead; the segment header's format version says how to read
everything after it.
"""
from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, fields
from enum import IntEnum
from itertools import count
from typing import Sequence, cast

import msgpack

from node.raft.types import ConfState, Entry, EntryKind, HardState, Index, SnapshotMeta, Term

#: Bumped whenever a payload layout changes; a segment of another version is refused.
FORMAT_VERSION = 1

_ENTRY_KINDS = tuple(EntryKind)


class RecordKind(IntEnum):
    HEADER = 1  # first record of every segment: who wrote it and where it fits
    ENTRIES = 2  # a batch of consecutive entries; overwrites any suffix from its first
    HARD_STATE = 3  # term, vote, commit
    SNAPSHOT = 4  # the commit point of a snapshot file (written after the file)


RECORD_KINDS = frozenset(int(kind) for kind in RecordKind)


@dataclass(frozen=True, slots=True)
class SegmentHeader:
    """Names the writer and the segment's place in the log, so a segment copied from
    another node or cluster, or renamed out of order, is refused on open."""

    cluster_id: str
    node_id: int
    seq: int
    first_index: int  # the index the next entry had when this segment was created
    version: int = FORMAT_VERSION


@dataclass(frozen=True, slots=True)
class SnapshotMarker:
    """Says "the snapshot at meta.index is committed, and its file hashes to checksum".

    Replaying a marker also applies Raft §7's rule for an installed snapshot: keep the
    log after it only if the log holds the snapshot's last entry with the same term.
    """

    meta: SnapshotMeta
    checksum: bytes


@dataclass(frozen=True, slots=True)
class EntryBatch:
    """A decoded ENTRIES record."""

    first_index: int
    entries: list[Entry]


Record = SegmentHeader | EntryBatch | HardState | SnapshotMarker


def _pack(value: object) -> bytes:
    return cast(bytes, msgpack.packb(value, use_bin_type=True))


def encode_header(header: SegmentHeader) -> bytes:
    return _pack([header.version, header.cluster_id, header.node_id, header.seq, header.first_index])


def encode_entries(entries: Sequence[Entry]) -> bytes:
    """Entries must be consecutive; stored as first index + a flat term/kind/data list."""
    flat: list[object] = []
    for entry in entries:
        flat += (entry.term, int(entry.kind), entry.data)
    return _pack([entries[0].index, flat])


def encode_hard_state(state: HardState) -> bytes:
    return _pack([state.term, state.vote, state.commit])


def encode_marker(marker: SnapshotMarker) -> bytes:
    meta = marker.meta
    # A joint configuration's fields follow the checksum (none for a simple one: the
    # record stays byte for byte what older nodes wrote and read).
    return _pack([meta.index, meta.term, list(meta.conf.voters), list(meta.conf.learners), marker.checksum,
                  *meta.conf.joint_fields()])


#: What stands in for an entry a recovery never uses (see `CoveredEntries`): one
#: shared object, so a covered batch costs a list of references, not decoding.
@dataclass(frozen=True, slots=True)
class CoveredEntries:
    """The entries a WAL replay will drop unread: those below the newest snapshot
    marker anywhere in the log (`newest`).

    Replay (replay.py) drops every entry at or below the newest snapshot, so their
    contents never matter, except in two places, which are decoded as ever: the
    entry at a marker's index (Raft's term check on the marker) and everything from
    the newest marker on. A covered batch still truncates the log where it starts,
    as any ENTRIES record does: it enters the replay as `count` COVERED
    placeholders, which the newest marker then drops. This skips building ~1.1 us
    of Entry per record for the part of the live segments a snapshot already holds
    (docs/performance.md, "Restart")."""

    newest: int
    marker_indexes: tuple[int, ...]  # ascending

    def covers(self, first: int, count: int) -> bool:
        last = first + count - 1
        if last >= self.newest:
            return False
        at = bisect_left(self.marker_indexes, first)
        return at == len(self.marker_indexes) or self.marker_indexes[at] > last


def peek_entries(payload: bytes) -> tuple[int, int] | None:
    """(first index, entry count) of an ENTRIES payload without decoding its entries,
    or None if it is not shaped as `encode_entries` writes it (then a full decode
    reports what is wrong)."""
    unpacker = msgpack.Unpacker(raw=False)
    unpacker.feed(payload)
    try:
        if unpacker.read_array_header() != 2:
            return None
        first = unpacker.unpack()
        flat = unpacker.read_array_header()
    except (ValueError, msgpack.UnpackException):
        return None
    if type(first) is not int or first < 1 or flat <= 0 or flat % 3:
        return None
    return first, flat // 3


def decode(kind: int, payload: bytes, covered: CoveredEntries | None = None) -> Record:
    """Decode a payload whose frame already passed its CRC. Raises ValueError (or a
    msgpack error) on a layout mismatch; the caller turns that into a located error.
    An ENTRIES payload that `covered` covers becomes COVERED placeholders, unread."""
    if covered is not None and kind == RecordKind.ENTRIES:
        shape = peek_entries(payload)
        if shape is not None and covered.covers(*shape):
            first, count = shape
            return EntryBatch(first, [COVERED] * count)
    fields = msgpack.unpackb(payload, raw=False, use_list=True)
    match kind:
        case RecordKind.HEADER:
            version, cluster_id, node_id, seq, first_index = fields
            return SegmentHeader(cluster_id, node_id, seq, first_index, version)
        case RecordKind.ENTRIES:
            return _decode_entries(fields)
        case RecordKind.HARD_STATE:
            term, vote, commit = fields
            return HardState(term, vote, commit)
        case RecordKind.SNAPSHOT:
            index, term, voters, learners, checksum, *joint = fields
            conf = ConfState.from_fields(voters, learners, joint)
            return SnapshotMarker(SnapshotMeta(index, term, conf), checksum)
    raise ValueError(f"unknown record kind {kind}")


def _decode_entries(fields: list[object]) -> EntryBatch:
    first_index, flat = fields
    if not isinstance(first_index, int) or not isinstance(flat, list):
        raise ValueError("entry batch is not [first_index, [term, kind, data, ...]]")
    if len(flat) % 3 or not flat:
        raise ValueError(f"entry batch has {len(flat)} fields, not a positive multiple of 3")
    entries = [
        _entry(term, index, data, kind)
        for term, kind, data, index in zip(flat[0::3], flat[1::3], flat[2::3], count(first_index))
    ]
    return EntryBatch(first_index, entries)


# Recovery builds millions of entries, and a frozen dataclass's __init__ costs one
# object.__setattr__ call per field: setting the slots directly halves recovery time.
# The field check below keeps this honest if Entry ever changes shape.
assert [f.name for f in fields(Entry)] == ["term", "index", "data", "kind"], "update _entry"
_new = object.__new__
_set_term, _set_index, _set_data, _set_kind = (getattr(Entry, name).__set__ for name in ("term", "index", "data", "kind"))


def _entry(term: int, index: int, data: bytes, kind: int) -> Entry:
    entry = _new(Entry)
    _set_term(entry, term)
    _set_index(entry, index)
    _set_data(entry, data)
    _set_kind(entry, _ENTRY_KINDS[kind])
    return entry



#: What stands in for an entry a recovery never uses (see `CoveredEntries`): one
#: shared object, so a covered batch costs a list of references, not decoding.
COVERED = Entry(term=Term(0), index=Index(0), data=b"covered by a snapshot: never read", kind=EntryKind.NORMAL)
