"""The native protocol's multi-member change (a jangada extension) and the node's
ENTER_JOINT for it."""
from __future__ import annotations

import argparse

import pytest

from cluster.cli_member_change import NewMember, _new_member
from cluster.protocol import (
    ConfChangeRequest, JointChangeRequest, ProtocolError, decode_request, encode_request,
)
from node.address_book import decode_context, joint_change_for, singles
from node.raft import ConfChangeKind


def test_joint_request_round_trips_and_becomes_one_enter_joint() -> None:
    request = JointChangeRequest(7, (ConfChangeRequest(0, "add-voter", 6, "tcp://h:1", "tcp://h:2"),
                                     ConfChangeRequest(0, "promote", 4), ConfChangeRequest(0, "remove", 1)),
                                 auto_leave=True, token="t")
    assert decode_request(encode_request(request)) == request
    cc = joint_change_for(request)
    assert cc.kind is ConfChangeKind.ENTER_JOINT and cc.auto_leave
    assert [(c.kind, c.node_id) for c in singles(cc)] == [
        (ConfChangeKind.ADD_VOTER, 6), (ConfChangeKind.PROMOTE, 4), (ConfChangeKind.REMOVE, 1)]
    address = decode_context(cc.changes[0].context)
    assert address is not None and (address.peer, address.client) == ("tcp://h:1", "tcp://h:2")
    assert cc.changes[1].context == b""


@pytest.mark.parametrize("changes", [
    [], [{"change": "update", "node": 2, "peer": "tcp://h:1", "client": ""}],
    [{"change": "remove", "node": 2, "peer": "", "client": ""}] * 2,
    [{"change": "add-voter", "node": 3, "peer": "nope", "client": ""}], ["x"],
])
def test_malformed_joint_requests_are_refused(changes: list[object]) -> None:
    import msgpack
    data = msgpack.packb({"v": 1, "id": 1, "op": "joint", "changes": changes, "auto": True})
    with pytest.raises(ProtocolError):
        decode_request(data)


def test_member_change_add_flag() -> None:
    parse = _new_member(int, lambda a: f"tcp://{a}")
    assert parse("6=h:1,h:2") == NewMember(6, "tcp://h:1", "tcp://h:2")
    assert parse("6=h:1") == NewMember(6, "tcp://h:1", "")
    with pytest.raises(argparse.ArgumentTypeError):
        parse("6")
