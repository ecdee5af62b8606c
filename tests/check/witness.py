"""Independent validation of a linearization the checker returns as its witness."""
from __future__ import annotations

from collections.abc import Sequence

from cluster.check.history import Operation
from cluster.check.linearizability import compile_op, apply


def assert_valid_witness(ops: Sequence[Operation], order: Sequence[Operation]) -> None:
    """`order` holds every op of `ops` once, respects real time (an op that completed
    before another was invoked comes first), and replays legally on the model."""
    assert sorted(op.id for op in order) == sorted(op.id for op in ops)
    for position, first in enumerate(order):
        for second in order[position + 1:]:
            assert not second.effective_complete < first.invoke, (
                f"witness puts {first.describe()} before {second.describe()}, "
                "which completed before it was invoked")
    state = None
    for op in order:
        legal, state = apply(compile_op(op), state)
        assert legal, f"witness step {op.describe()} is illegal in state {state!r}"
