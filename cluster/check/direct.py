"""Direct checks: simple, fast, and explainable in one sentence each.

They complement the linearizability search: each finds one specific kind of
bug with no search at all, and says exactly which operations show it.

* `lost_writes`: after the cluster healed, a final read of each key must show
  the last acknowledged write to it, unless another operation could have
  overwritten it later (any mutation on the key, acknowledged or of unknown
  outcome, that had not completed before the write was invoked).
* `revision_regressions`: etcd revisions are one global counter. If operation A
  completed before operation B was invoked, B's revision is at least A's, and
  strictly greater if B created a new revision (a put, a cas whose compare held,
  a delete that deleted something).
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .history import Operation, OpKind, Outcome, Value


@dataclass(frozen=True, slots=True)
class LostWrite:
    """An acknowledged mutation whose effect the final read does not show."""

    op: Operation
    final: Value | None

    def describe(self) -> str:
        shown = "nil" if self.final is None else str(self.final)
        return f"lost: {self.op.describe()} (op #{self.op.id}); final read of " \
               f"{self.op.key} shows {shown} and nothing could have overwritten it later"


@dataclass(frozen=True, slots=True)
class RevisionRegression:
    """`later` was invoked after `earlier` completed, yet its revision is not after."""

    earlier: Operation
    later: Operation

    def describe(self) -> str:
        relation = "<=" if creates_revision(self.later) else "<"
        return (f"revision went back: #{self.earlier.id} {self.earlier.describe()} completed at "
                f"revision {self.earlier.revision}, then #{self.later.id} "
                f"{self.later.describe()} has revision {self.later.revision} {relation} it")


def acknowledged_mutation(op: Operation) -> bool:
    if op.outcome is not Outcome.OK:
        return False
    return op.kind in (OpKind.PUT, OpKind.DELETE) or (op.kind is OpKind.CAS and op.result is True)


def possible_mutation(op: Operation) -> bool:
    """Acknowledged, or of unknown outcome (info): it may have changed the key."""
    return acknowledged_mutation(op) or (op.outcome is Outcome.INFO and op.is_mutation)


def creates_revision(op: Operation) -> bool:
    if op.outcome is not Outcome.OK:
        return False
    return (op.kind is OpKind.PUT or (op.kind is OpKind.CAS and op.result is True)
            or (op.kind is OpKind.DELETE and op.result == 1))


def lost_writes(ops: Iterable[Operation], final: Mapping[str, Value | None]) -> list[LostWrite]:
    """Acknowledged mutations of the keys in `final` that the final value contradicts.

    `final` maps a key to what a linearizable read returned after healing (None =
    absent). A write W is flagged when the final value is not W's and no other
    possible mutation M of the key could be ordered after W, i.e. none has
    `M.complete >= W.invoke` (info ops never complete, so they always could).
    """
    by_key: dict[str, list[Operation]] = {}
    for op in ops:
        if op.key in final and possible_mutation(op):
            by_key.setdefault(op.key, []).append(op)
    lost = []
    for key, mutations in sorted(by_key.items()):
        # "Some other mutation completes at or after W's invoke" only needs the two
        # latest completions of the key: one pass, not one per write (a 70k-op
        # history took minutes with the pairwise scan).
        latest = sorted(range(len(mutations)), key=lambda i: mutations[i].effective_complete)[-2:]
        for i, write in enumerate(mutations):
            if not acknowledged_mutation(write):
                continue
            effect = None if write.kind is OpKind.DELETE else write.value
            if final[key] == effect:
                continue
            others = [j for j in latest if j != i]
            overwritten = bool(others) and mutations[others[-1]].effective_complete >= write.invoke
            if not overwritten:
                lost.append(LostWrite(write, final[key]))
    return lost


def revision_regressions(ops: Iterable[Operation]) -> list[RevisionRegression]:
    """Pairs (A, B), A completed before B was invoked, with B's revision not after A's.

    One sweep: ops in invoke order; `best` is the op with the highest revision
    among those completed strictly before the current invoke. Reports each B
    once, against that highest earlier revision.
    """
    known = [op for op in ops
             if op.outcome is Outcome.OK and op.revision is not None and op.complete is not None]
    by_invoke = sorted(known, key=lambda op: (op.invoke, op.id))
    by_complete = sorted(known, key=lambda op: (op.complete, op.id))
    found = []
    best: Operation | None = None
    done = 0
    for later in by_invoke:
        while done < len(by_complete) and by_complete[done].complete < later.invoke:  # type: ignore[operator]
            candidate = by_complete[done]
            if best is None or candidate.revision > best.revision:  # type: ignore[operator]
                best = candidate
            done += 1
        if best is None:
            continue
        floor = best.revision
        assert floor is not None and later.revision is not None
        if later.revision < floor or (creates_revision(later) and later.revision == floor):
            found.append(RevisionRegression(best, later))
    return found
