"""Decoding results: a client reads these bytes from whatever answers on a
node's port, so anything malformed is a ResultDecodeError (the client turns it
into UnexpectedReply), never another exception and never a half-built value."""
from __future__ import annotations

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cluster.kv import InvalidCommand, ResultDecodeError, decode_result

BAD = [
    b"",
    b"\xc1",  # never-used msgpack byte
    b"\x93\x01\x02",  # truncated array
    msgpack.packb(7),
    msgpack.packb([]),
    msgpack.packb([99, 1]),  # unknown tag
    msgpack.packb([1, "3", None]),  # str revision
    msgpack.packb([1, -1, None]),  # negative revision
    msgpack.packb([1, 3]),  # missing field
    msgpack.packb([2, 3, [[b"k", b"v", 1, 1, 1]], 1, False]),  # a kv of 5 fields
    msgpack.packb([2, 3, [["k", b"v", 1, 1, 1, 0]], 1, False]),  # str key
    msgpack.packb([2, 3, [], 0, 0]),  # int for bool
    msgpack.packb([4, 3, True, [[99]]]),  # a bad nested response
    msgpack.packb([11, 3, 9, 5, 2, ["a"]]),  # str lease key
    msgpack.packb([0, 99, "x"]),  # unknown error tag
    msgpack.packb([0, 3, "x"]),  # error with the wrong fields
    msgpack.packb([1, 3, None], use_bin_type=False) + b"\x00",  # trailing bytes
]


@pytest.mark.parametrize("data", BAD)
def test_malformed_result_bytes_raise_result_decode_error(data: bytes) -> None:
    with pytest.raises(ResultDecodeError):
        decode_result(data)


def test_a_result_decode_error_says_what_is_wrong() -> None:
    with pytest.raises(ResultDecodeError) as caught:
        decode_result(msgpack.packb([99, 1]))
    assert str(caught.value) == "malformed result: unknown result tag 99"
    # Whoever reads results back from a snapshot handles it as any malformed bytes.
    assert isinstance(caught.value, InvalidCommand)


@settings(max_examples=200)
@given(st.binary(max_size=64))
def test_random_bytes_decode_or_raise_result_decode_error(data: bytes) -> None:
    try:
        decode_result(data)
    except ResultDecodeError:
        pass


msgpack_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.binary(max_size=8)
    | st.text(max_size=4) | st.floats(allow_nan=False),
    lambda inner: st.lists(inner, max_size=6),
    max_leaves=20,
)


@settings(max_examples=200)
@given(st.integers(0, 13), st.lists(msgpack_values, max_size=7))
def test_msgpack_of_any_shape_decodes_or_raises_result_decode_error(tag, rest) -> None:  # type: ignore[no-untyped-def]
    try:
        decode_result(msgpack.packb([tag, *rest]))
    except ResultDecodeError:
        pass
