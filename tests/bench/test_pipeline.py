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
