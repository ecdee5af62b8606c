"""The operator's path, run as real subprocesses in a tmp working directory with no
flags: `up 3 --detach`, put/get through the CLI, `status --json` shows one leader,
kill the leader and a write still succeeds within 2 s, chaos with writes going on,
`down --purge` leaves no process and no data behind."""
from __future__ import annotations

import json
import re
import time
from typing import Any

import psutil
import pytest

from tests.supervisor.harness import Session, wait_for


def status_json(session: Session) -> dict[str, Any]:
    out = session.supervisor("status", "--json")
    assert out.returncode == 0, out.stderr
    doc: dict[str, Any] = json.loads(out.stdout)
    return doc


def one_leader(session: Session) -> dict[str, Any] | None:
    nodes = status_json(session)["nodes"]
    leaders = [n for n in nodes if n["role"] == "leader"]
    return leaders[0] if len(leaders) == 1 and all(n["alive"] for n in nodes) else None


@pytest.mark.timeout(180)
def test_up_put_get_kill_leader_chaos_down(session: Session) -> None:
    up = session.supervisor("up", "3", "--detach", "--fault-injection")
    assert up.returncode == 0, up.stdout + up.stderr
    assert "endpoints: 127.0.0.1:" in up.stdout

    put = session.cli("put", "greeting", "hello")
    assert (put.returncode, put.stdout) == (0, "OK\n"), put.stderr
    get = session.cli("get", "greeting")
    assert (get.returncode, get.stdout) == (0, "greeting\nhello\n"), get.stderr
    doc = json.loads(session.cli("get", "greeting", "-w", "json").stdout)
    assert doc["kvs"][0]["value"] == "hello" and doc["count"] == 1

    # status --json: every field the issue names, one leader.
    leader = wait_for(lambda: one_leader(session), 30, "exactly one leader in status --json")
    for field in ("id", "pid", "alive", "role", "term", "leader", "commit_index", "applied_index", "last_index",
                  "snapshot_index", "wal_bytes", "rss_bytes", "restarts", "client"):
        assert field in leader
    assert psutil.pid_exists(leader["pid"])

    # Kill the leader by id: a write still succeeds within 2 s (the client's own
    # deadline, not counting the interpreter's start-up), and the node comes back.
    killed = session.supervisor("kill", str(leader["id"]))
    assert killed.returncode == 0 and "SIGKILL" in killed.stdout, killed.stderr
    write = session.cli("put", "after-kill", "yes", "--timeout", "2", "--attempt-timeout", "0.5")
    assert write.returncode == 0, write.stderr
    assert session.cli("get", "after-kill", "--print-value-only").stdout == "yes\n"

    def restarted() -> bool:
        nodes = {n["id"]: n for n in status_json(session)["nodes"]}
        node = nodes[leader["id"]]
        return node["alive"] and node["restarts"] >= 1 and node["pid"] != leader["pid"]
    wait_for(restarted, 30, "the killed leader to be restarted by the supervisor")

    # Chaos for a few seconds while writing through the CLI; every write succeeds.
    chaos = session.popen("supervisor", "chaos", "--duration", "4", "--interval", "0.5", "--pause",
                          "--pause-for", "0.3", "--drop", "--drop-for", "0.5", "--seed", "7")
    writes = 0
    deadline = time.monotonic() + 60
    while chaos.poll() is None and time.monotonic() < deadline:
        out = session.cli("put", f"chaos-{writes}", str(writes), "--timeout", "20")
        assert out.returncode == 0, out.stderr
        writes += 1
    output, _ = chaos.communicate(timeout=30)
    assert chaos.returncode == 0, output
    events = [line for line in output.splitlines() if re.match(r"^\d\d:\d\d:\d\d\.\d{3} chaos: (SIGKILL|SIGSTOP|DROP)", line)]
    assert events, output
    assert writes >= 2
    count = session.cli("get", "chaos-", "--prefix", "--count-only")
    assert count.stdout.strip() == str(writes)

    # down --purge: no process left (checked with psutil), no data left.
    pids = session.alive()
    assert pids
    down = session.supervisor("down", "--purge")
    assert down.returncode == 0, down.stdout + down.stderr
    assert not session.layout.root.exists()
    assert not [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
    assert session.alive() == []
