"""`--pipeline`: one DEALER socket per load process, `in_flight` requests outstanding
on it, no threads: a cheaper load generator than one thread + `Client` per request.

Each in-flight slot is its own client session (opened before the run), so writes
still carry (client_id, seq) as the normal client's do; seq only grows, and a gap
left by a timed-out write is legal (docs/statemachine.md: seq > last applied).
What it gives up, on purpose, is the client's retry logic: a request gets exactly
one attempt at the endpoint the process was given, and anything but an answer is
counted as an error by name (`ErrorReply:not-leader`, `ClientTimeout` after
`--timeout`). So point it at the leader for writes and linearizable reads (the
default target); an error count says when it was not.
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
from cluster.kv import OpenSession, Put, Range, SessionOpened, decode_result, encode_command, prefix_end
from cluster.protocol import MAX_BATCH, KvReply, KvRequest, ProtocolError, decode_replies, encode_requests

ERROR_NAMES = {"invalid-request": "InvalidRequestError", "compacted": "CompactedError",
               "session-expired": "SessionExpiredError"}


class PipelineError(Exception):
    """The pipeline could not set up its sessions."""


@dataclass(slots=True)
class Slot:
    client_id: int = 0
    seq: int = 0
    kind: str = ""
    sent: float = 0.0


class Pipeline:
    """One socket; `send(slot, kind, command, serializable)` and `collect(...)`."""

    def __init__(self, endpoint: str, slots: int, curve: CurveClient | None = None) -> None:
        """`curve`: the members' keys of a [curve] cluster (the socket is then a
        CURVE client of the member at `endpoint`)."""
        self.ctx = zmq.Context(io_threads=1)
        self.sock = self.ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.SNDHWM, 100_000)
        self.sock.setsockopt(zmq.RCVHWM, 100_000)
        if curve is not None:
            curve.secure(self.sock, endpoint)
        self.sock.connect(endpoint)
        self.slots = [Slot() for _ in range(slots)]
        self.pending: dict[int, Slot] = {}
        self.outgoing: list[Any] = []  # requests to send in one frame at the next flush
        self._ids = itertools.count(int.from_bytes(os.urandom(6), "big") << 16)

    def send(self, slot: Slot, kind: str, command: bytes, serializable: bool = False) -> None:
        """Queue a request; `flush` sends every queued one in one frame (the node
        answers a batch in as few frames: see cluster.protocol)."""
        request_id = next(self._ids)
        slot.kind, slot.sent = kind, time.monotonic()
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
        while True:
            try:
                data = self.sock.recv(zmq.NOBLOCK)
            except zmq.Again:
                return out
            try:
                replies = decode_replies(data)
            except ProtocolError:
                continue
            for reply in replies:
                slot = self.pending.pop(reply.request_id, None)
                if slot is not None:  # else: the answer to a request already counted as timed out
                    out.append((slot, reply))

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
         duration: float, timeout: float, stopped: Callable[[], bool], tally: ThreadTally) -> None:
    """Keep every slot busy until the budget or the deadline; count each answer."""
    deadline = t0 + duration
    remaining = [budget]

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
            tally.latency.record(round((ended - slot.sent) * 1e6))
            tally.kinds[slot.kind] += 1
            if tally.ok_write_times is not None and slot.kind in WRITE_KINDS:
                tally.ok_write_times.append(ended - t0)
        tally.completed += 1
        tally.last = ended - t0
        tally.timeline[int(tally.last / INTERVAL)] += 1
        issue(slot)

    for slot in pipe.slots:
        issue(slot)
    while pipe.pending:
        for slot, reply in pipe.replies(0.05):
            code = getattr(getattr(reply, "code", None), "value", "unexpected")
            finish(slot, "" if isinstance(reply, KvReply) else ERROR_NAMES.get(code, f"ErrorReply:{code}"))
        for slot in pipe.expired(timeout):
            finish(slot, "ClientTimeout")
