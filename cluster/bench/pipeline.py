"""`--pipeline`: one DEALER socket per load process, `in_flight` requests outstanding
on it, no threads: a cheaper load generator than one thread + `Client` per request.

Each in-flight slot is its own client session (opened before the run), so writes
still carry (client_id, seq) as the normal client's do; seq only grows, and a gap
left by a timed-out write is legal (docs/statemachine.md: seq > last applied).
What it gives up, on purpose, is the client's per-request retry logic: anything
but an answer is counted as an error by name (`InvalidRequestError`,
`ClientTimeout` after `--timeout`...). One thing it does follow, as the threaded
client does: a leader change. With a `LeaderFollower` (the bench passes one for
the leader target), a `not-leader` / `no-leader-yet` answer or a timed-out
request starts an *interruption*: the pipeline finds the leader (the answer's
hint, else every member's status), moves its socket there and sends the
requests it lost again (a write keeps its (client_id, seq), so it is applied at
most once). The interruption ends with the next answer; the tally keeps each
one's length, and the lost requests are not errors: one election does not turn
every later operation into a failure (issue 20). Their latency counts from their
first send, so the interruption shows in the percentiles.
"""
from __future__ import annotations

import itertools
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import zmq

from cluster.bench.options import BenchOptions
from cluster.bench.tally import INTERVAL, WRITE_KINDS, ThreadTally
from cluster.curve_keys import CurveClient
from cluster.client import Client, ClientError
from cluster.kv import OpenSession, Put, Range, SessionOpened, decode_result, encode_command, prefix_end
from cluster.protocol import (
    MAX_BATCH,
    ErrorCode,
    ErrorReply,
    KvReply,
    KvRequest,
    ProtocolError,
    decode_replies,
    encode_requests,
)

ERROR_NAMES = {"invalid-request": "InvalidRequestError", "compacted": "CompactedError",
               "session-expired": "SessionExpiredError"}

_EVENTS, _POLLIN = int(zmq.EVENTS), int(zmq.POLLIN)  # plain ints: no Enum call per `&`


class PipelineError(Exception):
    """The pipeline could not set up its sessions."""


#: Answers that say the request was not run because this member is not the leader.
LEADER_CODES = frozenset({ErrorCode.NOT_LEADER, ErrorCode.NO_LEADER_YET})
#: Seconds between looks for a leader while none answers.
FOLLOW_PAUSE = 0.1


@dataclass(slots=True)
class Slot:
    client_id: int = 0
    seq: int = 0
    kind: str = ""
    sent: float = 0.0  # this attempt's send time (what the timeout is counted from)
    started: float = 0.0  # the first attempt's send time (what the latency is counted from)
    command: bytes = b""
    serializable: bool = False


class Pipeline:
    """One socket; `send(slot, kind, command, serializable)` and `collect(...)`."""

    def __init__(self, endpoint: str, slots: int, curve: CurveClient | None = None) -> None:
        """`curve`: the members' keys of a [curve] cluster (the socket is then a
        CURVE client of the member at `endpoint`)."""
        self.ctx = zmq.Context(io_threads=1)
        self.curve = curve
        self.endpoint = endpoint
        self.sock = self._connect(endpoint)
        self.slots = [Slot() for _ in range(slots)]
        self.pending: dict[int, Slot] = {}
        self.outgoing: list[Any] = []  # requests to send in one frame at the next flush
        self._ids = itertools.count(int.from_bytes(os.urandom(6), "big") << 16)

    def _connect(self, endpoint: str) -> zmq.Socket[bytes]:
        sock = self.ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.SNDHWM, 100_000)
        sock.setsockopt(zmq.RCVHWM, 100_000)
        if self.curve is not None:
            self.curve.secure(sock, endpoint)
        sock.connect(endpoint)
        return sock

    def switch(self, endpoint: str) -> list[Slot]:
        """Move to `endpoint` (a new socket: answers to the old one are lost with it);
        return the slots whose requests were pending, to be sent again."""
        self.sock.close(linger=0)
        self.endpoint = endpoint
        self.sock = self._connect(endpoint)
        self.outgoing = []
        lost = list(self.pending.values())
        self.pending.clear()
        return lost

    def send(self, slot: Slot, kind: str, command: bytes, serializable: bool = False) -> None:
        """Queue a request; `flush` sends every queued one in one frame (the node
        answers a batch in as few frames: see cluster.protocol)."""
        request_id = next(self._ids)
        slot.kind, slot.sent = kind, time.monotonic()
        slot.started, slot.command, slot.serializable = slot.sent, command, serializable
        self.pending[request_id] = slot
        self.outgoing.append(KvRequest(request_id, command, serializable))
        if len(self.outgoing) >= MAX_BATCH:
            self.flush()

    def flush(self) -> None:
        if self.outgoing:
            self.sock.send(encode_requests(self.outgoing))
            self.outgoing = []

    def replies(self, wait_s: float) -> list[tuple[Slot, Any]]:
        """(slot, reply) for every reply to a pending request that arrives within wait_s."""
        self.flush()
        out: list[tuple[Slot, Any]] = []
        if not self.sock.poll(max(0, int(wait_s * 1000)), zmq.POLLIN):
            return out
        sock = self.sock
        while True:
            try:
                data = sock.recv(zmq.NOBLOCK)
            except zmq.Again:
                return out
            try:
                replies = decode_replies(data)
            except ProtocolError:
                replies = []
            for reply in replies:
                slot = self.pending.pop(reply.request_id, None)
                if slot is not None:  # else: the answer to a request already counted as timed out
                    out.append((slot, reply))
            if not sock.get(_EVENTS) & _POLLIN:  # nothing more queued: no zmq.Again to raise
                return out

    def resend(self, slot: Slot) -> None:
        """Send `slot`'s request again (same command: a write keeps its seq); its
        latency still counts from the first attempt."""
        started = slot.started
        self.send(slot, slot.kind, slot.command, slot.serializable)
        slot.started = started

    def expired(self, timeout: float) -> list[Slot]:
        now = time.monotonic()
        late = [rid for rid, slot in self.pending.items() if now - slot.sent > timeout]
        return [self.pending.pop(rid) for rid in late]

    def open_sessions(self, timeout: float) -> None:
        for slot in self.slots:
            self.send(slot, "open", encode_command(OpenSession()))
        deadline = time.monotonic() + timeout
        while self.pending and time.monotonic() < deadline:
            for slot, reply in self.replies(0.05):
                if not isinstance(reply, KvReply):
                    raise PipelineError(f"opening a session: {getattr(reply, 'code', reply)!s}: "
                                        f"{getattr(reply, 'reason', '')}")
                result = decode_result(reply.result)
                if not isinstance(result, SessionOpened):
                    raise PipelineError(f"opening a session: unexpected {result!r}")
                slot.client_id = result.client_id
        if self.pending:
            raise PipelineError(f"{len(self.pending)} session(s) not opened within {timeout:g} s")

    def close(self) -> None:
        self.sock.close(linger=0)
        self.ctx.term()


class LeaderFollower:
    """Where the leader is now: the hint of a not-leader answer, else the first
    member whose status says leader (one status request each)."""

    def __init__(self, endpoints: list[str], curve: CurveClient | None = None, timeout: float = 0.5) -> None:
        self.endpoints = endpoints
        self.curve = curve
        self.timeout = timeout

    def locate(self, hint: str = "") -> str | None:
        if hint:
            return hint
        with Client(self.endpoints, timeout=self.timeout, attempt_timeout=self.timeout, curve=self.curve) as client:
            for endpoint in self.endpoints:
                try:
                    if client.status(endpoint, self.timeout).get("role") == "leader":
                        return endpoint
                except (ClientError, zmq.ZMQError):
                    continue
        return None


Request = tuple[str, bytes, bool]  # kind, command, serializable


def make_request(options: BenchOptions, rng: random.Random) -> Callable[[Slot], Request]:
    value = rng.randbytes(options.value_size)
    end = prefix_end(options.key_prefix.encode())

    def put(slot: Slot) -> Request:
        slot.seq += 1
        return "put", encode_command(Put(options.key(rng.randrange(options.keys)), value),
                                     slot.client_id, slot.seq), False

    def get(slot: Slot) -> Request:
        return "get", encode_command(Range(options.key(rng.randrange(options.keys)))), options.serializable

    def range_(slot: Slot) -> Request:
        key = options.key(rng.randrange(options.keys))
        return "range", encode_command(Range(key, end, limit=options.range_limit)), options.serializable

    def mixed(slot: Slot) -> Request:
        return get(slot) if rng.random() < options.read_ratio else put(slot)

    return {"put": put, "get": get, "range": range_, "mixed": mixed}[options.workload]


def pump(pipe: Pipeline, request: Callable[[Slot], Request], budget: int | None, t0: float,
         duration: float, timeout: float, stopped: Callable[[], bool], tally: ThreadTally,
         follower: LeaderFollower | None = None) -> None:
    """Keep every slot busy until the budget or the deadline; count each answer.
    With `follower`, follow a leader change (module docstring)."""
    deadline = t0 + duration
    remaining = [budget]
    lost: list[Slot] = []  # requests of an interruption, waiting for a leader
    interrupted = [0.0]  # when the interruption in progress began (0: none)

    def issue(slot: Slot) -> None:
        if remaining[0] == 0 or stopped() or time.monotonic() >= deadline:
            return
        if remaining[0] is not None:
            remaining[0] -= 1
        kind, command, serializable = request(slot)
        pipe.send(slot, kind, command, serializable)

    def finish(slot: Slot, error: str) -> None:
        ended = time.monotonic()
        if error:
            tally.errors[error] += 1
        else:
            if interrupted[0]:
                tally.interruptions.append(ended - interrupted[0])
                interrupted[0] = 0.0
            tally.latency.record(round((ended - slot.started) * 1e6))
            tally.kinds[slot.kind] += 1
            if tally.ok_write_times is not None and slot.kind in WRITE_KINDS:
                tally.ok_write_times.append(ended - t0)
        tally.completed += 1
        tally.last = ended - t0
        tally.timeline[int(tally.last / INTERVAL)] += 1
        issue(slot)

    for slot in pipe.slots:
        issue(slot)
    while pipe.pending or lost:
        hint = ""
        for slot, reply in pipe.replies(0.05):
            if follower is not None and isinstance(reply, ErrorReply) and reply.code in LEADER_CODES:
                lost.append(slot)
                hint = hint or reply.leader_client
                continue
            code = getattr(getattr(reply, "code", None), "value", "unexpected")
            finish(slot, "" if isinstance(reply, KvReply) else ERROR_NAMES.get(code, f"ErrorReply:{code}"))
        for slot in pipe.expired(timeout):
            if follower is None:
                finish(slot, "ClientTimeout")
            else:
                lost.append(slot)
        if lost and follower is not None:
            _follow(pipe, follower, hint, lost, interrupted, deadline + timeout, finish)


def _follow(pipe: Pipeline, follower: LeaderFollower, hint: str, lost: list[Slot], interrupted: list[float],
            give_up: float, finish: Callable[[Slot, str], None]) -> None:
    """An interruption: find the leader, move there, send the lost requests again.
    Past `give_up` (the run's deadline plus one timeout) they count as errors."""
    now = time.monotonic()
    if not interrupted[0]:
        interrupted[0] = now
    if now >= give_up:
        for slot in lost:
            finish(slot, "LeaderChange")
        lost.clear()
        return
    leader = follower.locate(hint)
    if leader is None:
        time.sleep(FOLLOW_PAUSE)
        return
    if leader != pipe.endpoint:
        lost.extend(pipe.switch(leader))
    elif not hint:
        time.sleep(FOLLOW_PAUSE)  # a slow leader, not a new one: do not hammer it
    for slot in lost:
        pipe.resend(slot)
    lost.clear()
