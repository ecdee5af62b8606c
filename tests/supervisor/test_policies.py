"""Pure decisions: restart backoff, how a death is described, what chaos does next."""
from __future__ import annotations

import random
import signal

import pytest

from supervisor.chaos import ChaosOptions, Event, choose
from supervisor.restarts import RestartPolicy
from supervisor.spawn import describe_exit
from supervisor.status import NodeStatus, human_bytes


def test_backoff_doubles_on_a_crash_loop_and_resets_after_a_stable_run() -> None:
    policy = RestartPolicy(base=0.2, cap=10.0, stable_after=10.0)
    quick = 0
    delays = []
    for _ in range(8):
        quick = policy.quick_deaths(quick, uptime=0.5)
        delays.append(policy.delay(quick))
    assert delays[:4] == [0.4, 0.8, 1.6, 3.2] and delays[-1] == 10.0
    assert policy.quick_deaths(quick, uptime=60.0) == 0
    assert policy.delay(0) == 0.2


def test_deaths_are_described_for_the_operator() -> None:
    assert describe_exit(-signal.SIGKILL, 3.21) == "killed by SIGKILL after 3.2 s"
    assert "fail-stop" in describe_exit(1, 1.0)
    assert "bad config" in describe_exit(2, 0.1)
    assert "graceful" in describe_exit(0, 9.0)


def node(node_id: int, role: str = "follower", alive: bool = True, term: int = 3) -> NodeStatus:
    return NodeStatus(id=node_id, pid=100 + node_id, alive=alive, role=role, term=term, leader=1, commit_index=0,
                      applied_index=0, last_index=0, snapshot_index=0, wal_bytes=0, rss_bytes=0, restarts=0,
                      client="", peer="", state="running", last_exit="")


def test_chaos_aims_at_the_leader_when_asked() -> None:
    statuses = [node(1), node(2, "leader"), node(3)]
    options = ChaosOptions(duration=1, interval=1, leader=True)
    assert choose(random.Random(1), statuses, options) == Event("kill", 2, True)


def test_chaos_never_takes_down_more_than_a_minority() -> None:
    statuses = [node(1, "down", alive=False), node(2, "leader"), node(3)]
    reason = choose(random.Random(1), statuses, ChaosOptions(duration=1, interval=1))
    assert isinstance(reason, str) and "already down" in reason
    five = [node(1, "paused"), node(2, "leader"), node(3), node(4), node(5)]
    event = choose(random.Random(1), five, ChaosOptions(duration=1, interval=1, pause=True, kill=False))
    assert isinstance(event, Event) and event.action == "pause" and event.node_id != 1


def test_chaos_is_reproducible_from_its_seed() -> None:
    statuses = [node(i) for i in range(1, 6)]
    options = ChaosOptions(duration=1, interval=1, pause=True, max_faulty=5)
    runs = [[choose(random.Random(42), statuses, options) for _ in range(3)] for _ in range(2)]
    assert runs[0] == runs[1]


@pytest.mark.parametrize("options, problem", [
    (ChaosOptions(duration=0, interval=1), "--duration"),
    (ChaosOptions(duration=7200, interval=1), "--duration"),
    (ChaosOptions(duration=10, interval=0.01), "--interval"),
    (ChaosOptions(duration=10, interval=100), "--interval"),
    (ChaosOptions(duration=10, interval=1, kill=False), "nothing to do"),
    (ChaosOptions(duration=10, interval=1, pause=True, pause_for=60), "--pause-for"),
])
def test_chaos_bounds(options: ChaosOptions, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        options.check()


def test_byte_sizes_are_human() -> None:
    assert [human_bytes(v) for v in (None, 101, 2048, 3 * 2**20)] == ["-", "101 B", "2.0 KiB", "3.0 MiB"]


def test_a_status_answer_from_another_cluster_is_never_taken_for_our_node(monkeypatch: pytest.MonkeyPatch) -> None:
    """Our node failed to bind a port another cluster holds: whoever answers there is
    `foreign`, so it can never count as our leader."""
    import psutil

    from cluster.discovery import ClusterState, NodeRecord
    from supervisor import status as status_mod

    me = psutil.Process()
    state = ClusterState("ours", "c.toml", "d", me.pid, me.create_time(),
                         nodes=[NodeRecord(1, "tcp://127.0.0.1:1", "tcp://127.0.0.1:2", me.pid, me.create_time())])
    monkeypatch.setattr(status_mod, "node_process", lambda record, st: me)
    answers = {"ours": {"cluster_id": "ours", "node_id": 1, "role": "leader", "term": 2},
               "theirs": {"cluster_id": "theirs", "node_id": 1, "role": "leader", "term": 9}}
    for name, expected in (("ours", "leader"), ("theirs", "foreign")):
        monkeypatch.setattr(status_mod, "query_status", lambda endpoint, timeout, a=answers[name]: a)
        [got] = status_mod.collect(state)
        assert got.role == expected
        assert (status_mod.leader_of([got]) is not None) == (expected == "leader")


def test_chaos_can_isolate_and_counts_isolated_nodes_as_faulty() -> None:
    options = ChaosOptions(duration=1, interval=1, kill=False, drop=True)
    event = choose(random.Random(3), [node(1), node(2, "leader"), node(3)], options)
    assert isinstance(event, Event) and event.action == "drop"
    busy = [node(1, "isolated"), node(2, "leader"), node(3)]
    assert isinstance(choose(random.Random(3), busy, options), str)
    with pytest.raises(ValueError, match="--drop-for"):
        ChaosOptions(duration=1, interval=1, drop=True, drop_for=100).check()
