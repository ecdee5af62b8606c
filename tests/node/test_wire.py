"""The peer wire codec: every message round-trips; bad bytes raise WireError only."""
from __future__ import annotations

import msgpack
import pytest
from hypothesis import given, settings, strategies as st

from node.raft import (
    AppendEntries, AppendEntriesResponse, ConfState, Entry, EntryKind, Heartbeat, HeartbeatResponse,
    InstallSnapshot, ReadIndexRequest, ReadIndexResponse, RequestVote, RequestVoteResponse, Snapshot,
    SnapshotMeta, TimeoutNow,
)
from node.wire import (
    AlarmReport, HashKVRequest, HashKVResponse, HashOutcome, SnapshotChunk, SnapshotChunkAck, WireError, decode, encode,
)

CLUSTER = "c1"
LIMIT = 1 << 20
META = SnapshotMeta(10, 3, ConfState((1, 2, 3), (4,)))

EVERY_MESSAGE = [
    RequestVote(1, 2, 5, 10, 4, pre_vote=True, transfer=False),
    RequestVote(1, 2, 5, 10, 4, pre_vote=False, transfer=True),
    RequestVoteResponse(2, 1, 5, True, pre_vote=True),
    AppendEntries(1, 3, 5, 9, 4, (Entry(5, 10, b"x"), Entry(5, 11, b"", EntryKind.NOOP)), 9),
    AppendEntries(1, 3, 5, 9, 4, (), 9),
    AppendEntriesResponse(3, 1, 5, False, 9, hint_index=7, hint_term=2),
    Heartbeat(1, 2, 5, 8, b"ctx"),
    HeartbeatResponse(2, 1, 5, b""),
    InstallSnapshot(1, 2, 5, Snapshot(META, None)),
    TimeoutNow(1, 2, 5),
    ReadIndexRequest(2, 1, 5, b"\x00\x01"),
    ReadIndexResponse(1, 2, 5, b"\x00\x01", 42),
    SnapshotChunk(1, 2, 5, META, 4096, b"bytes", True),
    SnapshotChunkAck(2, 1, 5, 10, 8192),
    HashKVRequest(1, 2, 7, 42),
    HashKVResponse(2, 1, 7, 42, HashOutcome.OK, 2**32 - 1, 50, 10),
    HashKVResponse(2, 1, 7, 42, HashOutcome.BEHIND),
    AlarmReport(3, 1, 2),
]


@pytest.mark.parametrize("message", EVERY_MESSAGE, ids=lambda m: type(m).__name__)
def test_every_message_round_trips(message: object) -> None:
    assert decode(encode(CLUSTER, message), CLUSTER, LIMIT) == message  # type: ignore[arg-type]


def _kind(data: bytes) -> str:
    with pytest.raises(WireError) as info:
        decode(data, CLUSTER, LIMIT)
    return info.value.kind


def test_envelope_problems_are_classified() -> None:
    good = msgpack.unpackb(encode(CLUSTER, TimeoutNow(1, 2, 5)))
    assert _kind(b"\xc1") == "malformed"
    assert _kind(msgpack.packb({"a": 1})) == "malformed"
    assert _kind(msgpack.packb([2, *good[1:]])) == "version"
    assert _kind(msgpack.packb([1, "other", *good[2:]])) == "wrong-cluster"
    assert _kind(msgpack.packb([1, CLUSTER, 1, 99, []])) == "unknown-type"
    assert _kind(msgpack.packb([1, CLUSTER, 1, True, []])) == "unknown-type"
    assert _kind(msgpack.packb([1, CLUSTER, 1, 8, [2]])) == "bad-field"
    assert _kind(msgpack.packb([1, CLUSTER, -1, 8, [2, 5]])) == "bad-field"
    assert _kind(msgpack.packb([1, CLUSTER, 1, 8, [2, "5"]])) == "bad-field"
    assert _kind(msgpack.packb([1, CLUSTER, 2, 14, [1, 7, 42, 9, 0, 0, 0]])) == "bad-field"  # no such outcome
    with pytest.raises(WireError) as info:
        decode(b"x" * 100, CLUSTER, 10)
    assert info.value.kind == "oversized"


def test_entries_must_be_well_formed_and_contiguous() -> None:
    def append(entries: list[object]) -> bytes:
        return msgpack.packb([1, CLUSTER, 1, 3, [2, 5, 9, 4, entries, 9]])
    assert _kind(append([[5, 11, 0, b""]])) == "bad-field"  # gap after prev 9
    assert _kind(append([[5, 10, 7, b""]])) == "bad-field"  # unknown kind
    assert _kind(append([[0, 10, 0, b""]])) == "bad-field"  # term 0
    assert _kind(append([[5, 10, 0, "text"]])) == "bad-field"
    assert _kind(msgpack.packb([1, CLUSTER, 1, 7, [2, 5, [1, 1, [1], [1]]]])) == "bad-field"  # voter and learner


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_never_raise_anything_but_wire_error(data: bytes) -> None:
    try:
        decode(data, CLUSTER, LIMIT)
    except WireError:
        pass


_leaf = st.one_of(st.integers(-2**63, 2**64 - 1), st.booleans(), st.binary(max_size=8), st.text(max_size=4), st.none())
_values = st.recursive(_leaf, lambda children: st.lists(children, max_size=7), max_leaves=30)


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 15), _values)
def test_well_framed_envelopes_with_random_payloads_raise_only_wire_error(tag: int, payload: object) -> None:
    data = msgpack.packb([1, CLUSTER, 1, tag, payload if isinstance(payload, list) else [payload]])
    try:
        decode(data, CLUSTER, LIMIT)
    except WireError:
        pass
