"""Property tests: histories generated from a sequential execution.

A run of the sequential KV model gives each operation an instant at which it
takes effect (10, 20, 30, ...); each op's client-visible window is then widened
by a random amount on either side, so windows overlap in every way. Some
mutations are turned into info (their effect kept, or dropped: "never"), some
into fail (not applied). Such a history is linearizable by construction, and the
checker must accept it with a valid witness. Replacing one read's result by a
value nobody wrote must always be rejected, and that read must be part of the
counterexample (any sub-history without it is a prefix of a linearizable one).
"""
from __future__ import annotations

from dataclasses import replace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cluster.check.history import Operation, OpKind, Outcome, Value
from cluster.check.linearizability import Verdict, check_history

from .history_builder import cas, delete, get, history, put
from .witness import assert_valid_witness

PROPERTY_SETTINGS = settings(derandomize=True, max_examples=250, deadline=None,
                             suppress_health_check=[HealthCheck.too_slow])
NEVER_WRITTEN = "never-written"  # generated values are integers


@st.composite
def sequential_histories(draw: st.DrawFn) -> list[Operation]:
    keys = draw(st.sampled_from([("a",), ("a", "b")]))
    state: dict[str, Value | None] = {key: None for key in keys}
    ops = []
    for i in range(draw(st.integers(1, 22))):
        effect = 10.0 * (i + 1)
        invoke = effect - draw(st.integers(0, 35))
        complete = effect + draw(st.integers(0, 35))
        key = draw(st.sampled_from(keys))
        kind = draw(st.sampled_from(["put", "get", "delete", "cas"]))
        fate = "ok" if kind == "get" else draw(st.sampled_from(
            ["ok", "ok", "ok", "info-applied", "info-never", "fail"]))
        applied = fate in ("ok", "info-applied")
        outcome = {"ok": "ok", "fail": "fail"}.get(fate, "info")
        current = state[key]
        if kind == "get":
            ops.append(get(i, key, current, invoke, complete))
        elif kind == "put":
            value = draw(st.integers(0, 3))
            ops.append(put(i, key, value, invoke, complete, outcome))
            if applied:
                state[key] = value
        elif kind == "delete":
            deleted = draw(st.sampled_from([None, int(current is not None)]))
            ops.append(delete(i, key, invoke, complete, outcome,
                              deleted=deleted if outcome == "ok" else None))
            if applied:
                state[key] = None
        else:
            expected = draw(st.sampled_from([None, 0, 1, 2, 3]))
            value = draw(st.integers(0, 3))
            holds = current == expected
            ops.append(cas(i, key, expected, value, holds, invoke, complete, outcome))
            if applied and holds:
                state[key] = value
    return history(*ops)


@PROPERTY_SETTINGS
@given(sequential_histories())
def test_histories_of_a_sequential_execution_are_linearizable(ops: list[Operation]) -> None:
    result = check_history(ops, timeout=20)
    assert result.verdict is Verdict.LINEARIZABLE, [op.describe() for op in ops]
    for key_result in result.keys:
        assert_valid_witness(key_result.ops, key_result.linearized)


@PROPERTY_SETTINGS
@given(sequential_histories(), st.data())
def test_one_read_of_a_never_written_value_is_always_rejected(
        ops: list[Operation], data: st.DataObject) -> None:
    reads = [op for op in ops if op.kind is OpKind.GET and op.outcome is Outcome.OK]
    if not reads:
        reads = [get(99, "a", None, 0.0, 1.0)]
        ops = history(*ops, reads[0])
        reads = [ops[-1]]
    victim = data.draw(st.sampled_from(reads))
    mutated = [replace(op, result=NEVER_WRITTEN) if op is victim else op for op in ops]
    result = check_history(mutated, timeout=20, minimize_budget=20)
    assert result.verdict is Verdict.NOT_LINEARIZABLE
    (failed,) = result.failures
    assert failed.key == victim.key
    assert failed.counterexample is not None
    assert victim.id in {op.id for op in failed.counterexample.ops}
