"""The state file, the lock, and telling our processes from others (stale detection)."""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from cluster.discovery import ClusterState, DiscoveryError, Layout, NodeRecord, discover_endpoints, read_state
from supervisor.control import ControlError
from supervisor.launch import check_free
from supervisor.statefile import (
    SupervisorLock, SupervisorRunning, inspect, is_node_command, same_process, write_state,
)


def dead_pid() -> tuple[int, float]:
    """The pid and start time of a process that has exited (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    created = psutil.Process(proc.pid).create_time()
    proc.wait(timeout=30)
    return proc.pid, created


def sample_state(layout: Layout, supervisor: tuple[int, float], nodes: list[tuple[int, float]]) -> ClusterState:
    return ClusterState(cluster_id="c", config=str(layout.config), data_dir=str(layout.root),
                        supervisor_pid=supervisor[0], supervisor_create_time=supervisor[1],
                        nodes=[NodeRecord(i, f"tcp://127.0.0.1:{9000 + i}", f"tcp://127.0.0.1:{9100 + i}", pid, t)
                               for i, (pid, t) in enumerate(nodes, start=1)])


def test_state_round_trips_and_the_client_finds_its_endpoints(tmp_path: Path) -> None:
    layout = Layout(tmp_path / "jangada-data")
    layout.root.mkdir()
    state = sample_state(layout, (os.getpid(), 1.0), [(10, 2.0), (11, 3.0)])
    write_state(layout, state)
    assert read_state(layout) == state
    assert discover_endpoints(cwd=tmp_path) == ["tcp://127.0.0.1:9001", "tcp://127.0.0.1:9002"]


def test_a_state_file_before_the_etcd_faces_still_loads(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    state = sample_state(layout, (os.getpid(), 1.0), [(10, 2.0)])
    doc = json.loads(state.to_json())
    for node in doc["nodes"]:
        del node["grpc"], node["gateway"]
    layout.state.write_text(json.dumps(doc))
    loaded = read_state(layout)
    assert loaded == state and loaded.etcd_endpoints() == []
    loaded.nodes[0].grpc = "http://127.0.0.1:7301"
    assert loaded.etcd_endpoints() == ["127.0.0.1:7301"]


def test_an_unreadable_state_file_is_a_clear_error(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    layout.state.write_text('{"version": 99}')
    with pytest.raises(DiscoveryError, match="unsupported version"):
        read_state(layout)
    layout.state.write_text("not json")
    with pytest.raises(DiscoveryError, match="unreadable"):
        read_state(layout)


def test_a_pid_is_ours_only_with_the_same_start_time() -> None:
    me = psutil.Process()
    assert same_process(me.pid, me.create_time()) is not None
    assert same_process(me.pid, me.create_time() - 100) is None  # a reused pid
    assert same_process(*dead_pid()) is None
    assert same_process(0, 1.0) is None


def test_node_command_lines_are_recognised() -> None:
    cmd = [sys.executable, "-m", "node", "--config", "c.toml", "--id", "2", "--data-dir", "d"]
    assert is_node_command(cmd, 2)
    assert not is_node_command(cmd, 3)
    assert not is_node_command([sys.executable, "-m", "http.server", "--id", "2"], 2)
    assert not is_node_command(["sleep", "100"], 2)


def test_a_dead_supervisor_makes_the_state_stale_and_up_cleans_it(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    write_state(layout, sample_state(layout, dead_pid(), [dead_pid(), dead_pid()]))
    existing = inspect(layout)
    assert existing.state is not None and not existing.supervisor_alive and existing.orphans == ()
    out = io.StringIO()
    check_free(layout, out)
    assert "stale state file" in out.getvalue()
    assert not layout.state.exists()


def test_a_live_supervisor_is_refused(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    me = psutil.Process()
    write_state(layout, sample_state(layout, (me.pid, me.create_time()), []))
    with pytest.raises(ControlError, match="already running"):
        check_free(layout, io.StringIO())


def test_the_lock_admits_one_supervisor(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    first, second = SupervisorLock(layout), SupervisorLock(layout)
    first.acquire()
    try:
        assert second.is_held_elsewhere()
        with pytest.raises(SupervisorRunning, match=f"pid {os.getpid()}"):
            second.acquire()
        with pytest.raises(ControlError, match="already running"):
            check_free(layout, io.StringIO())
    finally:
        first.release()
    assert not second.is_held_elsewhere()
