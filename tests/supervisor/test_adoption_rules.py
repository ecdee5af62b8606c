"""Which running nodes a new supervisor may adopt, and how it watches them
(issue 18), on stand-in processes: their command line reads `... -m node --id N
--config C` but they only sleep."""
from __future__ import annotations

import io
import random
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from cluster.discovery import ClusterState, Layout, NodeRecord
from supervisor.chaos import ChaosOptions, choose
from supervisor.launch import check_free
from supervisor.spawn import Adopted, Exit, describe_exit, exit_of
from supervisor.statefile import adoptable, write_state
from tests.supervisor.test_policies import node
from tests.supervisor.test_statefile import dead_pid


def lookalike(node_id: int, config: str) -> subprocess.Popen[bytes]:
    """A process whose command line matches a node's, which only sleeps (bounded)."""
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "-m", "node",
                             "--id", str(node_id), "--config", config])


@pytest.fixture
def nodes(tmp_path: Path) -> Iterator[tuple[Layout, list[subprocess.Popen[bytes]]]]:
    layout = Layout(tmp_path)
    procs = [lookalike(1, str(layout.config)), lookalike(2, "/elsewhere/cluster.toml")]
    yield layout, procs
    for proc in procs:
        proc.kill()
        proc.wait(timeout=30)


def state_of(layout: Layout, supervisor: tuple[int, float], procs: list[subprocess.Popen[bytes]]) -> ClusterState:
    records = [NodeRecord(i, f"tcp://127.0.0.1:{9000 + i}", f"tcp://127.0.0.1:{9100 + i}", p.pid,
                          psutil.Process(p.pid).create_time()) for i, p in enumerate(procs, start=1)]
    return ClusterState(cluster_id="c", config=str(layout.config), data_dir=str(layout.root),
                        supervisor_pid=supervisor[0], supervisor_create_time=supervisor[1], nodes=records)


def test_only_nodes_of_this_data_directory_whose_supervisor_is_gone_are_adopted(
        nodes: tuple[Layout, list[subprocess.Popen[bytes]]]) -> None:
    layout, procs = nodes
    state = state_of(layout, dead_pid(), procs)
    found = adoptable(state, str(layout.config))
    assert list(found) == [1] and found[1].pid == procs[0].pid  # node 2 runs another config
    me = psutil.Process()
    assert adoptable(state_of(layout, (me.pid, me.create_time()), procs), str(layout.config)) == {}  # a live one
    state.nodes[0].create_time -= 100  # the pid now names another process
    assert adoptable(state, str(layout.config)) == {}


def test_up_keeps_the_state_file_of_nodes_still_running_to_adopt_them(
        nodes: tuple[Layout, list[subprocess.Popen[bytes]]]) -> None:
    layout, procs = nodes
    dead = dead_pid()
    write_state(layout, state_of(layout, dead, procs[:1]))
    out = io.StringIO()
    check_free(layout, out)
    assert f"pids {procs[0].pid}): adopting them" in out.getvalue() and str(dead[0]) in out.getvalue()
    assert layout.state.exists()


def test_an_adopted_node_is_watched_through_psutil_and_its_death_is_noticed() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    adopted = Adopted(psutil.Process(proc.pid))
    assert exit_of(adopted) is None and not adopted.exited()
    assert proc.stdin is not None
    proc.stdin.close()
    proc.wait(timeout=30)  # reaped, as init would reap an orphan
    assert exit_of(adopted) == Exit(None)
    assert "status unknown" in describe_exit(None, 12.0) and "12.0 s" in describe_exit(None, 12.0)


def test_chaos_takes_the_supervisor_among_its_victims_only_when_asked() -> None:
    statuses = [node(1), node(2, "leader"), node(3)]
    plain = ChaosOptions(duration=1, interval=1, pause=True)
    plain_actions = {choose(random.Random(seed), statuses, plain).action for seed in range(50)}  # type: ignore[union-attr]
    assert plain_actions == {"kill", "pause"}
    asked = ChaosOptions(duration=1, interval=1, pause=True, supervisor=True)
    actions = {choose(random.Random(seed), statuses, asked).action for seed in range(50)}  # type: ignore[union-attr]
    assert actions == {"kill", "pause", "supervisor"}
