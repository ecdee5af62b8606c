"""One PySyncObj node for `compare`, and its load generator (run only in the leader).

    python -m cluster.bench.compare.syncobj_node SELF PARTNER [PARTNER ...] --journal FILE

It is driven over stdin/stdout, one JSON object a line: `{"cmd": "status"}` answers
whether this node is ready and who leads; `{"cmd": "run", ...}` runs one workload
here and answers its figures; `{"cmd": "quit"}` (or end of stdin) ends the process.

Why the load runs in the leader: PySyncObj has no client protocol, a replicated
method is called on a node object; calling it where it commits costs no client hop.
`callback=` makes each call asynchronous, so a closed loop keeps `clients` commands
in flight (each completion issues the next). Batching is off
(`appendEntriesUseBatch=False`): with it on, a command waits for the next 100 ms
append period. Durability: PySyncObj writes its journal file and never fsyncs it.
Reads: `get-ser` reads the leader's own dict (local, not linearizable, no network);
`get-lin` calls a replicated method, i.e. a read through the log (a log write).
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import threading
import time
from typing import Any

from cluster.bench.histogram import Histogram

MAX_OPS = 50_000_000  # every loop is bounded in count as well as in time
PREFILL_TIMEOUT = 30.0


def make_store(self_addr: str, partners: list[str], journal: str | None) -> Any:
    from pysyncobj import SyncObj, SyncObjConf, replicated  # type: ignore[import-not-found, unused-ignore]

    class Store(SyncObj):  # type: ignore[misc, unused-ignore]
        def __init__(self) -> None:
            conf = SyncObjConf(appendEntriesUseBatch=False, journalFile=journal, dynamicMembershipChange=False)
            super().__init__(self_addr, partners, conf)
            self.data: dict[str, bytes] = {}

        @replicated  # type: ignore[misc, untyped-decorator, unused-ignore]
        def put(self, key: str, value: bytes) -> None:
            self.data[key] = value

        @replicated  # type: ignore[misc, untyped-decorator, unused-ignore]
        def read(self, key: str) -> bytes | None:
            return self.data.get(key)

    return Store()


def closed_loop(call: Any, clients: int, duration: float, keys: int, value: bytes,
                budget: int = MAX_OPS) -> dict[str, Any]:
    """`clients` replicated calls in flight until `duration` passes or `budget` calls."""
    hist = Histogram()
    errors = 0
    lock = threading.RLock()  # a full queue calls the callback at once, inside issue()
    idle = threading.Event()
    rng = random.Random(1)
    t0 = time.monotonic()
    deadline = t0 + duration
    state = {"in_flight": 0, "issued": 0, "last": t0}

    def issue() -> None:
        # Called with `lock` held.
        if time.monotonic() >= deadline or state["issued"] >= budget:
            if state["in_flight"] == 0:
                idle.set()
            return
        state["in_flight"] += 1
        state["issued"] += 1
        sent = time.monotonic()
        key = f"bench/{rng.randrange(keys):08d}"

        def done(result: Any, error: Any) -> None:
            nonlocal errors
            now = time.monotonic()
            with lock:
                state["in_flight"] -= 1
                state["last"] = now
                if error == 0:  # FAIL_REASON.SUCCESS
                    hist.record(round((now - sent) * 1e6))
                else:
                    errors += 1
                issue()

        call(key, value, done)

    with lock:
        for _ in range(clients):
            issue()
    idle.wait(duration + 30)
    with lock:
        return {"hist": hist, "errors": errors, "elapsed": state["last"] - t0}


def local_reads(store: Any, duration: float, keys: int) -> dict[str, Any]:
    hist = Histogram()
    rng = random.Random(1)
    t0 = time.monotonic()
    deadline = t0 + duration
    now = t0
    for _ in range(MAX_OPS):
        key = f"bench/{rng.randrange(keys):08d}"
        began = time.monotonic()
        if began >= deadline:
            break
        store.data.get(key)
        now = time.monotonic()
        hist.record(round((now - began) * 1e6))
    return {"hist": hist, "errors": 0, "elapsed": now - t0}


def prefill(store: Any, cmd: dict[str, Any]) -> dict[str, Any]:
    """Every key once, `clients` at a time (before a read workload; not measured)."""
    keys, value = int(cmd["keys"]), b"v" * int(cmd["value_size"])
    order = iter(range(keys))
    out = closed_loop(lambda k, v, cb: store.put(f"bench/{next(order, 0):08d}", v, callback=cb),
                      int(cmd["clients"]), PREFILL_TIMEOUT, keys, value, budget=keys)
    return {"ok": out["hist"].total, "errors": out["errors"]}


def run(store: Any, cmd: dict[str, Any]) -> dict[str, Any]:
    keys, clients, duration = int(cmd["keys"]), int(cmd["clients"]), float(cmd["duration"])
    value = b"v" * int(cmd["value_size"])
    cpu, term = time.process_time(), store.getStatus()["raft_term"]
    if cmd["op"] == "put":
        out = closed_loop(lambda k, v, cb: store.put(k, v, callback=cb), clients, duration, keys, value)
    elif not cmd.get("serializable"):
        out = closed_loop(lambda k, v, cb: store.read(k, callback=cb), clients, duration, keys, value)
    else:
        out = local_reads(store, duration, keys)
    hist: Histogram = out["hist"]
    return {"ok": hist.total, "errors": out["errors"], "elapsed_s": out["elapsed"],
            "latency": hist.to_dict(), "process_cpu_s": time.process_time() - cpu,
            "terms": store.getStatus()["raft_term"] - term}  # > 0: an election happened during the run


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m cluster.bench.compare.syncobj_node")
    p.add_argument("self_addr")
    p.add_argument("partners", nargs="+")
    p.add_argument("--journal", default=None)
    args = p.parse_args(argv)
    store = make_store(args.self_addr, args.partners, args.journal)
    for line in sys.stdin:
        cmd = json.loads(line)
        if cmd["cmd"] == "quit":
            break
        if cmd["cmd"] == "status":
            leader = store._getLeader()
            answer: dict[str, Any] = {"ready": bool(store.isReady()), "self": args.self_addr,
                                      "leader": None if leader is None else str(getattr(leader, "address", leader))}
        elif cmd["cmd"] == "prefill":
            answer = prefill(store, cmd)
        else:
            answer = run(store, cmd)
        print(json.dumps(answer), flush=True)
    store.destroy()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
