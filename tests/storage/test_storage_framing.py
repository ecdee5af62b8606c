"""Record framing and payload codecs: round trips, and how damage is classified."""
from __future__ import annotations

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from node.raft.types import ConfState, Entry, EntryKind, HardState, SnapshotMeta
from node.storage.framing import HEADER_SIZE, BadRecord, CleanEnd, TornTail, encode_frame, scan_frames
from node.storage.records import (
    RECORD_KINDS,
    EntryBatch,
    SegmentHeader,
    SnapshotMarker,
    decode,
    encode_entries,
    encode_hard_state,
    encode_header,
    encode_marker,
)

KINDS = frozenset(range(1, 256))
records = st.lists(st.tuples(st.integers(1, 255), st.binary(max_size=300)), min_size=1, max_size=12)


def _frames(items: list[tuple[int, bytes]]) -> bytes:
    return b"".join(encode_frame(kind, payload) for kind, payload in items)


@given(records)
def test_framing_round_trips_any_records(items: list[tuple[int, bytes]]) -> None:
    scan = scan_frames(_frames(items), is_last=False, valid_kinds=KINDS)
    assert scan.end == CleanEnd()
    assert [(f.kind, f.payload) for f in scan.frames] == items


@given(records, st.data())
def test_a_cut_inside_the_final_record_is_a_torn_tail_that_drops_only_it(items, data) -> None:
    whole = _frames(items)
    last_start = len(whole) - HEADER_SIZE - len(items[-1][1])
    cut = data.draw(st.integers(last_start + 1, len(whole) - 1))
    zeros = data.draw(st.integers(0, 64))
    damaged = whole[:cut] + bytes(zeros)
    # A cut inside the final payload's trailing zero bytes that the zero fill gives
    # back is no damage at all: the record is whole again (found by hypothesis).
    assume(not damaged.startswith(whole))
    scan = scan_frames(damaged, is_last=True, valid_kinds=KINDS)
    assert isinstance(scan.end, TornTail)
    assert scan.end.offset == last_start and scan.end.dropped == cut + zeros - last_start
    assert [(f.kind, f.payload) for f in scan.frames] == items[:-1]


@given(records, st.data())
def test_the_same_cut_in_a_segment_that_is_not_the_last_is_corruption(items, data) -> None:
    whole = _frames(items)
    cut = data.draw(st.integers(len(whole) - HEADER_SIZE - len(items[-1][1]) + 1, len(whole) - 1))
    assert isinstance(scan_frames(whole[:cut], is_last=False, valid_kinds=KINDS).end, BadRecord)


@given(records.filter(lambda items: len(items) >= 2), st.data())
def test_a_flipped_byte_before_the_final_record_is_never_taken_for_a_torn_tail(items, data) -> None:
    whole = bytearray(_frames(items))
    last_start = len(whole) - HEADER_SIZE - len(items[-1][1])
    position = data.draw(st.integers(0, last_start - 1))
    whole[position] ^= data.draw(st.integers(1, 255))
    scan = scan_frames(bytes(whole), is_last=True, valid_kinds=KINDS)
    assert isinstance(scan.end, BadRecord)
    assert scan.end.offset <= position


def test_zero_fill_after_the_last_record_is_a_torn_tail() -> None:
    whole = _frames([(1, b"abc")])
    scan = scan_frames(whole + bytes(100), is_last=True, valid_kinds=KINDS)
    assert scan.end == TornTail(len(whole), 100, "zero-filled tail")


def test_garbage_after_the_last_record_is_corruption_not_a_tail() -> None:
    whole = _frames([(1, b"abc")])
    scan = scan_frames(whole + b"\x07" * 40, is_last=True, valid_kinds=KINDS)
    assert isinstance(scan.end, BadRecord) and scan.end.offset == len(whole)


entries_strategy = st.integers(1, 10**12).flatmap(
    lambda first: st.lists(
        st.tuples(st.integers(1, 2**63 - 1), st.binary(max_size=64), st.sampled_from(list(EntryKind))),
        min_size=1, max_size=20,
    ).map(lambda rows: [Entry(term, first + k, data, kind) for k, (term, data, kind) in enumerate(rows)])
)


@given(entries_strategy)
def test_entry_batches_round_trip(entries: list[Entry]) -> None:
    decoded = decode(2, encode_entries(entries))
    assert decoded == EntryBatch(entries[0].index, entries)


@given(st.integers(0, 2**63), st.integers(0, 2**31), st.integers(0, 2**63))
def test_hard_state_round_trips(term: int, vote: int, commit: int) -> None:
    assert decode(3, encode_hard_state(HardState(term, vote, commit))) == HardState(term, vote, commit)


@given(st.text(max_size=30), st.integers(1, 2**31), st.integers(0, 2**40), st.integers(1, 2**40))
def test_segment_header_round_trips(cluster: str, node: int, seq: int, first: int) -> None:
    header = SegmentHeader(cluster, node, seq, first)
    assert decode(1, encode_header(header)) == header


@settings(max_examples=50)
@given(st.integers(1, 2**40), st.integers(1, 2**40), st.lists(st.integers(1, 9), unique=True, max_size=5), st.binary(min_size=32, max_size=32))
def test_snapshot_marker_round_trips(index: int, term: int, voters: list[int], checksum: bytes) -> None:
    marker = SnapshotMarker(SnapshotMeta(index, term, ConfState(tuple(voters), ())), checksum)
    assert decode(4, encode_marker(marker)) == marker


def test_record_kinds_are_the_four_documented_ones() -> None:
    assert RECORD_KINDS == {1, 2, 3, 4}
