"""A joining node asks members for addresses over the client wire protocol
(node/joining.py): against fake members on real loopback sockets, no cluster."""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator

import pytest
import zmq

from cluster.protocol import (
    ErrorCode, ErrorReply, MembersReply, MembersRequest, Reply, StatusReply, StatusRequest, decode_request,
    encode_reply,
)
from node.address_book import Address
from node.joining import ATTEMPT_S, JoinFailed, fetch_addresses

LOG = logging.getLogger("test-joining")
MEMBERS = {"node_id": 2, "members": [{"id": 1, "peer": "tcp://127.0.0.1:7101", "client": "tcp://127.0.0.1:7201"},
                                     {"id": 2, "peer": "tcp://127.0.0.1:7102", "client": "tcp://127.0.0.1:7202"},
                                     {"id": 3, "peer": "", "client": ""}]}
Answer = Callable[[StatusRequest | MembersRequest], Reply | None]


class FakeMember:
    """A ROUTER on a loopback port answering each request with `answer(request)` (None: silence)."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.context = zmq.Context()
        self.socket = self.context.socket(zmq.ROUTER)
        self.socket.setsockopt(zmq.LINGER, 0)
        port = self.socket.bind_to_random_port("tcp://127.0.0.1")
        self.endpoint = f"tcp://127.0.0.1:{port}"
        self.asked: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            if not self.socket.poll(20):
                continue
            identity, frame = self.socket.recv_multipart()
            request = decode_request(frame)
            assert isinstance(request, (StatusRequest, MembersRequest))
            self.asked.append(type(request).__name__)
            reply = self.answer(request)
            if reply is not None:
                self.socket.send_multipart([identity, encode_reply(reply)])

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.socket.close()
        self.context.term()


def a_member(cluster_id: str = "test", members: dict[str, object] | None = None) -> Answer:
    def answer(request: StatusRequest | MembersRequest) -> Reply:
        if isinstance(request, StatusRequest):
            return StatusReply(request.request_id, 2, {"cluster_id": cluster_id})
        return MembersReply(request.request_id, 2, dict(members or MEMBERS))
    return answer


@pytest.fixture
def members() -> Iterator[Callable[[Answer], FakeMember]]:
    started: list[FakeMember] = []

    def start(answer: Answer) -> FakeMember:
        started.append(FakeMember(answer))
        return started[-1]
    yield start
    for member in started:
        member.close()


@pytest.mark.timeout(20)
def test_a_member_tells_every_member_with_addresses(members: Callable[[Answer], FakeMember]) -> None:
    member = members(a_member())
    book = fetch_addresses([member.endpoint], "test", 5.0, LOG)
    assert book == {1: Address("tcp://127.0.0.1:7101", "tcp://127.0.0.1:7201"),
                    2: Address("tcp://127.0.0.1:7102", "tcp://127.0.0.1:7202")}
    assert member.asked == ["StatusRequest", "MembersRequest"]


@pytest.mark.timeout(20)
def test_a_member_of_another_cluster_is_not_believed(members: Callable[[Answer], FakeMember]) -> None:
    member = members(a_member(cluster_id="other"))
    with pytest.raises(JoinFailed, match=f"within 0.3 s \\(last: {member.endpoint} belongs to another cluster"):
        fetch_addresses([member.endpoint], "test", 0.3, LOG)
    assert "MembersRequest" not in member.asked


@pytest.mark.timeout(20)
def test_a_down_endpoint_is_skipped_quickly(members: Callable[[Answer], FakeMember]) -> None:
    """A refused connection costs about CONNECT_WAIT_S, not a whole attempt."""
    member = members(a_member())
    dead = FakeMember(a_member())
    dead.close()
    started = time.monotonic()
    assert 1 in fetch_addresses([dead.endpoint, member.endpoint], "test", 5.0, LOG)
    assert time.monotonic() - started < ATTEMPT_S  # a silent member would cost a whole attempt


@pytest.mark.timeout(20)
def test_nobody_answering_fails_after_the_deadline_naming_the_last_reason() -> None:
    dead = FakeMember(a_member())
    dead.close()
    with pytest.raises(JoinFailed, match=f"no member answered within 0.5 s \\(last: {dead.endpoint}: "
                                         f"no status from {dead.endpoint}\\)"):
        fetch_addresses([dead.endpoint], "test", 0.5, LOG)


@pytest.mark.timeout(20)
def test_a_redirect_is_followed_and_no_leader_is_waited_out(members: Callable[[Answer], FakeMember]) -> None:
    leader = members(a_member())
    busy = [2]

    def follower(request: StatusRequest | MembersRequest) -> Reply:
        if isinstance(request, StatusRequest):
            return StatusReply(request.request_id, 3, {"cluster_id": "test"})
        if busy[0]:
            busy[0] -= 1
            return ErrorReply(request.request_id, 3, ErrorCode.NO_LEADER_YET, "election")
        return ErrorReply(request.request_id, 3, ErrorCode.NOT_LEADER, "ask the leader", 2, leader.endpoint)

    asked = members(follower)
    assert 2 in fetch_addresses([asked.endpoint], "test", 5.0, LOG)
    assert asked.asked == ["StatusRequest"] + ["MembersRequest"] * 3
    assert leader.asked == ["MembersRequest"]


@pytest.mark.timeout(20)
def test_a_final_error_and_a_member_without_addresses_are_reasons(members: Callable[[Answer], FakeMember]) -> None:
    def refusing(request: StatusRequest | MembersRequest) -> Reply:
        if isinstance(request, StatusRequest):
            return StatusReply(request.request_id, 3, {"cluster_id": "test"})
        return ErrorReply(request.request_id, 3, ErrorCode.INVALID_REQUEST, "no such thing")

    refuser = members(refusing)
    with pytest.raises(JoinFailed, match=f"\\(last: {refuser.endpoint}: no such thing\\)"):
        fetch_addresses([refuser.endpoint], "test", 2.0, LOG)
    empty = members(a_member(members={"members": [{"id": 3, "peer": "", "client": ""}]}))
    with pytest.raises(JoinFailed, match=f"\\(last: {empty.endpoint} knows no member addresses\\)"):
        fetch_addresses([empty.endpoint], "test", 2.0, LOG)
