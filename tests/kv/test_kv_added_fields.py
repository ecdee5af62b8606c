"""Decoding the fields added after the format was pinned (Put's ignore_value and
ignore_lease, Compare's range_end): written only when not default, checked like
every other field (bad input is an InvalidCommand, never another exception)."""
from __future__ import annotations

import msgpack
import pytest

from cluster.kv import Command, Compare, CompareOp, CompareTarget, InvalidCommand, Put, Txn, decode_command
from cluster.kv.codec import encode_command


def command(request: list[object]) -> bytes:
    return msgpack.packb([1, 0, 0, request], use_bin_type=True)  # type: ignore[no-any-return]


def txn_with(compare: list[object]) -> bytes:
    return command([4, [compare], [], []])


def test_a_default_put_keeps_the_short_form() -> None:
    assert msgpack.unpackb(encode_command(Put(b"k", b"v")))[3] == [1, b"k", b"v", 0, False]


@pytest.mark.parametrize("put", [
    Put(b"k", b"", ignore_value=True), Put(b"k", b"v", 3, True, ignore_lease=True),
    Put(b"k", b"", ignore_value=True, ignore_lease=True),
])
def test_puts_with_ignore_flags_round_trip(put: Put) -> None:
    assert decode_command(encode_command(put, 4, 2)) == Command(put, 4, 2)


def test_a_compare_range_end_round_trips() -> None:
    txn = Txn((Compare(b"a", CompareTarget.MOD, CompareOp.LESS, 9, b"\0"),))
    assert decode_command(encode_command(txn)) == Command(txn)


@pytest.mark.parametrize("data", [
    command([1, b"k", b"", 0, False, 1, False]),  # an int is not a boolean
    command([1, b"k", b"", 0, False, True, None]),
    command([1, b"k", b"", 0, False, False, False]),  # the long form must carry a flag
    command([1, b"k", b"", 0, False, True]),  # six fields: neither form
    command([1, b"k", b"", 0, False, True, False, False]),
    command([1, "k", b"", 0, False, True, False]),
    txn_with([b"a", 1, 0, 3, "b"]),  # range_end must be bytes
    txn_with([b"a", 1, 0, 3, b""]),  # an empty range_end is left out, not written
    txn_with([b"a", 1, 0, 3, b"b", b"c"]),
    txn_with([b"a", 1, 0, 3, None]),
])
def test_malformed_added_fields_are_invalid_commands(data: bytes) -> None:
    with pytest.raises(InvalidCommand):
        decode_command(data)
