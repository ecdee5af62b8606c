"""The corruption checks' protocol (node/corruption_check.py) between three
in-memory members: real state machines, a manual clock, peer messages delivered
by hand, a fake core that records proposals. No sockets, no sleeps."""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from cluster.kv import Alarm, AlarmAction, AlarmType, Compact, Put, decode_command, encode_command
from cluster.kv.errors import Corrupt
from cluster.protocol import ErrorCode, ErrorReply, Reply
from cluster.spec import MaintenanceSpec
from node.answers import Answers, result_reply
from node.corruption_check import CorruptionCheck
from node.eventlog import EventLog
from node.raft import NotLeader, Role
from node.replica import Replica
from node.statemachine import StateMachine
from node.wire import AlarmReport, HashKVRequest, HashKVResponse, HashOutcome

WAIT_S = 2.0


@dataclass
class FakeLog:
    committed: int = 0


@dataclass
class FakeCore:
    role: Role
    lead: int
    log: FakeLog = field(default_factory=FakeLog)
    proposed: list[bytes] = field(default_factory=list)

    def propose(self, data: bytes) -> int:
        if self.role is not Role.LEADER:
            raise NotLeader(self.lead)  # type: ignore[arg-type]
        self.proposed.append(data)
        return len(self.proposed)


class Members:
    """Three members (1 leads) whose checks talk through `bus`."""

    def __init__(self, initial: int = 0, interval: int = 1) -> None:
        self.now = 0.0
        self.bus: list[Any] = []
        self.sms = {i: StateMachine() for i in (1, 2, 3)}
        self.cores = {i: FakeCore(Role.LEADER if i == 1 else Role.FOLLOWER, 1) for i in (1, 2, 3)}
        self.refusing: dict[int, Callable[[int], Reply] | None] = {}
        self.checks = {i: self._check(i, MaintenanceSpec(corrupt_check_initial=i == initial,
                                                           corrupt_check_interval_s=interval)) for i in (1, 2, 3)}

    def _check(self, i: int, settings: MaintenanceSpec) -> CorruptionCheck:
        def refuse(reply: Callable[[int], Reply] | None) -> None:
            self.refusing[i] = reply
        log = EventLog(lambda: f"node={i}", logger=logging.getLogger(f"test-corruption-{i}"), clock=lambda: self.now)
        return CorruptionCheck(i, settings, WAIT_S, self.cores[i], Replica(self.sms[i]),  # type: ignore[arg-type]
                               lambda: {1, 2, 3} - {i}, self.bus.append, Answers(i, lambda _: ""), refuse,
                               lambda: self.now, log)

    def write(self, *puts: tuple[bytes, bytes], on: tuple[int, ...] = (1, 2, 3)) -> None:
        for i in on:
            sm = self.sms[i]
            for key, value in puts:
                sm.apply(sm.applied_index + 1, encode_command(Put(key, value)))

    def deliver(self) -> None:
        for _ in range(100):
            if not self.bus:
                return
            m = self.bus.pop(0)
            self.checks[m.dst].on_message(m)
        raise AssertionError("the checks never stop talking")

    def sweep(self, *members: int, advance: float = 0.0) -> None:
        self.now += advance
        for i in members or (1, 2, 3):
            self.checks[i].sweep(self.now)
        self.deliver()

    def alarms_proposed(self, i: int = 1) -> list[Alarm]:
        return [decode_command(data).request for data in self.cores[i].proposed]  # type: ignore[misc]


VALUES = [(b"a", b"1"), (b"b", b"2"), (b"c", b"3")]


def test_the_leader_raises_corrupt_for_the_member_whose_hash_differs() -> None:
    members = Members()
    members.write(*VALUES, on=(1, 2))
    members.write((b"a", b"1"), (b"b", b"X"), (b"c", b"3"), on=(3,))
    members.sweep(advance=1.0)
    assert members.alarms_proposed() == [Alarm(AlarmAction.ACTIVATE, 3, AlarmType.CORRUPT)]
    assert members.alarms_proposed(2) == [] and members.alarms_proposed(3) == []


def test_agreeing_members_raise_nothing_and_followers_check_nobody() -> None:
    members = Members()
    members.write(*VALUES)
    members.sweep(advance=1.0)
    members.sweep(advance=1.0)
    assert all(not core.proposed for core in members.cores.values())


def test_a_follower_behind_answers_once_it_applied_the_revision_or_is_skipped_at_the_deadline() -> None:
    members = Members()
    members.write(*VALUES, on=(1, 3))
    members.write(*VALUES[:2], on=(2,))
    members.write((b"x", b"y"), on=(3,))  # member 3 is ahead: it hashes the leader's revision all the same
    members.sweep(1, advance=1.0)
    assert [type(m) for m in members.bus] == []  # 3 answered at once; 2 waits for the revision
    members.write(VALUES[2], on=(2,))
    members.sweep(2, advance=0.05)
    members.sweep(1, advance=0.05)
    assert members.alarms_proposed() == []
    # a member still behind at the deadline says so, and is skipped
    members = Members()
    members.write(*VALUES, on=(1, 3))
    members.write(*VALUES[:2], on=(2,))
    members.sweep(1, advance=1.0)
    members.now += WAIT_S
    members.checks[2].sweep(members.now)
    assert [(m.src, m.outcome) for m in members.bus] == [(2, HashOutcome.BEHIND)]
    members.deliver()
    assert members.alarms_proposed() == []


def test_a_member_that_compacted_past_the_revision_is_skipped() -> None:
    members = Members()
    members.write(*VALUES)
    sm = members.sms[3]
    sm.apply(sm.applied_index + 1, encode_command(Compact(sm.revision)))  # a different retained history
    members.write((b"b", b"other"), on=(3,))
    members.sweep(advance=1.0)
    assert members.alarms_proposed() == []


def test_a_compacted_revision_is_answered_compacted() -> None:
    members = Members()
    members.write(*VALUES)
    sm = members.sms[2]
    sm.apply(sm.applied_index + 1, encode_command(Compact(3)))
    members.checks[2].on_message(HashKVRequest(1, 2, 7, 2))
    assert members.bus == [HashKVResponse(2, 1, 7, 2, HashOutcome.COMPACTED)]


def test_a_starting_member_refuses_kv_until_its_peers_agree() -> None:
    members = Members(initial=3, interval=0)
    members.write(*VALUES)
    refusal = members.refusing[3]
    assert refusal is not None
    reply = refusal(41)
    assert isinstance(reply, ErrorReply) and reply.code is ErrorCode.NO_LEADER_YET
    members.sweep(3)
    members.sweep()
    assert members.refusing[3] is None and not members.checks[3].starting and not members.checks[3].corrupt


def test_a_starting_member_whose_state_diverged_refuses_kv_and_reports_itself_to_the_leader(
        caplog: pytest.LogCaptureFixture) -> None:
    members = Members(initial=3, interval=0)
    members.write(*VALUES, on=(1, 2))
    members.write((b"a", b"1"), (b"b", b"X"), (b"c", b"3"), on=(3,))
    with caplog.at_level(logging.ERROR):
        members.sweep(3)
    assert members.checks[3].corrupt
    assert "node 3's data is corrupt" in caplog.text
    refusal = members.refusing[3]
    assert refusal is not None and refusal(5) == result_reply(5, 3, Corrupt())
    assert members.alarms_proposed() == [Alarm(AlarmAction.ACTIVATE, 3, AlarmType.CORRUPT)]
    # until the alarm is applied, the report is sent again
    members.sweep(3, advance=1.0)
    assert len(members.alarms_proposed()) == 2
    for sm in members.sms.values():
        sm.apply(sm.applied_index + 1, members.cores[1].proposed[0])
    members.sweep(3, advance=1.0)
    assert len(members.alarms_proposed()) == 2


def test_a_starting_member_with_nothing_written_or_silent_peers_serves() -> None:
    members = Members(initial=3, interval=0)
    members.sweep(3)
    assert members.refusing[3] is None  # a fresh cluster: nothing to compare
    members = Members(initial=3, interval=0)
    members.write(*VALUES)
    members.checks[3].sweep(members.now)
    members.bus.clear()  # the peers never answer
    members.sweep(3, advance=WAIT_S)
    assert members.refusing[3] is None and not members.checks[3].corrupt


def test_only_a_leader_acts_on_a_report_and_only_for_its_sender() -> None:
    members = Members(interval=0)
    members.checks[2].on_message(AlarmReport(3, 2, int(AlarmType.CORRUPT)))
    members.checks[1].on_message(AlarmReport(3, 1, int(AlarmType.NONE)))
    assert members.alarms_proposed() == [] and members.alarms_proposed(2) == []
    members.checks[1].on_message(AlarmReport(3, 1, int(AlarmType.CORRUPT)))
    assert members.alarms_proposed() == [Alarm(AlarmAction.ACTIVATE, 3, AlarmType.CORRUPT)]
