"""Supervisor life cycle on real processes: foreground `up` stops everything on
SIGTERM; a second `up` refuses; `restart` and `logs`; a supervisor that died
leaves its nodes running, and once they are gone too a stale state file that the
next `up` detects and cleans."""
from __future__ import annotations

import json
import os
import signal

import psutil
import pytest

from tests.supervisor.harness import Session, wait_for


@pytest.mark.timeout(150)
def test_readme_quickstart_in_the_foreground(session: Session) -> None:
    """The README's session: `up 5` in the foreground, put, get, status, kill -9 the
    leader by pid, get still works; Ctrl-C (SIGINT) stops every node."""
    up = session.popen("supervisor", "up", "5")
    wait_for(lambda: (s := session.state()) is not None and s.ready, 90, "the cluster to be ready")
    session.track()
    assert session.cli("put", "greeting", "hello").stdout == "OK\n"
    assert session.cli("get", "greeting").stdout == "greeting\nhello\n"
    # Robust on a loaded machine: a node may miss the 0.5 s status deadline once.
    wait_for(lambda: (st := session.supervisor("status")).returncode == 0 and st.stdout.count("| leader ") == 1,
             30, "`status` to show one leader")
    leader_pid = wait_for(lambda: (lp := session.supervisor("status", "--leader-pid")).returncode == 0 and lp,
                          30, "`status --leader-pid`")
    pid = int(leader_pid.stdout)
    assert pid in session.tracked  # a node this test started, never anything else
    os.kill(pid, signal.SIGKILL)
    get = session.cli("get", "greeting", "--timeout", "5", "--attempt-timeout", "0.5")
    assert get.stdout == "greeting\nhello\n", get.stderr

    up.send_signal(signal.SIGINT)
    output, _ = up.communicate(timeout=60)
    assert up.returncode == 0, output
    assert "killed by SIGKILL" in output and "cluster stopped" in output
    assert not session.layout.state.exists()
    assert session.alive() == []


@pytest.mark.timeout(150)
def test_refuse_restart_logs_and_stale_state(session: Session) -> None:
    first = session.supervisor("up", "1", "--detach")
    assert first.returncode == 0, first.stdout + first.stderr

    again = session.supervisor("up", "1", "--detach")
    assert again.returncode == 1
    assert "already running" in again.stderr

    other_size = session.supervisor("up", "3")
    assert other_size.returncode == 1 and "already running" in other_size.stderr

    before = session.state()
    assert before is not None
    restarted = session.supervisor("restart", "1")
    assert restarted.returncode == 0, restarted.stderr
    after = session.state()
    assert after is not None and after.nodes[0].pid != before.nodes[0].pid and after.nodes[0].restarts == 1
    assert session.cli("put", "k", "v").returncode == 0

    logs = session.supervisor("logs", "1", "-n", "50")
    assert logs.returncode == 0 and "node=1" in logs.stdout
    assert session.supervisor("logs", "9").returncode == 1
    assert session.supervisor("kill", "9").returncode == 2

    # The supervisor dies without cleaning up: its node keeps running (nodes outlive
    # their supervisor; test_adopt.py has the adoption). Once the node is gone too,
    # the state file it left is stale, and the next `up` detects and removes it.
    supervisor = psutil.Process(after.supervisor_pid)
    assert abs(supervisor.create_time() - after.supervisor_create_time) < 0.5
    supervisor.kill()
    node = psutil.Process(after.nodes[0].pid)
    assert abs(node.create_time() - after.nodes[0].create_time) < 0.5
    wait_for(lambda: session.alive() == [node.pid], 30, "the supervisor to die, its node alone left")
    node.kill()
    wait_for(lambda: session.alive() == [], 30, "the node to die")
    assert session.layout.state.exists()
    status = json.loads(session.supervisor("status", "--json").stdout)
    assert status["supervisor_alive"] is False and not status["nodes"][0]["alive"]

    second = session.supervisor("up", "--detach")  # no N: the cluster already in the data dir
    assert second.returncode == 0, second.stdout + second.stderr
    assert "stale state file" in second.stdout
    get = session.cli("get", "k", "--print-value-only")
    assert get.stdout == "v\n", get.stderr  # same config, same data: the write survived

    mismatch = session.supervisor("down")
    assert mismatch.returncode == 0
    conflict = session.supervisor("up", "3", "--detach")
    assert conflict.returncode == 2 and "1-node cluster" in conflict.stderr
    assert session.supervisor("down", "--purge").returncode == 0
    assert session.alive() == []
