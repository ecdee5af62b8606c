"""The lock and election recipes (cluster/concurrency.py) with real OS processes
contending on a real cluster: never two holders at once, a SIGKILLed holder
releases after its TTL, resign hands over, a killed leader's candidacy expires.
Every process is started here and ended by pid."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from node.localcluster import LocalCluster, wait_for

pytestmark = pytest.mark.timeout(180)

MakeCluster = Callable[..., LocalCluster]

#: A contender: `rounds` times, take the lock, then in the critical section
#: append an enter record, do a non-atomic read-modify-write of a counter, append
#: an exit record; records carry CLOCK_MONOTONIC (system-wide on Linux).
CONTENDER = r"""
import json, os, sys, time
from cluster.client import Client
from cluster.concurrency import Mutex, Session
endpoints, name, log, rounds = sys.argv[1].split(","), sys.argv[2], sys.argv[3], int(sys.argv[4])
def record(kind, key):
    with open(log, "a") as f:
        f.write(json.dumps({"pid": os.getpid(), "kind": kind, "t": time.monotonic(), "key": key}) + "\n")
with Client(endpoints, timeout=30) as client, Session(client, ttl=5) as session:
    mutex = Mutex(client, session, name)
    for _ in range(rounds):
        mutex.lock(timeout=60)
        record("enter", mutex.key.decode())
        kv = client.get("counter")
        value = int(kv.value) if kv else 0
        time.sleep(0.05)
        client.put("counter", str(value + 1))
        record("exit", mutex.key.decode())
        mutex.unlock()
"""

#: The same critical section as a COMMAND run by `python -m cluster lock`.
CRITICAL = r"""
import json, os, sys, time
from cluster.client import Client
log, endpoints = sys.argv[1], sys.argv[2].split(",")
def record(kind):
    with open(log, "a") as f:
        f.write(json.dumps({"pid": os.getppid(), "kind": kind, "t": time.monotonic(),
                            "key": os.environ["JANGADA_LOCK_KEY"]}) + "\n")
record("enter")
with Client(endpoints, timeout=30) as client:
    kv = client.get("counter")
    client.put("counter", str((int(kv.value) if kv else 0) + 1))
record("exit")
sys.exit(7)
"""


class Processes:
    """Processes started by one test; each ended by pid (SIGKILL) at teardown.
    stderr goes to a file per process (printed at teardown: pytest shows it on failure)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.procs: list[subprocess.Popen[str]] = []

    def start(self, *argv: str) -> subprocess.Popen[str]:
        with (self.root / f"stderr-{len(self.procs)}.txt").open("w") as err:
            proc = subprocess.Popen([sys.executable, *argv], stdout=subprocess.PIPE, stderr=err, text=True)
        self.procs.append(proc)
        return proc

    def stderr(self, proc: subprocess.Popen[str]) -> str:
        return (self.root / f"stderr-{self.procs.index(proc)}.txt").read_text()

    def cli(self, endpoints: str, *argv: str) -> subprocess.Popen[str]:
        return self.start("-m", "cluster", "--endpoints", endpoints, *argv)

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=30)
            if proc.stdout is not None:
                proc.stdout.close()
        for i, proc in enumerate(self.procs):
            print(f"----- process {i} {proc.args[1:5]} exit {proc.returncode} stderr -----")
            print(self.stderr(proc)[-3000:])


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Processes]:
    started = Processes(tmp_path)
    yield started
    started.close()


def endpoints_of(cluster: LocalCluster) -> str:
    return ",".join(cluster.spec.client_addresses())


def read_line(proc: subprocess.Popen[str], timeout: float, what: str) -> str:
    """The next stdout line of `proc` (deadline-bounded, via a reader thread)."""
    import threading
    box: list[str] = []
    reader = threading.Thread(target=lambda: box.append(proc.stdout.readline()), daemon=True)  # type: ignore[union-attr]
    reader.start()
    reader.join(timeout)
    if not box or not box[0]:
        raise AssertionError(f"no line from {what} within {timeout}s (exit {proc.poll()})")
    return box[0].rstrip("\n")


def test_contending_processes_never_hold_the_mutex_together(make_cluster: MakeCluster, procs: Processes,
                                                            tmp_path: Path) -> None:
    cluster = make_cluster(1)
    cluster.wait_for_leader()
    endpoints = endpoints_of(cluster)
    log = tmp_path / "holders.jsonl"
    contenders = [procs.start("-c", CONTENDER, endpoints, "mutex/jobs", str(log), "3") for _ in range(2)]
    by_cli = [procs.cli(endpoints, "lock", "--ttl", "5", "--wait", "60", "mutex/jobs", "--",
                        sys.executable, "-c", CRITICAL, str(log), endpoints) for _ in range(2)]
    for proc in contenders:
        assert proc.wait(timeout=120) == 0, procs.stderr(proc)
    for proc in by_cli:
        assert proc.wait(timeout=120) == 7, procs.stderr(proc)  # COMMAND's status
        assert proc.stdout.read().startswith("mutex/jobs/")  # type: ignore[union-attr]  # the lock key
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(records) == 2 * (2 * 3 + 2)
    # Records alternate enter/exit of one holder: nobody entered while another was inside.
    for enter, exit_ in zip(records[::2], records[1::2]):
        assert (enter["kind"], exit_["kind"]) == ("enter", "exit") and enter["key"] == exit_["key"], records
    intervals = sorted((r["t"], s["t"]) for r, s in zip(records[::2], records[1::2]))
    assert all(a_end <= b_start for (_, a_end), (b_start, _) in zip(intervals, intervals[1:]))
    client = cluster.client()
    assert client.get("counter").value == b"8"  # type: ignore[union-attr]  # no lost update
    assert client.range("mutex/jobs/", prefix=True).count == 0  # every holder released


def test_a_sigkilled_holder_releases_the_lock_after_its_ttl(make_cluster: MakeCluster, procs: Processes) -> None:
    cluster = make_cluster(1)
    cluster.wait_for_leader()
    endpoints = endpoints_of(cluster)
    client = cluster.client()
    holder = procs.cli(endpoints, "lock", "--ttl", "3", "mutex/k")
    holder_key = read_line(holder, 60, "the holder")
    assert holder_key.startswith("mutex/k/")
    waiter = procs.cli(endpoints, "lock", "--ttl", "3", "--wait", "60", "mutex/k", "--",
                       sys.executable, "-c", "print('got it')")
    wait_for(lambda: client.range("mutex/k/", prefix=True).count == 2, 60, "the waiter to queue")
    assert waiter.poll() is None  # queued behind the holder
    holder.kill()
    killed = time.monotonic()
    assert waiter.wait(timeout=60) == 0
    print(f"lock released {time.monotonic() - killed:.2f} s after the holder's SIGKILL (TTL 3 s)")
    out = waiter.stdout.read()  # type: ignore[union-attr]
    lines = out.splitlines()
    assert lines[0].startswith("mutex/k/") and lines[0] != holder_key and lines[1] == "got it"
    assert client.get(holder_key) is None


def test_election_resign_hands_over_and_a_killed_leader_expires(make_cluster: MakeCluster,
                                                               procs: Processes) -> None:
    cluster = make_cluster(1)
    cluster.wait_for_leader()
    endpoints = endpoints_of(cluster)
    client = cluster.client()
    observer = procs.cli(endpoints, "elect", "--count", "3", "election/e")
    first = procs.cli(endpoints, "elect", "--ttl", "3", "election/e", "alpha")
    assert read_line(first, 60, "the first candidate").startswith("election/e/")
    assert read_line(first, 5, "the first candidate") == "alpha"
    observed = [read_line(observer, 60, "the observer") for _ in range(2)]
    assert observed[1] == "alpha"
    second = procs.cli(endpoints, "elect", "--ttl", "3", "election/e", "beta")
    wait_for(lambda: client.range("election/e/", prefix=True).count == 2, 60, "the second candidate to queue")
    third = procs.cli(endpoints, "elect", "--ttl", "3", "election/e", "gamma")
    wait_for(lambda: client.range("election/e/", prefix=True).count == 3, 60, "the third candidate to queue")
    first.terminate()  # SIGTERM: resign
    assert first.wait(timeout=30) == 0
    read_line(second, 60, "the second candidate")
    assert read_line(second, 5, "the second candidate") == "beta"
    assert third.poll() is None  # still waiting: a resign wakes one candidate
    second.kill()  # its candidacy ends with its lease
    killed = time.monotonic()
    read_line(third, 60, "the third candidate")
    assert read_line(third, 5, "the third candidate") == "gamma"
    print(f"leadership moved {time.monotonic() - killed:.2f} s after the leader's SIGKILL (TTL 3 s)")
    assert observer.wait(timeout=60) == 0
    observed += observer.stdout.read().splitlines()  # type: ignore[union-attr]
    assert observed[1::2] == ["alpha", "beta", "gamma"]  # each leader once, in order
    assert len(set(observed[0::2])) == 3
    third.terminate()
    assert third.wait(timeout=30) == 0
    assert client.range("election/e/", prefix=True).count == 0


def test_each_waiter_watches_only_its_immediate_predecessor(make_cluster: MakeCluster,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """No herd: a release wakes exactly one waiter, whatever the queue's length."""
    import threading

    from cluster.client import Client
    from cluster.concurrency import Mutex, Session, _Queue
    cluster = make_cluster(1)
    cluster.wait_for_leader()
    watched: dict[bytes, list[bytes]] = {}
    original = _Queue._wait_deleted

    def recording(self: _Queue, key: bytes, start_revision: int, deadline: float | None) -> None:
        watched.setdefault(self.key, []).append(key)
        original(self, key, start_revision, deadline)
    monkeypatch.setattr(_Queue, "_wait_deleted", recording)
    clients = [Client(cluster.spec.client_addresses(), timeout=30) for _ in range(4)]
    sessions = [Session(c, ttl=10) for c in clients]
    try:
        mutexes = [Mutex(c, s, "herd") for c, s in zip(clients, sessions)]
        mutexes[0].lock()
        acquired: list[int] = []

        def contend(i: int) -> None:
            mutexes[i].lock(timeout=60)
            acquired.append(i)
            mutexes[i].unlock()
        threads = []
        for i in (1, 2, 3):  # queue one at a time: the queue's order is create revision order
            threads.append(threading.Thread(target=contend, args=(i,)))
            threads[-1].start()
            wait_for(lambda i=i: len(watched) == i, 60, f"waiter {i} to watch")
        keys = [m.key for m in mutexes]
        assert watched == {keys[i]: [keys[i - 1]] for i in (1, 2, 3)}
        mutexes[0].unlock()
        for thread in threads:
            thread.join(timeout=60)
        assert acquired == [1, 2, 3]
        # each waiter watched one key once: a release woke only its successor
        assert watched == {keys[i]: [keys[i - 1]] for i in (1, 2, 3)}
    finally:
        for session in sessions:
            session.close()
        for client in clients:
            client.close()
