"""A linearizability checker for the key-value model.

Theory of operation
-------------------
A history is linearizable if every operation can be given a single instant, its
linearization point, between its invoke and its completion, such that executing
the operations one at a time in that order, against a sequential model of the
store, gives every result the clients saw (Herlihy & Wing 1990).

*Per-key partitioning.* Each operation touches one key, and the model of the
store is a product of independent registers, so a history is linearizable iff
its restriction to each key is (linearizability is local, "P-compositionality",
Horn & Kroening 2015). We check each key on its own, with its own time budget.

*The search* (Wing & Gong 1993, improved by Lowe 2017; the design Porcupine
uses). Lay the invoke and completion events of the key's operations out in
time order as a doubly linked list. Walk it from the front: at an invoke event,
try to linearize that operation now: if the model accepts it in the current
state, and the pair (set of operations linearized so far, resulting state) has
not been seen before, push (operation, previous state) on a stack, unlink its
two events and start again from the front. At a completion event, the
operation it completes had to be linearized by now and is not: backtrack (pop,
restore the state, relink, continue after that invoke). An empty list means
every operation was linearized: linearizable. Backtracking from an empty stack
means no order works: not linearizable. The memo of (linearized bitset, state)
prunes every branch that reaches a configuration already shown to fail: two
searches that linearized the same set and reached the same state have the same
future.

*Unknown outcomes.* An `info` operation may take effect at any instant after
its invoke, or never: its completion event is placed at +infinity, after every
other event. "Never" is the same as "after everything else", because nothing
observes the state after the last event. A `fail` operation definitely did not
take effect and is left out, as is an `info` get (it observed nothing we know).

*Counterexample.* On failure the search reports the longest sequence it
managed to linearize and the operation whose completion event stopped it; then
`minimize` shrinks the key's history soundly (see its docstring) so a person
has few operations to look at.

*Budget.* The search reads an injected clock every few thousand steps and gives
up with verdict UNKNOWN once the key's budget is spent: a timeout is never
reported as linearizable.
"""
from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from enum import Enum

from .history import Operation, OpKind, Outcome, Value

Clock = Callable[[], float]

_CLOCK_EVERY = 2048  # search steps between two clock reads


class Verdict(str, Enum):
    LINEARIZABLE = "linearizable"
    NOT_LINEARIZABLE = "not linearizable"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Counterexample:
    """A sub-history of one key that is itself not linearizable (so it proves the
    verdict), the longest sequence of its ops the search could linearize, and the
    op whose completion the search could not get past."""

    ops: tuple[Operation, ...]
    linearized: tuple[Operation, ...]
    blocked: Operation | None


@dataclass(frozen=True, slots=True)
class KeyResult:
    """The verdict for one key.

    `ops` are the operations the search considered (fail ops and info gets
    dropped). When linearizable, `linearized` is a full linearization order;
    otherwise it is the longest linearizable sequence the search found, and
    `blocked` is the operation whose completion it could not get past.
    `counterexample`, when not linearizable, is the minimized sub-history.
    """

    key: str
    verdict: Verdict
    ops: tuple[Operation, ...]
    linearized: tuple[Operation, ...] = ()
    blocked: Operation | None = None
    counterexample: Counterexample | None = None
    steps: int = 0
    seconds: float = 0.0

    def describe(self) -> str:
        """The verdict as the checker's CLI and the chaos report print it: one line,
        then the counterexample (its operations, the order that linearized, the one
        that could not be placed) when there is one."""
        lines = [f"key {self.key}: {self.verdict.value} ({len(self.ops)} operations, "
                 f"{self.steps} search steps, {self.seconds:.3f} s)"]
        example = self.counterexample
        if example is None:
            return "\n".join(lines)
        lines.append(f"  counterexample: {len(example.ops)} operations, not linearizable on their own:")
        lines += [f"    #{op.id} {op.describe()}  [{op.invoke:g}, "
                  f"{'?' if op.complete is None or op.outcome.value == 'info' else format(op.complete, 'g')}]"
                  for op in sorted(example.ops, key=lambda op: (op.invoke, op.id))]
        lines.append("  linearized in this order:")
        lines += [f"    {n}. #{op.id} {op.describe()}" for n, op in enumerate(example.linearized, 1)]
        if example.blocked is not None:
            lines.append(f"  then could not place: #{example.blocked.id} {example.blocked.describe()}")
        return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class CheckResult:
    verdict: Verdict
    keys: tuple[KeyResult, ...] = field(default=())

    @property
    def failures(self) -> tuple[KeyResult, ...]:
        return tuple(k for k in self.keys if k.verdict is Verdict.NOT_LINEARIZABLE)

    @property
    def unknown(self) -> tuple[KeyResult, ...]:
        return tuple(k for k in self.keys if k.verdict is Verdict.UNKNOWN)


def check_history(ops: Iterable[Operation], timeout: float = 10.0, clock: Clock = time.monotonic,
                  minimize_budget: float | None = None) -> CheckResult:
    """Check a whole history, key by key; each key gets `timeout` seconds.

    Not linearizable if any key is; else unknown if any key timed out. Failing
    keys are minimized within `minimize_budget` seconds each (default: the
    timeout; 0 turns minimization off).
    """
    by_key: dict[str, list[Operation]] = defaultdict(list)
    for op in ops:
        by_key[op.key].append(op)
    budget = timeout if minimize_budget is None else minimize_budget
    results = []
    for key in sorted(by_key):
        result = check_key(key, by_key[key], timeout, clock)
        if result.verdict is Verdict.NOT_LINEARIZABLE:
            result = replace(result, counterexample=counterexample(result, budget, clock))
        results.append(result)
    verdicts = {r.verdict for r in results}
    if Verdict.NOT_LINEARIZABLE in verdicts:
        verdict = Verdict.NOT_LINEARIZABLE
    elif Verdict.UNKNOWN in verdicts:
        verdict = Verdict.UNKNOWN
    else:
        verdict = Verdict.LINEARIZABLE
    return CheckResult(verdict, tuple(results))


def relevant(ops: Iterable[Operation]) -> list[Operation]:
    """The operations that constrain linearizability: not fail, not info get."""
    return [op for op in ops if op.outcome is Outcome.OK
            or (op.outcome is Outcome.INFO and op.kind is not OpKind.GET)]


def check_key(key: str, ops: Sequence[Operation], timeout: float = 10.0,
              clock: Clock = time.monotonic) -> KeyResult:
    """Check the operations of one key (all must be on `key`)."""
    considered = tuple(relevant(ops))
    assert all(op.key == key for op in considered), "check_key given another key's op"
    started = clock()
    search = _Search(considered, started + timeout, clock)
    verdict = search.run()
    order = tuple(considered[i] for i in search.best)
    blocked = None if search.blocked is None else considered[search.blocked]
    return KeyResult(key, verdict, considered, order, blocked, steps=search.steps,
                     seconds=clock() - started)


# --- the model ----------------------------------------------------------------------
#
# Each operation is compiled once to (code, a, b): its step function is selected
# by `code` in the search's inner loop. The state of a key is its value, None
# when absent; values are never None, so `state == None` is exact.

_GET, _PUT, _DELETE, _DELETE_HIT, _DELETE_MISS, _CAS_OK, _CAS_MISS, _CAS_MAYBE = range(8)

Step = tuple[int, "Value | None", "Value | None"]


def compile_op(op: Operation) -> Step:
    unknown = op.outcome is Outcome.INFO
    match op.kind:
        case OpKind.GET:
            return (_GET, op.result, None)
        case OpKind.PUT:
            return (_PUT, op.value, None)
        case OpKind.DELETE:
            if unknown or op.result is None:
                return (_DELETE, None, None)
            return (_DELETE_HIT if op.result else _DELETE_MISS, None, None)
        case OpKind.CAS:
            if unknown:
                return (_CAS_MAYBE, op.expected, op.value)
            return (_CAS_OK if op.result else _CAS_MISS, op.expected, op.value)
    raise AssertionError(op.kind)


def apply(step: Step, state: Value | None) -> tuple[bool, Value | None]:
    """The sequential model: (is the observed result legal here?, next state)."""
    code, a, b = step
    if code == _GET:
        return state == a, state
    if code == _PUT:
        return True, a
    if code == _DELETE:
        return True, None
    if code == _DELETE_HIT:
        return state is not None, None
    if code == _DELETE_MISS:
        return state is None, None
    if code == _CAS_OK:
        return state == a, b
    if code == _CAS_MISS:
        return state != a, state
    return True, (b if state == a else state)  # _CAS_MAYBE


# --- the search ---------------------------------------------------------------------

class _Search:
    """Lowe's just-in-time linearization with Porcupine's memo, on array-linked lists.

    Node 0 is the list head; node 2i+1 is op i's invoke event, node 2i+2 its
    completion. `nxt`/`prv` link the events not yet linearized, in time order.
    """

    def __init__(self, ops: Sequence[Operation], deadline: float, clock: Clock) -> None:
        self.ops = ops
        self.steps_of = [compile_op(op) for op in ops]
        self.deadline = deadline
        self.clock = clock
        self.steps = 0
        self.best: list[int] = []
        self.blocked: int | None = None
        events = []
        for i, op in enumerate(ops):
            events.append((op.invoke, 0, 2 * i + 1))
            events.append((op.effective_complete, 1, 2 * i + 2))
        # At equal times invokes sort first: touching operations count as concurrent,
        # the reading that never rejects a linearizable history because of clock ties.
        events.sort()
        self.twin = _twins(ops, self.steps_of)
        size = 2 * len(ops) + 1
        self.nxt = [-1] * size
        self.prv = [-1] * size
        previous = 0
        for _, _, node in events:
            self.nxt[previous] = node
            self.prv[node] = previous
            previous = node

    def run(self) -> Verdict:
        nxt, prv, steps_of, twin = self.nxt, self.prv, self.steps_of, self.twin
        seen: set[tuple[int, Value | None]] = set()
        stack: list[tuple[int, Value | None]] = []  # (invoke node, state before it)
        state: Value | None = None
        linearized = 0
        entry = nxt[0]
        countdown = _CLOCK_EVERY
        while entry != -1:
            countdown -= 1
            if countdown == 0:
                self.steps += _CLOCK_EVERY
                countdown = _CLOCK_EVERY
                if self.clock() > self.deadline:
                    return Verdict.UNKNOWN
            if entry & 1:  # an invoke: try to linearize op `entry >> 1` here
                op = entry >> 1
                earlier = twin[op]
                if earlier >= 0 and not (linearized >> earlier) & 1:
                    entry = nxt[entry]  # symmetry: its earlier twin goes first
                    continue
                code, a, b = steps_of[op]
                if code == _GET:
                    ok, new_state = state == a, state
                elif code == _PUT:
                    ok, new_state = True, a
                else:
                    ok, new_state = apply(steps_of[op], state)
                if ok:
                    new_linearized = linearized | (1 << op)
                    memo = (new_linearized, new_state)
                    if memo not in seen:
                        seen.add(memo)
                        stack.append((entry, state))
                        state, linearized = new_state, new_linearized
                        # Unlink the invoke and its completion (node entry + 1).
                        after = nxt[entry]
                        nxt[prv[entry]] = after
                        prv[after] = prv[entry]
                        done = entry + 1
                        after = nxt[done]
                        nxt[prv[done]] = after
                        if after != -1:
                            prv[after] = prv[done]
                        entry = nxt[0]
                        continue
                entry = nxt[entry]
                continue
            # A completion: its operation must already be linearized, and is not.
            if len(stack) > len(self.best) or self.blocked is None:
                self.best = [node >> 1 for node, _ in stack]
                self.blocked = (entry - 1) >> 1
            if not stack:
                self._count_rest(countdown)
                return Verdict.NOT_LINEARIZABLE
            entry, state = stack.pop()
            linearized &= ~(1 << (entry >> 1))
            # Relink in the reverse order of unlinking.
            done = entry + 1
            nxt[prv[done]] = done
            if nxt[done] != -1:
                prv[nxt[done]] = done
            nxt[prv[entry]] = entry
            prv[nxt[entry]] = entry
            entry = nxt[entry]
        self._count_rest(countdown)
        self.best = [node >> 1 for node, _ in stack]
        self.blocked = None
        return Verdict.LINEARIZABLE

    def _count_rest(self, countdown: int) -> None:
        self.steps += _CLOCK_EVERY - countdown


def _twins(ops: Sequence[Operation], steps_of: Sequence[Step]) -> list[int]:
    """For each info op, the identical info op invoked just before it (or -1).

    Symmetry reduction: two info ops with the same effect and no completion are
    interchangeable once both are invoked, so any linearization can use them in
    invoke order. The search only linearizes an info op after its earlier twin,
    which cuts the 2^k orders of k identical pending ops to one.
    """
    twin = [-1] * len(ops)
    last: dict[Step, int] = {}
    for i in sorted(range(len(ops)), key=lambda i: (ops[i].invoke, i)):
        if ops[i].outcome is Outcome.INFO:
            twin[i] = last.get(steps_of[i], -1)
            last[steps_of[i]] = i
    return twin


# --- counterexample minimization ----------------------------------------------------

def counterexample(failed: KeyResult, budget: float, clock: Clock = time.monotonic
                   ) -> Counterexample:
    """The minimized counterexample of a failed key, searched again for its own
    longest linearizable prefix (budget 0: the key's whole history as is)."""
    if budget <= 0:
        return Counterexample(failed.ops, failed.linearized, failed.blocked)
    ops = minimize(failed.ops, budget, clock)
    again = check_key(failed.key, ops, budget, clock)
    if again.verdict is not Verdict.NOT_LINEARIZABLE:  # cannot happen: minimize checked it
        return Counterexample(failed.ops, failed.linearized, failed.blocked)
    return Counterexample(ops, again.linearized, again.blocked)


def minimize(ops: Sequence[Operation], budget: float = 5.0,
             clock: Clock = time.monotonic) -> tuple[Operation, ...]:
    """Shrink a non-linearizable key history to a smaller one that is still not
    linearizable, using only reductions that cannot turn a linearizable history
    into a non-linearizable one (so the result is a proof of the original verdict):

    1. cut at the earliest instant T such that the history up to T already fails
       (linearizability is prefix-closed: operations still running at T become
       info, operations invoked after T are dropped);
    2. drop observations (gets, cas whose compare failed) one at a time while the
       rest still fails: an observation changes no state, so removing it from a
       linearizable history leaves a linearizable history.

    Stops improving when `budget` seconds are spent; checks that time out count
    as "does not fail", so the result is always a failing history.
    """
    deadline = clock() + budget
    current = tuple(relevant(ops))

    def fails(candidate: Sequence[Operation]) -> bool:
        remaining = deadline - clock()
        if remaining <= 0:
            return False
        search = _Search(candidate, clock() + remaining, clock)
        return search.run() is Verdict.NOT_LINEARIZABLE

    cuts = sorted({op.complete for op in current
                   if op.outcome is Outcome.OK and op.complete is not None})
    low, high = 0, len(cuts) - 1  # invariant: the prefix at cuts[high] fails (it is all of it)
    best = current
    while low < high:
        middle = (low + high) // 2
        candidate = prefix_at(current, cuts[middle])
        if fails(candidate):
            high, best = middle, candidate
        else:
            low = middle + 1
    current = best
    for op in list(current):
        if _is_observation(op):
            candidate = tuple(o for o in current if o is not op)
            if fails(candidate):
                current = candidate
    return current


def prefix_at(ops: Sequence[Operation], cut: float) -> tuple[Operation, ...]:
    """The history as it stood at instant `cut`: operations invoked later are
    dropped, operations still running become info (an info get is dropped)."""
    kept = []
    for op in ops:
        if op.invoke > cut:
            continue
        if op.effective_complete > cut:
            if op.kind is OpKind.GET:
                continue
            op = replace(op, outcome=Outcome.INFO, result=None, complete=None)
        kept.append(op)
    return tuple(kept)


def _is_observation(op: Operation) -> bool:
    if op.outcome is not Outcome.OK:
        return False
    return op.kind is OpKind.GET or (op.kind is OpKind.CAS and op.result is False)
