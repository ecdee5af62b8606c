"""The workload recorder without processes: outcome classification, one clock,
the JSON-lines round trip the checker reads, and the chaos check's arithmetic."""
from __future__ import annotations

import io
import random
from collections.abc import Sequence

import pytest

from cluster.check import Verdict, check_history, read_jsonl, write_jsonl
from cluster.check.history import Operation, OpKind, Outcome
from cluster.client import ClientTimeout, CompactedError, InvalidRequestError, SessionExpiredError
from cluster.kv import DeleteResponse, KeyValue, PutResponse, RangeResponse, TxnResponse
from cluster.workload import Call, Generator, History, Workload, WorkloadOptions, perform, timed
from supervisor.chaos import ChaosOptions, choose
from supervisor.chaoscheck import longest_gap
from supervisor.status import NodeStatus


class FakeClient:
    """A sequential in-memory register per key; `fail_with` makes the next call raise."""

    def __init__(self) -> None:
        self.data: dict[str, str] = {}
        self.revision = 1
        self.fail_with: Exception | None = None
        self.client_id = 5

    def _maybe_fail(self) -> None:
        if self.fail_with is not None:
            error, self.fail_with = self.fail_with, None
            raise error

    def put(self, key: str, value: str) -> PutResponse:
        self._maybe_fail()
        self.data[key] = value
        self.revision += 1
        return PutResponse(self.revision)

    def range(self, key: str) -> RangeResponse:
        self._maybe_fail()
        kvs = (KeyValue(key.encode(), self.data[key].encode(), 1, 1, 1),) if key in self.data else ()
        return RangeResponse(self.revision, kvs, len(kvs), False)

    def delete(self, key: str) -> DeleteResponse:
        self._maybe_fail()
        existed = self.data.pop(key, None) is not None
        self.revision += existed
        return DeleteResponse(self.revision, int(existed))

    def txn(self, compares: Sequence[object], success: Sequence[object]) -> TxnResponse:
        self._maybe_fail()
        [compare] = compares
        [put] = success
        key = compare.key.decode()  # type: ignore[attr-defined]
        expected = None if compare.target == 0 else compare.operand.decode()  # type: ignore[attr-defined]
        held = self.data.get(key) == expected
        if held:
            self.data[key] = put.value.decode()  # type: ignore[attr-defined]
            self.revision += 1
        return TxnResponse(self.revision, held, ())

    def close(self) -> None:
        pass


@pytest.mark.parametrize("error, outcome", [
    (ClientTimeout("no answer"), Outcome.INFO),
    (SessionExpiredError("evicted"), Outcome.INFO),
    (InvalidRequestError("too big"), Outcome.FAIL),
    (CompactedError("gone"), Outcome.FAIL),
])
def test_typed_errors_map_to_fail_or_info(error: Exception, outcome: Outcome) -> None:
    client = FakeClient()
    client.fail_with = error
    got, result, revision = perform(client, Call(OpKind.PUT, "k", "v"))  # type: ignore[arg-type]
    assert (got, result, revision) == (outcome, None, None)
    assert client.client_id == (0 if isinstance(error, SessionExpiredError) else 5)


def test_a_cas_whose_compare_fails_is_ok_with_result_false() -> None:
    client = FakeClient()
    client.put("k", "a")
    outcome, result, _ = perform(client, Call(OpKind.CAS, "k", "c", "b"))  # type: ignore[arg-type]
    assert (outcome, result) == (Outcome.OK, False)
    outcome, result, _ = perform(client, Call(OpKind.CAS, "k", "c", "a"))  # type: ignore[arg-type]
    assert (outcome, result, client.data["k"]) == (Outcome.OK, True, "c")


def test_info_ops_have_no_completion_and_times_come_from_one_clock() -> None:
    history = History(0.0)
    ticks = iter([1.0, 2.0, 3.0, 4.0])
    history.clock = lambda: next(ticks)  # type: ignore[method-assign]
    client = FakeClient()
    ok = timed(history, 0, client, Call(OpKind.PUT, "k", "v"))  # type: ignore[arg-type]
    client.fail_with = ClientTimeout("x")
    info = timed(history, 1, client, Call(OpKind.GET, "k"))  # type: ignore[arg-type]
    assert (ok.invoke, ok.complete, ok.outcome, ok.id) == (1.0, 2.0, Outcome.OK, 0)
    assert (info.invoke, info.complete, info.outcome, info.id) == (3.0, None, Outcome.INFO, 1)


@pytest.mark.timeout(30)
def test_a_workload_on_a_linearizable_store_is_recorded_and_accepted() -> None:
    store = FakeClient()
    import threading
    lock = threading.Lock()

    class Locked(FakeClient):
        def __getattribute__(self, name: str) -> object:
            attr = getattr(store, name)
            if not callable(attr) or name == "close":
                return attr

            def call(*args: object) -> object:
                with lock:  # one op at a time: trivially linearizable
                    return attr(*args)
            return call

    options = WorkloadOptions(clients=3, keys=2, duration=5.0, max_ops=600, seed=3)
    workload = Workload(["tcp://unused"], options, client_factory=lambda e, o: Locked())  # type: ignore[arg-type,return-value]
    history = workload.run()
    assert len(history.operations) == 600
    assert {op.kind for op in history.operations} == set(OpKind)
    out = io.StringIO()
    write_jsonl(history.operations, out)
    ops = read_jsonl(out.getvalue().splitlines())
    assert check_history(ops, timeout=10).verdict is Verdict.LINEARIZABLE


def test_generator_cas_expects_what_this_client_last_saw() -> None:
    gen = Generator(7, ["k"], random.Random(1))
    gen.observe(Operation(0, 7, OpKind.GET, "k", 0.0, 1.0, Outcome.OK, result="7.1"))
    cas = next(c for c in iter(gen.next, None) if c.kind is OpKind.CAS)
    assert cas.expected == "7.1" and cas.value == f"7.{gen.count}"


def test_longest_gap_spans_the_window_without_an_ok_completion() -> None:
    ops = [Operation(i, 0, OpKind.GET, "k", t - 0.1, t, Outcome.OK, result=None) for i, t in enumerate([1, 2, 6])]
    ops.append(Operation(9, 0, OpKind.PUT, "k", 2.5, None, Outcome.INFO, value="x"))
    assert longest_gap(ops, 0.0, 10.0) == (4.0, 2.0)
    assert longest_gap([], 0.0, 3.0) == (3.0, 0.0)


def _status(node_id: int, role: str) -> NodeStatus:
    return NodeStatus(node_id, 100 + node_id, True, role, 2, 1, 5, 5, 5, 0, 0, 0, 0, "", "", "running", "")


def test_leader_odds_aims_some_faults_at_the_leader() -> None:
    statuses = [_status(1, "leader"), _status(2, "follower"), _status(3, "follower")]
    options = ChaosOptions(duration=1, interval=1, leader_odds=0.5, pause=True, drop=True)
    rng = random.Random(4)
    events = [choose(rng, statuses, options) for _ in range(200)]
    at_leader = sum(1 for e in events if not isinstance(e, str) and e.node_id == 1)
    assert 100 < at_leader < 200  # 1/2 aimed + 1/6 by chance


def test_split_cuts_off_the_largest_minority_with_the_target_in_it() -> None:
    statuses = [_status(1, "leader")] + [_status(i, "follower") for i in range(2, 6)]
    options = ChaosOptions(duration=1, interval=1, kill=False, drop=True, split=True, leader=True)
    events = [choose(random.Random(seed), statuses, options) for seed in range(40)]
    splits = [e for e in events if not isinstance(e, str) and e.action == "split"]
    assert splits and all(len(e.group) == 2 and 1 in e.group and e.was_leader for e in splits)
    three = statuses[:3]
    assert all(not isinstance(e, str) and e.action == "drop"
               for e in (choose(random.Random(s), three, options) for s in range(20)))
