"""The node's address book (node/address_book.py), the membership requests of the
client protocol, run-time transport peers and `python -m node --join` arguments."""
from __future__ import annotations

import msgpack
import pytest
from hypothesis import given, settings, strategies as st

from cluster.protocol import (
    ConfChangeRequest, MembersReply, MembersRequest, ProtocolError, TransferRequest, decode_reply,
    decode_request, encode_reply, encode_request,
)
from node.__main__ import main
from node.localcluster import free_ports
from node.address_book import (
    Address, Membership, conf_change_for, decode_context, encode_context, parse_members_frame,
    split_members, with_members,
)
from node.raft import ConfState, Entry, EntryKind, Role, Status
from node.raft.types import ConfChange, ConfChangeKind, encode_conf_change
from node.transport import Transport, TransportOptions

A4 = Address("tcp://10.0.0.4:7104", "tcp://10.0.0.4:7204")
E4 = Address("tcp://10.0.0.4:7104", "tcp://10.0.0.4:7204", "http://10.0.0.4:7304", "http://10.0.0.4:7404")


def conf_entry(index: int, kind: ConfChangeKind, node_id: int, result: ConfState, context: bytes = b"") -> Entry:
    return Entry(1, index, encode_conf_change(ConfChange(kind, node_id, context, result)), EntryKind.CONF_CHANGE)


def book() -> Membership:
    initial = {i: Address(f"tcp://10.0.0.{i}:7100", f"tcp://10.0.0.{i}:7200") for i in (1, 2, 3)}
    return Membership(1, initial, ConfState((1, 2, 3)))


def test_an_add_learner_context_carries_the_addresses() -> None:
    assert decode_context(encode_context(A4)) == A4
    assert decode_context(encode_context(E4)) == E4
    only_grpc = Address(A4.peer, "", "http://h:1")
    assert decode_context(encode_context(only_grpc)) == only_grpc


def test_a_context_names_the_etcd_faces_only_when_set() -> None:
    """Old contexts (peer and client only) still decode, and a member without etcd
    faces gets exactly the bytes older nodes wrote."""
    old = msgpack.packb({"peer": A4.peer, "client": A4.client}, use_bin_type=True)
    assert encode_context(A4) == old and decode_context(old) == A4
    assert msgpack.unpackb(encode_context(Address(A4.peer, "", "", "http://h:2"))) == {
        "peer": A4.peer, "client": "", "gateway": "http://h:2"}


def test_a_member_without_a_client_address_is_an_address_but_one_without_a_peer_is_not() -> None:
    """etcd's MemberAdd names peer URLs only: client (and grpc) may be empty."""
    assert decode_context(msgpack.packb({"peer": A4.peer})) == Address(A4.peer, "")
    assert decode_context(msgpack.packb({"peer": A4.peer, "client": ""})) == Address(A4.peer, "")
    assert decode_context(msgpack.packb({"peer": "", "client": A4.client})) is None
    assert decode_context(msgpack.packb({"client": A4.client})) is None


def test_contexts_stay_bounded() -> None:
    longest = Address(*("x" * 256 for _ in range(4)))
    assert decode_context(encode_context(longest)) == longest
    assert decode_context(msgpack.packb({"peer": A4.peer, "grpc": "x" * 257})) is None
    assert decode_context(msgpack.packb({"peer": A4.peer, "gateway": 7})) is None
    assert decode_context(msgpack.packb({"peer": A4.peer, "pad": "x" * 2000})) is None


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_a_context_of_garbage_is_no_address_and_never_raises(data: bytes) -> None:
    found = decode_context(data)
    assert found is None or found.peer


@pytest.mark.parametrize("data", [b"", msgpack.packb({"peer": 1, "client": "x"}), msgpack.packb(["a", "b"]),
                                  msgpack.packb({"peer": "x" * 300, "client": "y"})])
def test_a_malformed_context_is_no_address(data: bytes) -> None:
    assert decode_context(data) is None


def test_appended_conf_changes_make_a_member_reachable_before_they_commit() -> None:
    members = book()
    entry = conf_entry(5, ConfChangeKind.ADD_LEARNER, 4, ConfState((1, 2, 3), (4,)), encode_context(A4))
    members.on_appended([entry])
    assert members.address(4) == A4
    assert 4 not in members.applied and members.applied_conf == ConfState((1, 2, 3))
    members.on_applied(entry)
    assert members.applied[4] == A4 and members.applied_conf == ConfState((1, 2, 3), (4,))


def test_an_added_voter_is_reachable_at_append_an_update_takes_effect_when_applied() -> None:
    members = book()
    add = conf_entry(5, ConfChangeKind.ADD_VOTER, 4, ConfState((1, 2, 3, 4)), encode_context(E4))
    members.on_appended([add])
    assert members.address(4) == E4 and 4 not in members.applied
    members.on_applied(add)
    assert members.applied[4] == E4 and members.applied_conf == ConfState((1, 2, 3, 4))
    moved = Address("tcp://10.0.0.44:7104", "")
    update = conf_entry(6, ConfChangeKind.UPDATE, 4, ConfState((1, 2, 3, 4)), encode_context(moved))
    members.on_appended([update])
    assert members.address(4) == E4, "an uncommitted update may still be truncated"
    assert members.on_applied(update) is not None
    # etcd's MemberUpdate changes peer URLs: what the update leaves empty stays.
    assert members.address(4) == Address(moved.peer, E4.client, E4.grpc, E4.gateway)
    assert members.applied[4] == members.address(4)
    assert members.applied_conf == ConfState((1, 2, 3, 4))
    rows = {row["id"]: row for row in members.view(_status(members.applied_conf))["members"]}
    assert (rows[4]["peer"], rows[4]["grpc"], rows[4]["gateway"]) == (moved.peer, E4.grpc, E4.gateway)
    assert (rows[1]["grpc"], rows[1]["gateway"]) == ("", "")


def _status(conf: ConfState) -> Status:
    return Status(id=1, term=2, vote=1, commit=6, lead=1, role=Role.LEADER, last_index=6, applied=6,
                  snapshot_index=0, progress={}, voters=conf.voters, learners=conf.learners, conf_index=6)


def test_members_frames_carry_the_etcd_faces_and_old_frames_still_load() -> None:
    members = book()
    members.on_applied(conf_entry(5, ConfChangeKind.ADD_LEARNER, 4, ConfState((1, 2, 3), (4,)), encode_context(E4)))
    members.on_applied(conf_entry(6, ConfChangeKind.ADD_LEARNER, 5, ConfState((1, 2, 3), (4, 5)),
                                  encode_context(Address("tcp://h:5", ""))))
    conf = ConfState((1, 2, 3), (4, 5))
    frame = members.members_frame(conf)
    parsed = parse_members_frame(frame)
    assert parsed is not None and parsed[1][4] == E4 and parsed[1][5] == Address("tcp://h:5", "")
    rows = msgpack.unpackb(frame)[4]
    assert [len(r) for r in rows] == [3, 3, 3, 5, 3], "rows without etcd faces keep the old shape"
    old = msgpack.packb(["jangada-members", 1, [1, 2, 3], [4], [[1, "tcp://a:1", "tcp://a:2"],
                                                               [4, A4.peer, A4.client]]])
    assert parse_members_frame(old) == (ConfState((1, 2, 3), (4,)), {1: Address("tcp://a:1", "tcp://a:2"), 4: A4})
    assert parse_members_frame(msgpack.packb(["jangada-members", 1, [1], [], [[1, "p", "c", "g"]]])) is None


def test_the_members_frame_round_trips_and_is_the_same_on_every_replica() -> None:
    a, b = book(), book()
    b.learn({9: Address("tcp://x:1", "tcp://x:2")})  # heard of, not a member: not in the frame
    entry = conf_entry(5, ConfChangeKind.ADD_LEARNER, 4, ConfState((1, 2, 3), (4,)), encode_context(A4))
    for m in (a, b):
        m.on_applied(entry)
    conf = ConfState((1, 2, 3), (4,))
    assert a.members_frame(conf) == b.members_frame(conf)
    parsed = parse_members_frame(a.members_frame(conf))
    assert parsed is not None
    assert parsed[0] == conf and parsed[1][4] == A4 and sorted(parsed[1]) == [1, 2, 3, 4]


def test_a_snapshot_stream_leads_with_the_members_frame_and_older_ones_still_load() -> None:
    frame = book().members_frame(ConfState((1, 2, 3)))
    members, rest = split_members(with_members(frame, iter([b"sm1", b"sm2"])))
    assert members is not None and members[0] == ConfState((1, 2, 3))
    assert list(rest) == [b"sm1", b"sm2"]
    old, rest = split_members(iter([msgpack.packb(["jangada-kv", 1, 0, 0, 0]), b"sm2"]))
    assert old is None and len(list(rest)) == 2


def test_a_restored_snapshot_replaces_the_applied_membership() -> None:
    members = book()
    members.restore(ConfState((2, 3, 4)), {4: A4})
    assert members.applied_conf == ConfState((2, 3, 4)) and members.address(4) == A4


def test_client_requests_become_the_cores_changes() -> None:
    add = conf_change_for(ConfChangeRequest(1, "add-learner", 4, A4.peer, A4.client))
    assert add.kind is ConfChangeKind.ADD_LEARNER and decode_context(add.context) == A4
    assert conf_change_for(ConfChangeRequest(1, "promote", 4)).kind is ConfChangeKind.PROMOTE
    remove = conf_change_for(ConfChangeRequest(1, "remove", 2))
    assert (remove.kind, remove.node_id, remove.context) == (ConfChangeKind.REMOVE, 2, b"")
    voter = conf_change_for(ConfChangeRequest(1, "add-voter", 4, E4.peer, E4.client, E4.grpc, E4.gateway))
    assert voter.kind is ConfChangeKind.ADD_VOTER and decode_context(voter.context) == E4
    update = conf_change_for(ConfChangeRequest(1, "update", 2, "tcp://new:1"))
    assert update.kind is ConfChangeKind.UPDATE and decode_context(update.context) == Address("tcp://new:1", "")


@pytest.mark.parametrize("message", [
    MembersRequest(1), MembersRequest(2, True), TransferRequest(3, 2),
    ConfChangeRequest(4, "add-learner", 4, A4.peer, A4.client), ConfChangeRequest(5, "remove", 2),
    ConfChangeRequest(6, "add-voter", 4, E4.peer, E4.client, E4.grpc, E4.gateway),
    ConfChangeRequest(7, "add-learner", 4, A4.peer), ConfChangeRequest(8, "update", 4, A4.peer, "", E4.grpc),
])
def test_membership_requests_round_trip(message: object) -> None:
    assert decode_request(encode_request(message)) == message  # type: ignore[arg-type]


def test_a_members_reply_round_trips() -> None:
    reply = MembersReply(1, 2, {"voters": [1, 2], "members": [{"id": 1, "lag": None}]})
    assert decode_reply(encode_reply(reply)) == reply
    with_faces = MembersReply(1, 2, {"voters": [1], "members": [{"id": 1, "peer": "tcp://a:1", "client": "",
                                                                 "grpc": "http://a:3", "gateway": "http://a:4"}]})
    assert decode_reply(encode_reply(with_faces)) == with_faces


def test_conf_requests_name_the_etcd_faces_only_when_set_and_old_maps_decode() -> None:
    plain = msgpack.unpackb(encode_request(ConfChangeRequest(4, "add-learner", 4, A4.peer, A4.client)))
    assert "grpc" not in plain and "gateway" not in plain
    old = {"v": 1, "id": 9, "op": "conf", "change": "add-learner", "node": 4, "peer": A4.peer, "client": A4.client}
    assert decode_request(msgpack.packb(old)) == ConfChangeRequest(9, "add-learner", 4, A4.peer, A4.client)
    full = msgpack.unpackb(encode_request(ConfChangeRequest(4, "add-voter", 4, E4.peer, "", E4.grpc, E4.gateway)))
    assert (full["grpc"], full["gateway"], full["client"]) == (E4.grpc, E4.gateway, "")


@pytest.mark.parametrize("fields", [
    {"op": "conf", "change": "grow", "node": 4, "peer": "", "client": ""},
    {"op": "conf", "change": "add-learner", "node": 4, "peer": "", "client": ""},
    {"op": "conf", "change": "remove", "node": 0, "peer": "", "client": ""},
    {"op": "conf", "change": "remove", "node": 4},
    {"op": "conf", "change": "add-voter", "node": 4, "peer": "", "client": ""},
    {"op": "conf", "change": "update", "node": 4, "peer": "10.0.0.4:7104", "client": ""},
    {"op": "conf", "change": "add-learner", "node": 4, "peer": "tcp://a:1", "client": "a:2"},
    {"op": "conf", "change": "add-voter", "node": 4, "peer": "tcp://a:1", "client": "", "grpc": "tcp://a:3"},
    {"op": "conf", "change": "add-voter", "node": 4, "peer": "tcp://a:1", "client": "", "gateway": 7},
    {"op": "conf", "change": "update", "node": 4, "peer": "tcp://a:1", "client": "", "grpc": "http://" + "x" * 300},
    {"op": "transfer", "to": -1}, {"op": "transfer"}, {"op": "members", "leader": 1},
])
def test_malformed_membership_requests_are_protocol_errors(fields: dict[str, object]) -> None:
    with pytest.raises(ProtocolError):
        decode_request(msgpack.packb({"v": 1, "id": 1, **fields}))


def test_transport_peers_come_and_go_at_run_time() -> None:
    peer, client, other = free_ports(3)
    transport = Transport(1, f"tcp://127.0.0.1:{peer}", f"tcp://127.0.0.1:{client}", {}, TransportOptions())
    try:
        assert transport.send_peer(2, b"frame") is False  # nobody to send to: refused, not raised
        transport.add_peer(2, f"tcp://127.0.0.1:{other}")
        transport.add_peer(2, f"tcp://127.0.0.1:{other}")  # same address: kept
        assert list(transport.dealers) == [2] and transport.addresses[2].endswith(str(other))
        transport.remove_peer(2)
        transport.remove_peer(2)
        assert transport.dealers == {} and transport.send_peer(2, b"frame") is False
    finally:
        transport.close()


@pytest.mark.parametrize("argv, field", [
    (["--id", "2", "--join", "", "--peer", "tcp://127.0.0.1:1", "--client", "tcp://127.0.0.1:2"], "--join"),
    (["--id", "4", "--join", ""], "--peer"),
    (["--id", "4", "--join", "", "--peer", "tcp://127.0.0.1:1", "--client", "nope"], "--client"),
    (["--id", "1", "--peer", "tcp://127.0.0.1:1"], "--peer/--client"),
    (["--id", "1", "--grpc", "http://127.0.0.1:1"], "--grpc/--gateway"),
    (["--id", "4", "--join", "", "--peer", "tcp://127.0.0.1:1", "--client", "tcp://127.0.0.1:2",
      "--grpc", "127.0.0.1:3"], "--grpc"),
    (["--id", "4", "--join", "", "--peer", "tcp://127.0.0.1:1", "--client", "tcp://127.0.0.1:2",
      "--gateway", "tcp://127.0.0.1:3"], "--gateway"),
])
def test_join_arguments_are_checked_and_exit_2(argv: list[str], field: str,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", "cluster-3", *argv]) == 2
    assert field in capsys.readouterr().err


def test_core_refusals_become_client_codes() -> None:
    from cluster.protocol import ErrorCode
    from node.address_book import refusal_code
    from node.raft import InvalidRequest, LeadershipTransferInProgress
    from node.raft.errors import ConfChangePending, InvalidConfChange, LeaderNotReady, LearnerLagging
    assert refusal_code(LearnerLagging(4, 2000, 1000)) is ErrorCode.REFUSED
    for busy in (ConfChangePending(), LeaderNotReady(), LeadershipTransferInProgress()):
        assert refusal_code(busy) is ErrorCode.BUSY
    for invalid in (InvalidConfChange("cannot remove node 9: not a member"), InvalidRequest("a learner")):
        assert refusal_code(invalid) is ErrorCode.INVALID_REQUEST
