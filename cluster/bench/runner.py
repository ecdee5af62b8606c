"""The parent side of a run: find the cluster and its leader, pick each client's
endpoints for `--target`, start the load processes, show progress, collect their
results. Every wait is bounded; the processes are ours (multiprocessing children)
and are ended by their own handles if they overrun.
"""
from __future__ import annotations

import multiprocessing
import queue
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import zmq

from cluster.bench.killer import Kill, LeaderKiller
from cluster.bench.options import BenchOptions
from cluster.bench.worker import READY_TIMEOUT, Shared, worker_main
from cluster.client import Client, ClientError
from cluster.curve_keys import CurveClient

KILL_JOIN = 20.0  # a kill command in progress when the run ends: at most KILL_TIMEOUT
GRACE = 30.0  # past the duration + one op timeout: the parent stops waiting


class BenchError(Exception):
    """The run could not start or finish (exit 1)."""


@dataclass(frozen=True, slots=True)
class ClusterView:
    endpoints: list[str]
    leader: str | None  # the leader's client endpoint, when one answered as leader
    roles: dict[str, str]  # endpoint -> role, or "unreachable"


def survey(endpoints: list[str], timeout: float = 1.0, curve: CurveClient | None = None) -> ClusterView:
    """Ask every endpoint for its status once (`curve`: a [curve] cluster's keys)."""
    roles: dict[str, str] = {}
    leader = None
    with Client(endpoints, timeout=timeout, attempt_timeout=timeout, curve=curve) as client:
        for endpoint in endpoints:
            try:
                status = client.status(endpoint, timeout)
            except (ClientError, zmq.ZMQError):
                roles[endpoint] = "unreachable"
                continue
            roles[endpoint] = str(status.get("role"))
            if status.get("role") == "leader":
                leader = endpoint
    return ClusterView(list(endpoints), leader, roles)


def client_endpoints(view: ClusterView, target: str, clients: int) -> list[list[str]]:
    """Each client's endpoint list, first = where it starts. The others stay in the
    list so a client can still fail over; writes follow the leader's redirects."""
    eps = view.endpoints
    if target == "leader":
        if view.leader is None:
            raise BenchError("no leader answered; is the cluster up? (python -m supervisor status)")
        first = [view.leader]
    elif target == "followers":
        first = [e for e in eps if e != view.leader and view.roles.get(e) != "unreachable"]
        if not first:
            raise BenchError("--target followers: no follower answered")
    else:
        first = [e for e in eps if view.roles.get(e) != "unreachable"] or eps
    out = []
    for i in range(clients):
        head = first[i % len(first)]
        out.append([head] + [e for e in eps if e != head])
    return out


def split_budget(ops: int | None, clients: int) -> list[int | None]:
    """`ops` dealt to `clients` as evenly as possible (they add up to `ops`)."""
    if ops is None:
        return [None] * clients
    base, extra = divmod(ops, clients)
    return [base + (1 if i < extra else 0) for i in range(clients)]


Progress = Callable[[str, int, float], None]  # (phase, completed ops, elapsed s)


def run(options: BenchOptions, view: ClusterView,
        progress: Progress | None = None) -> tuple[list[dict[str, Any]], float, list[Kill]]:
    """Run the load; the workers' result dicts, the measured wall time (s) and the
    leader kills (--kill-leader)."""
    ctx = multiprocessing.get_context("spawn")
    shared = Shared(ready=ctx.Value("i", 0), go=ctx.Event(), stop=ctx.Event(), t0=ctx.Value("d", 0.0),
                    done=ctx.RawArray("q", options.processes))
    results = ctx.Queue()
    endpoints = client_endpoints(view, options.target, options.clients)
    budgets = split_budget(options.ops, options.clients)
    n = options.in_flight
    procs = [ctx.Process(target=worker_main, name=f"bench-load-{i}", daemon=True,
                         args=(i, options, endpoints[i * n:(i + 1) * n], budgets[i * n:(i + 1) * n], i * n,
                               options.clients, shared, results))
             for i in range(options.processes)]
    for proc in procs:
        proc.start()
    try:
        return _drive(options, shared, results, procs, progress)
    finally:
        shared.stop.set()
        for proc in procs:
            proc.join(5)
            if proc.is_alive():
                proc.kill()  # ours, by handle
                proc.join(5)


def _drive(options: BenchOptions, shared: Shared, results: Any, procs: list[Any],
           progress: Progress | None) -> tuple[list[dict[str, Any]], float, list[Kill]]:
    started = time.monotonic()
    while shared.ready.value < len(procs):
        if time.monotonic() - started > READY_TIMEOUT:
            raise BenchError(f"the load processes were not ready within {READY_TIMEOUT:g} s")
        if any(p.exitcode not in (None, 0) for p in procs):
            raise BenchError("a load process died while connecting (see its traceback above)")
        if progress:
            progress("prefill" if options.prefill and options.workload != "put" else "connect", 0, 0.0)
        time.sleep(0.05)
    shared.t0.value = t0 = time.monotonic()
    shared.go.set()
    killer = LeaderKiller(options.kill_leader, options.kill_interval, t0)
    thread = killer.start() if options.kill_leader else None
    try:
        collected = _collect(options, shared, results, procs, progress, t0)
    finally:
        killer.stop.set()
        if thread is not None:
            thread.join(KILL_JOIN)
    failed = [r["setup_error"] for r in collected if r.get("setup_error")]
    if failed:
        raise BenchError(failed[0])
    wall = max((r["last"] for r in collected), default=0.0)
    if progress:
        progress("done", sum(r["completed"] for r in collected), wall)
    return sorted(collected, key=lambda r: r["process"]), wall, list(killer.kills)


def _collect(options: BenchOptions, shared: Shared, results: Any, procs: list[Any], progress: Progress | None,
             t0: float) -> list[dict[str, Any]]:
    limit = options.duration + options.timeout + GRACE
    collected: list[dict[str, Any]] = []
    while len(collected) < len(procs):
        elapsed = time.monotonic() - t0
        if elapsed > limit:
            raise BenchError(f"the load processes did not finish within {limit:g} s")
        if progress:
            progress("run", sum(shared.done), elapsed)
        try:
            collected.append(results.get(timeout=0.1))
        except queue.Empty:
            if any(p.exitcode not in (None, 0) for p in procs):
                raise BenchError("a load process died (see its traceback above)") from None
    return collected
