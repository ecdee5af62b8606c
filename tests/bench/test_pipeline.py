"""--pipeline's bookkeeping with a fake socket: every request issued is answered,
refused or timed out, each is counted exactly once, and the budget is exact."""
from __future__ import annotations

import random
import time
from typing import Any

import pytest

from cluster.bench.cli import main
from cluster.bench.options import BenchOptions
from cluster.bench.pipeline import Slot, make_request, pump
from cluster.bench.tally import ThreadTally
from cluster.protocol import ErrorCode, ErrorReply, KvReply


class FakePipe:
    """Answers request n: refused (invalid-request) if n % 5 == 4, never if n % 7 == 6,
    else ok. `expired` ages out the unanswered ones at once."""

    def __init__(self, slots: int) -> None:
        self.slots = [Slot(client_id=i + 1) for i in range(slots)]
        self.pending: dict[int, Slot] = {}
        self.sent: list[tuple[str, bytes, bool]] = []
        self.silent: set[int] = set()

    def send(self, slot: Slot, kind: str, command: bytes, serializable: bool = False) -> None:
        n = len(self.sent)
        self.sent.append((kind, command, serializable))
        slot.kind, slot.sent = kind, time.monotonic()
        self.pending[n] = slot
        if n % 7 == 6:
            self.silent.add(n)

    def replies(self, wait_s: float) -> list[tuple[Slot, Any]]:
        out = []
        for n in [n for n in self.pending if n not in self.silent]:
            slot = self.pending.pop(n)
            reply = ErrorReply(n, 1, ErrorCode.INVALID_REQUEST, "too big") if n % 5 == 4 else KvReply(n, 1, b"")
            out.append((slot, reply))
        return out

    def expired(self, timeout: float) -> list[Slot]:
        return [self.pending.pop(n) for n in [n for n in self.pending if n in self.silent]]


def run(options: BenchOptions, budget: int | None, duration: float = 60.0) -> tuple[FakePipe, ThreadTally]:
    pipe, tally = FakePipe(options.in_flight), ThreadTally()
    pump(pipe, make_request(options, random.Random(1)), budget, time.monotonic(), duration,  # type: ignore[arg-type]
         options.timeout, lambda: False, tally)
    return pipe, tally


def test_every_request_is_counted_once_as_ok_refused_or_timed_out() -> None:
    pipe, tally = run(BenchOptions(workload="put", in_flight=8, ops=None), budget=350)
    assert len(pipe.sent) == tally.completed == 350 and not pipe.pending
    refused = sum(1 for n in range(350) if n % 5 == 4 and n % 7 != 6)
    silent = sum(1 for n in range(350) if n % 7 == 6)
    assert tally.errors == {"InvalidRequestError": refused, "ClientTimeout": silent}
    assert tally.latency.total == tally.kinds["put"] == 350 - refused - silent


def test_writes_carry_a_growing_seq_per_slot_session() -> None:
    pipe, _ = run(BenchOptions(workload="put", in_flight=3, ops=None), budget=30)
    assert sum(slot.seq for slot in pipe.slots) == 30
    assert all(slot.seq >= 1 for slot in pipe.slots)


def test_reads_carry_the_serializable_flag_and_a_mixed_run_mixes() -> None:
    pipe, tally = run(BenchOptions(workload="get", in_flight=4, ops=None, serializable=True), budget=40)
    assert {s[2] for s in pipe.sent} == {True} and set(tally.kinds) == {"get"}
    pipe, tally = run(BenchOptions(workload="mixed", in_flight=4, ops=None, read_ratio=0.5), budget=200)
    assert set(tally.kinds) == {"get", "put"}


def test_a_passed_deadline_issues_nothing() -> None:
    pipe, tally = run(BenchOptions(workload="put", in_flight=4, ops=None), budget=None, duration=-1.0)
    assert pipe.sent == [] and tally.completed == 0


@pytest.mark.parametrize("argv, message", [
    (["txn", "--pipeline"], "--pipeline supports"),
    (["put", "--pipeline", "--target", "followers"], "writes need --target leader"),
])
def test_pipeline_usage_errors(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


class MovingLeaderPipe:
    """Members "a" and "b": "a" answers until request `fail_from`, then everything sent
    to it gets not-leader (hinting "b") or, with `hint=False`, no answer at all; "b"
    answers everything."""

    def __init__(self, slots: int, fail_from: int, hint: bool) -> None:
        self.slots = [Slot(client_id=i + 1) for i in range(slots)]
        self.endpoint = "a"
        self.pending: dict[int, Slot] = {}
        self.sent: list[tuple[str, bytes]] = []
        self.fail_from, self.hint = fail_from, hint
        self.switches: list[str] = []

    def send(self, slot: Slot, kind: str, command: bytes, serializable: bool = False) -> None:
        slot.kind, slot.sent = kind, time.monotonic()
        slot.started, slot.command, slot.serializable = slot.sent, command, serializable
        self.pending[len(self.sent)] = slot
        self.sent.append((self.endpoint, command))

    def resend(self, slot: Slot) -> None:
        started = slot.started
        self.send(slot, slot.kind, slot.command, slot.serializable)
        slot.started = started

    def switch(self, endpoint: str) -> list[Slot]:
        self.switches.append(endpoint)
        self.endpoint = endpoint
        lost = list(self.pending.values())
        self.pending.clear()
        return lost

    def _refused(self, n: int) -> bool:
        return self.sent[n][0] == "a" and n >= self.fail_from

    def replies(self, wait_s: float) -> list[tuple[Slot, Any]]:
        out = []
        for n in [n for n in self.pending if not (self._refused(n) and not self.hint)]:
            slot = self.pending.pop(n)
            if self._refused(n):
                out.append((slot, ErrorReply(n, 1, ErrorCode.NOT_LEADER, "", leader_id=2, leader_client="b")))
            else:
                out.append((slot, KvReply(n, 1, b"")))
        return out

    def expired(self, timeout: float) -> list[Slot]:
        return [self.pending.pop(n) for n in [n for n in self.pending if self._refused(n) and not self.hint]]


class Follower:
    def __init__(self) -> None:
        self.asked: list[str] = []

    def locate(self, hint: str = "") -> str | None:
        self.asked.append(hint)
        return hint or "b"


@pytest.mark.parametrize("hint", [True, False], ids=["not-leader", "silent-leader"])
def test_a_leader_change_is_followed_and_reported_not_counted_as_failures(hint: bool) -> None:
    pipe, tally = MovingLeaderPipe(8, fail_from=40, hint=hint), ThreadTally()
    follower = Follower()
    pump(pipe, make_request(BenchOptions(workload="put", in_flight=8, ops=None), random.Random(1)),  # type: ignore[arg-type]
         200, time.monotonic(), 60.0, 0.0, lambda: False, tally, follower)  # type: ignore[arg-type]
    assert tally.errors == {} and tally.latency.total == tally.completed == 200
    assert pipe.switches == ["b"] and len(tally.interruptions) == 1
    assert follower.asked[0] == ("b" if hint else "")
    # every request refused or unanswered by "a" was sent again to "b", with the same bytes
    lost = [command for n, (where, command) in enumerate(pipe.sent) if where == "a" and n >= 40]
    assert lost and all(("b", command) in pipe.sent for command in lost)


def test_without_a_follower_a_leader_change_is_counted_as_errors() -> None:
    pipe, tally = MovingLeaderPipe(4, fail_from=10, hint=True), ThreadTally()
    pump(pipe, make_request(BenchOptions(workload="put", in_flight=4, ops=None), random.Random(1)),  # type: ignore[arg-type]
         50, time.monotonic(), 60.0, 0.0, lambda: False, tally)
    assert tally.errors == {"ErrorReply:not-leader": 40} and pipe.switches == []
