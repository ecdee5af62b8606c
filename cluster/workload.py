"""A recorded workload: K client threads issuing put / get / delete / cas on a
small key set, every operation written down the way `cluster.check` reads it.

    history = run_workload(endpoints, WorkloadOptions(clients=4, duration=30))
    save_jsonl(history.operations, path)          # docs/checking.md's JSON lines

Each thread owns its own `Client` (its own session, so writes are exactly-once)
and loops until the duration is over, the op budget is spent, or `stop` is set.
Every time comes from ONE clock (`time.monotonic` of this process, as seconds
since the workload started), so invoke/complete times of different threads are
comparable, which is what the checker's real-time order needs.

How an outcome is classified (the checker's three outcomes):

    ok    a definite answer: the op took effect (a get returned its value; a cas
          whose compare did not hold is ok with result false: it observed that)
    fail  a typed refusal before anything was proposed: InvalidRequestError,
          CompactedError. Definitely not applied.
    info  anything else: ClientTimeout (no definite answer), SessionExpiredError
          (the outcome of the last write is unknown; the client then opens a
          new session for its next write), an unreadable reply, a
          socket error. It may take effect at any later time, or never.

Values are unique per operation (`<process>.<n>`), so a read names the write it
saw. Keys are `<prefix>0 .. <prefix>(keys-1)`.
"""
from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import zmq

from cluster.check.history import Operation, OpKind, Outcome, Value
from cluster.client import (
    Client, ClientError, ClientTimeout, CompactedError, InvalidRequestError, SessionExpiredError,
)
from cluster.kv import Compare, Put

MIX = (("put", 0.30), ("get", 0.35), ("delete", 0.10), ("cas", 0.25))


@dataclass(frozen=True, slots=True)
class WorkloadOptions:
    clients: int = 4
    keys: int = 4
    duration: float = 30.0
    max_ops: int = 100_000  # in all, across clients
    op_timeout: float = 2.0  # the client's whole-call deadline: past it the op is info
    attempt_timeout: float = 0.5
    key_prefix: str = "chaos/k"
    seed: int = 0

    def check(self) -> None:
        if not 1 <= self.clients <= 64:
            raise ValueError(f"clients must be 1..64, got {self.clients}")
        if not 1 <= self.keys <= 1000:
            raise ValueError(f"keys must be 1..1000, got {self.keys}")
        if not 0 < self.duration <= 24 * 3600:
            raise ValueError(f"duration must be in (0, 86400] s, got {self.duration}")
        if self.max_ops < 1:
            raise ValueError("max_ops must be >= 1")

    def key_names(self) -> list[str]:
        return [f"{self.key_prefix}{i}" for i in range(self.keys)]


@dataclass
class History:
    """What the clients saw. `clock()` gives times on the same scale as the ops."""

    started: float  # time.monotonic() at time 0 of the history
    operations: list[Operation] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def clock(self) -> float:
        return time.monotonic() - self.started

    def record(self, op: Operation) -> Operation:
        with self.lock:
            op = _with_id(op, len(self.operations))
            self.operations.append(op)
            return op


def _with_id(op: Operation, op_id: int) -> Operation:
    return Operation(op_id, op.process, op.kind, op.key, op.invoke, op.complete, op.outcome, op.value,
                     op.expected, op.result, op.revision)


@dataclass(frozen=True, slots=True)
class Call:
    kind: OpKind
    key: str
    value: Value | None = None
    expected: Value | None = None


def perform(client: Client, call: Call) -> tuple[Outcome, Value | bool | None, int | None]:
    """Run one call; (outcome, result, revision) as the checker wants them."""
    try:
        match call.kind:
            case OpKind.PUT:
                assert isinstance(call.value, str)
                return Outcome.OK, None, client.put(call.key, call.value).revision
            case OpKind.GET:
                got = client.range(call.key)
                value = got.kvs[0].value.decode() if got.kvs else None
                return Outcome.OK, value, got.revision
            case OpKind.DELETE:
                deleted = client.delete(call.key)
                return Outcome.OK, deleted.deleted, deleted.revision
            case OpKind.CAS:
                assert isinstance(call.value, str)
                key = call.key.encode()
                compare = (Compare.version(key, "=", 0) if call.expected is None
                           else Compare.value(key, "=", str(call.expected).encode()))
                txn = client.txn([compare], [Put(key, call.value.encode())])
                return Outcome.OK, txn.succeeded, txn.revision
    except (InvalidRequestError, CompactedError):
        return Outcome.FAIL, None, None
    except SessionExpiredError:
        client.client_id = 0  # the next write opens a new session instead of failing forever
        return Outcome.INFO, None, None
    except (ClientError, zmq.ZMQError):  # ClientTimeout, SessionExpiredError, UnexpectedReply
        return Outcome.INFO, None, None
    raise AssertionError(call.kind)


def timed(history: History, process: int | str, client: Client, call: Call) -> Operation:
    """Perform `call` and record it with invoke/complete times from the history's clock."""
    invoke = history.clock()
    outcome, result, revision = perform(client, call)
    complete = history.clock()
    return history.record(Operation(
        0, process, call.kind, call.key, invoke, None if outcome is Outcome.INFO else complete, outcome,
        call.value, call.expected, result if outcome is Outcome.OK else None,
        revision if outcome is Outcome.OK else None))


class Generator:
    """One client's next call: a seeded mix; a cas expects the value this client last saw."""

    def __init__(self, process: int, keys: Sequence[str], rng: random.Random) -> None:
        self.process = process
        self.keys = list(keys)
        self.rng = rng
        self.count = 0
        self.seen: dict[str, Value | None] = {}

    def next(self) -> Call:
        self.count += 1
        key = self.rng.choice(self.keys)
        kind = self.rng.choices([k for k, _ in MIX], [w for _, w in MIX])[0]
        value = f"{self.process}.{self.count}"
        match kind:
            case "put":
                return Call(OpKind.PUT, key, value)
            case "get":
                return Call(OpKind.GET, key)
            case "delete":
                return Call(OpKind.DELETE, key)
        return Call(OpKind.CAS, key, value, self.seen.get(key))

    def observe(self, op: Operation) -> None:
        if op.outcome is not Outcome.OK:
            return
        if op.kind is OpKind.GET:
            self.seen[op.key] = op.result  # type: ignore[assignment]
        elif op.kind is OpKind.PUT or (op.kind is OpKind.CAS and op.result is True):
            self.seen[op.key] = op.value
        elif op.kind is OpKind.DELETE:
            self.seen[op.key] = None


class Workload:
    """Start with `start()`, end with `stop()` + `join()`, or just `run()`."""

    def __init__(self, endpoints: Sequence[str], options: WorkloadOptions,
                 history: History | None = None,
                 client_factory: Callable[[Sequence[str], WorkloadOptions], Client] | None = None) -> None:
        options.check()
        self.endpoints = list(endpoints)
        self.options = options
        self.history = history or History(time.monotonic())
        self.client_factory = client_factory or _client
        self.stopping = threading.Event()
        self.threads: list[threading.Thread] = []
        self.budget = threading.Semaphore(options.max_ops)
        self.errors: list[BaseException] = []
        self.budget_spent = False
        self.last_exit = 0.0  # history time at which the last client thread ended

    def start(self) -> None:
        self.deadline = time.monotonic() + self.options.duration
        for process in range(self.options.clients):
            thread = threading.Thread(target=self._client_loop, args=(process,), daemon=True,
                                      name=f"workload-{process}")
            self.threads.append(thread)
            thread.start()

    def stop(self) -> None:
        self.stopping.set()

    def join(self, timeout: float | None = None) -> None:
        """Wait for the threads: each ends within one op_timeout of `stop()`."""
        limit = timeout if timeout is not None else self.options.op_timeout * 3 + 5
        end = time.monotonic() + limit
        for thread in self.threads:
            thread.join(max(0.0, end - time.monotonic()))
        if self.errors:
            raise RuntimeError(f"a workload thread failed: {self.errors[0]!r}") from self.errors[0]

    def run(self) -> History:
        self.start()
        self.join(self.options.duration + self.options.op_timeout * 3 + 5)
        return self.history

    def _client_loop(self, process: int) -> None:
        rng = random.Random(f"{self.options.seed}/{process}")
        generator = Generator(process, self.options.key_names(), rng)
        client = self.client_factory(self.endpoints, self.options)
        try:
            while not self.stopping.is_set() and time.monotonic() < self.deadline:
                if not self.budget.acquire(blocking=False):
                    self.budget_spent = True
                    return
                generator.observe(timed(self.history, process, client, generator.next()))
        except BaseException as error:  # recorded and re-raised by join(): never swallowed
            self.errors.append(error)
        finally:
            client.close()
            self.last_exit = max(self.last_exit, self.history.clock())


def _client(endpoints: Sequence[str], options: WorkloadOptions) -> Client:
    return Client(endpoints, timeout=options.op_timeout, attempt_timeout=options.attempt_timeout)


def final_reads(endpoints: Sequence[str], keys: Sequence[str], history: History, process: str = "final",
                timeout: float = 10.0) -> dict[str, Value | None]:
    """A linearizable read of each key (after healing), recorded in the history too;
    the values for `direct.lost_writes`. Raises ClientTimeout if a read has no answer."""
    client = Client(endpoints, timeout=timeout, attempt_timeout=1.0)
    final: dict[str, Value | None] = {}
    try:
        for key in keys:
            op = timed(history, process, client, Call(OpKind.GET, key))
            if op.outcome is not Outcome.OK:
                raise ClientTimeout(f"final read of {key}: {op.outcome.value}")
            final[key] = op.result  # type: ignore[assignment]
    finally:
        client.close()
    return final
