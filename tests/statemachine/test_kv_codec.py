"""The command encoding: round trips, determinism, and hostile bytes that must
come back as an InvalidCommand result, never as an exception."""
from __future__ import annotations

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kv_driver import Driver
from kv_strategies import requests

from cluster.kv import (
    CloseSession,
    Command,
    Compact,
    CompactResponse,
    Compacted,
    Compare,
    DeleteRange,
    DeleteResponse,
    FutureRevision,
    InvalidCommand,
    KeyValue,
    LeaseGrant,
    LeaseGrantResponse,
    LeaseKeepAliveResponse,
    LeaseLeasesResponse,
    LeaseRevoke,
    LeaseRevokeResponse,
    LeaseTimeToLiveResponse,
    OpenSession,
    Put,
    PutResponse,
    Range,
    RangeResponse,
    Request,
    Response,
    SessionClosed,
    SessionOpened,
    Txn,
    TxnResponse,
    decode_command,
    decode_result,
    encode_command,
    encode_result,
)
from node.statemachine import StateMachine


@given(requests, st.integers(0, 2**63 - 1), st.integers(1, 2**63 - 1))
def test_every_request_round_trips_through_its_bytes(request, client_id, seq) -> None:  # type: ignore[no-untyped-def]
    seq = seq if client_id else 0
    data = encode_command(request, client_id, seq)
    assert decode_command(data) == Command(request, client_id, seq)
    assert encode_command(request, client_id, seq) == data  # deterministic


def test_session_requests_round_trip() -> None:
    for request in (OpenSession(), CloseSession(7)):
        assert decode_command(encode_command(request)).request == request


def test_put_encoding_is_the_documented_array() -> None:
    assert msgpack.unpackb(encode_command(Put(b"k", b"v", 0, True), 3, 4)) == [
        1, 3, 4, [1, b"k", b"v", 0, True]]


@pytest.mark.parametrize(
    "result",
    [
        PutResponse(3, KeyValue(b"a", b"1", 2, 3, 2, 0)),
        RangeResponse(4, (KeyValue(b"a", b"", 2, 3, 2, 9),), 5, True),
        TxnResponse(5, False, (PutResponse(5), RangeResponse(5, (), 0, False))),
        SessionOpened(9),
        SessionClosed(9, False),
        Compacted(3, 4),
        InvalidCommand("why"),
    ],
)
def test_results_round_trip(result: object) -> None:
    assert decode_result(encode_result(result)) == result  # type: ignore[arg-type]


def test_a_client_decodes_every_result_the_state_machine_produces() -> None:
    machine = StateMachine()
    index = 0

    def run(request: Request) -> Response:
        nonlocal index
        index += 1
        result = machine.apply(index, encode_command(request))
        return decode_result(encode_result(result))  # type: ignore[return-value]

    assert run(OpenSession()) == SessionOpened(1)
    assert run(Put(b"a", b"1")) == PutResponse(2)
    assert run(Put(b"a", b"2", prev_kv=True)) == PutResponse(3, KeyValue(b"a", b"1", 2, 2, 1))
    assert run(Range(b"a")) == RangeResponse(3, (KeyValue(b"a", b"2", 2, 3, 2),), 1, False)
    txn = run(Txn((Compare.value(b"a", "=", b"2"),), (Put(b"b", b"x"), Range(b"b"))))
    assert isinstance(txn, TxnResponse) and txn.succeeded and len(txn.responses) == 2
    assert run(DeleteRange(b"a", b"\0")) == DeleteResponse(5, 2)
    assert run(Compact(4)) == CompactResponse(5, 4)
    granted = run(LeaseGrant(5, 9))
    assert granted == LeaseGrantResponse(5, 9, 5)
    run(Put(b"k", b"v", lease=9))
    assert run(LeaseRevoke(9)) == LeaseRevokeResponse(7, 1)
    for result in (LeaseKeepAliveResponse(7, 9, 5), LeaseTimeToLiveResponse(7, 9, 5, 2, (b"a",)),
                   LeaseLeasesResponse(7, (1, 9))):
        assert decode_result(encode_result(result)) == result


BAD = [
    b"",
    b"\xc1",  # never-used msgpack byte
    b"\x93\x01\x02",  # truncated array
    msgpack.packb(7),
    msgpack.packb([2, 0, 0, [1, b"k", b"v", 0, False]]),  # unknown format
    msgpack.packb([1, 0, 0, [1, "k", b"v", 0, False]]),  # str key
    msgpack.packb([1, 0, 0, [1, b"k", b"v", -1, False]]),  # negative lease
    msgpack.packb([1, 0, 0, [1, b"k", b"v", 0, 1]]),  # int for bool
    msgpack.packb([1, 0, 0, [1, b"k", b"v", True, False]]),  # bool for int
    msgpack.packb([1, 0, 0, [1, b"k", b"v", 0]]),  # missing field
    msgpack.packb([1, 0, 0, [99]]),  # unknown tag
    msgpack.packb([1, 0, 0, [2, b"a", b"\0", 0, 2**64 - 1, False, False, 0, 0]]),  # > int64
    msgpack.packb([1, 2**63, 1, [1, b"k", b"v", 0, False]]),  # client id > int64
    msgpack.packb([1, 0, 0, [2, b"k", b"", 0, 0, False, False, 9, 0]]),  # bad sort target
    msgpack.packb([1, 0, 0, [2, b"k", b"", 0, 0, False, False, 0, 7]]),  # bad sort order
    msgpack.packb([1, 0, 0, [2, b"k", b"", 0, 0, False, False, True, 0]]),  # a bool is not a sort target
    msgpack.packb([1, 0, 0, [2, b"k", b"", -1, 0, False, False, 0, 0]]),  # negative revision
    msgpack.packb([1, 0, 0, [2, b"k", b"", 0, 2**63, False, False, 0, 0]]),  # limit over int64
    msgpack.packb([1, 0, 0, [2, b"k", b"", 0, 0, 1, False, 0, 0]]),  # an int is not keys_only
    msgpack.packb([1, 5, 0, [1, b"k", b"v", 0, False]]),  # client id without seq
    msgpack.packb([1, 0, 0, [4, [[b"k", 3, 0, 5]], [], []]]),  # int operand for VALUE
    msgpack.packb([1, 0, 0, [4, [], [[5, 3]], []]]),  # compact inside a txn
    msgpack.packb([1, 0, 0, {"tag": 1}]),
    msgpack.packb([1, 0, 0, [1, b"k", msgpack.ExtType(1, b"x"), 0, False]]),
    msgpack.packb([1, 0, 0, [1, b"k", b"v", 0, False]]) + b"\x00",  # trailing bytes
    b"\x91" * 5000 + b"\x00",  # deep nesting
    msgpack.packb([1, 0, 0, [1, b"k", b"v", 0, False]], use_bin_type=False),  # str, not bin
    # a session's put (the decoder's hot path) with one thing wrong
    msgpack.packb([1, 7, 3, [1, "k", b"v", 0, False]]),  # str key
    msgpack.packb([1, 7, 3, [1, b"k", "v", 0, False]]),  # str value
    msgpack.packb([1, 7, 3, [1, b"k", b"v", -1, False]]),  # negative lease
    msgpack.packb([1, 7, 3, [1, b"k", b"v", 2**63, False]]),  # lease over int64
    msgpack.packb([1, 7, 3, [1, b"k", b"v", True, False]]),  # bool for int
    msgpack.packb([1, 7, 3, [1, b"k", b"v", 0, 1]]),  # int for bool
    msgpack.packb([True, 7, 3, [1, b"k", b"v", 0, False]]),  # a bool is not the format
    msgpack.packb([1, True, 3, [1, b"k", b"v", 0, False]]),  # bool client id
    msgpack.packb([1, 7, False, [1, b"k", b"v", 0, False]]),  # bool seq
    msgpack.packb([1, 7, 0, [1, b"k", b"v", 0, False]]),  # session without seq
    msgpack.packb([1, 7, 2**63, [1, b"k", b"v", 0, False]]),  # seq over int64
    msgpack.packb([1, 7, -3, [1, b"k", b"v", 0, False]]),  # negative seq
    msgpack.packb([1, 7, 3, (1, b"k", b"v", 0, False), 5]),  # an int for the user
    msgpack.packb([1, 7, 3, [1, b"k", b"v", 0, False]]) + b"\x00",  # trailing bytes
    msgpack.packb([1, 7, 3, [1, b"k", b"v", 0, False]], use_bin_type=False),  # str, not bin
]


@pytest.mark.parametrize("data", BAD)
def test_malformed_command_bytes_give_an_invalid_command_result(data: bytes) -> None:
    kv = Driver()
    assert isinstance(kv.raw(data), InvalidCommand)
    assert kv.machine.revision == 1
    assert kv.machine.applied_index == 1


def test_the_largest_limit_and_revision_are_answered() -> None:
    kv = Driver()
    kv(Put(b"a", b"1"))
    assert kv(Range(b"a", b"\0", limit=2**63 - 1)).count == 1  # type: ignore[union-attr]
    assert kv(Range(b"a", revision=2**63 - 1)) == FutureRevision(2**63 - 1, 2)


def test_deeply_nested_txn_is_refused_without_recursing() -> None:
    op: list[object] = [4, [], [], []]
    for _ in range(200):
        op = [4, [], [op], []]
    assert isinstance(Driver().raw(msgpack.packb([1, 0, 0, op])), InvalidCommand)


@settings(max_examples=300)
@given(st.binary(max_size=64))
def test_random_bytes_never_raise(data: bytes) -> None:
    result = Driver().raw(data)
    assert result is not None


msgpack_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.binary(max_size=8)
    | st.text(max_size=4) | st.floats(allow_nan=False),
    lambda inner: st.lists(inner, max_size=6),
    max_leaves=20,
)


@settings(max_examples=100)
@given(st.integers(0, 7), msgpack_values, st.lists(msgpack_values, max_size=8))
def test_well_formed_msgpack_of_any_shape_never_raises(tag, first, rest) -> None:  # type: ignore[no-untyped-def]
    data = msgpack.packb([1, 0, 0, [tag, first, *rest]])
    kv = Driver()
    kv.raw(data)
    assert kv.machine.applied_index == 1


put_fields = st.one_of(msgpack_values, st.binary(max_size=8), st.integers(-2, 2**64 - 1), st.booleans())


@settings(max_examples=400)
@given(st.one_of(st.just(1), msgpack_values), st.one_of(st.integers(-1, 2**64 - 1), msgpack_values),
       st.one_of(st.integers(-1, 2**64 - 1), msgpack_values), st.one_of(st.just(1), st.booleans(), msgpack_values),
       put_fields, put_fields, put_fields, put_fields)
def test_the_put_fast_path_decodes_exactly_what_the_checked_path_does(  # type: ignore[no-untyped-def]
        form, client_id, seq, tag, key, value, lease, prev_kv) -> None:
    """decode_command's hot path (a session's plain put, checked at once) agrees with
    the field-by-field decoder on every shape near it: the same Command, or both an
    InvalidCommand."""
    from cluster.kv import codec
    data = msgpack.packb([form, client_id, seq, [tag, key, value, lease, prev_kv]], use_bin_type=True)

    def outcome(decode):  # type: ignore[no-untyped-def]
        try:
            return decode()
        except InvalidCommand:
            return InvalidCommand
    fast = outcome(lambda: decode_command(data))
    assert fast == outcome(lambda: codec._checked_command(msgpack.unpackb(data, raw=False)))
    if fast is not InvalidCommand:
        assert type(fast.request) is Put and type(fast.request.key) is bytes


def test_a_well_formed_session_put_decodes_on_the_fast_path() -> None:
    put = Put(b"k", b"v" * 100, 5, True)
    assert decode_command(encode_command(put, 7, 3)) == Command(put, 7, 3, "")
    assert decode_command(encode_command(Put(b"k", b"v"), 2**63 - 1, 2**63 - 1)) == Command(
        Put(b"k", b"v"), 2**63 - 1, 2**63 - 1, "")
