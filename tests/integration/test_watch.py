"""Watches against real 3-node clusters (docs/watch.md): exactly the committed
events, in order, once, while the leader the watcher talks to is SIGKILLed
mid-stream; resume from a revision on another node; the compacted error; the
CLI. Every wait has a deadline; no assertion on wall-clock speed."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import pytest

from cluster.cli import main
from cluster.client import ClientError, WatchCompactedError
from cluster.kv import Put
from cluster.protocol import WatchEvent
from node.localcluster import LocalCluster, wait_for

MakeCluster = Callable[..., LocalCluster]


def collect_until(watch: object, revision: int, timeout: float) -> list[WatchEvent]:
    """Every event the watch yields until it has seen everything up to `revision`."""
    events: list[WatchEvent] = []
    deadline = time.monotonic() + timeout
    while watch.revision is None or watch.revision < revision:  # type: ignore[attr-defined]
        left = deadline - time.monotonic()
        assert left > 0, f"watch stuck at revision {watch.revision} waiting for {revision}"  # type: ignore[attr-defined]
        response = watch.get(timeout=left)  # type: ignore[attr-defined]
        if response is not None:
            events.extend(response.events)
    return events


@pytest.mark.timeout(180)
def test_a_prefix_watcher_sees_each_committed_event_once_in_order_across_a_leader_kill(
        make_cluster: MakeCluster) -> None:
    cluster = make_cluster(3)
    leader = cluster.wait_for_leader()
    others = [cluster.address(i) for i in cluster.spec.ids if i != leader]
    watcher = cluster.client([cluster.address(leader), *others])
    watch = watcher.watch("w/", prefix=True, start_revision=1, progress_interval=0.2)
    writer = cluster.client()
    acked: dict[tuple[bytes, bytes], int] = {}  # (key, value) -> revision its put reported
    errors: list[str] = []
    progress = {"written": 0}

    def write() -> None:
        for i in range(240):
            key, value = f"w/{i % 13}".encode(), f"v{i}".encode()
            try:
                acked[(key, value)] = writer.put(key, value).revision
            except ClientError as error:  # outcome unknown: may or may not be in the history
                errors.append(repr(error))
            progress["written"] = i + 1
            if i % 40 == 0:
                writer.put(f"other/{i}", "out of range")

    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    events: list[WatchEvent] = []
    killed = False
    deadline = time.monotonic() + 120
    while thread.is_alive():
        assert time.monotonic() < deadline, "the writer did not finish"
        if not killed and progress["written"] >= 80 and len(events) >= 40:
            cluster.kill(leader)  # SIGKILL the node the watch is reading from, mid-stream
            killed = True
        response = watch.get(timeout=0.5)
        if response is not None:
            events.extend(response.events)
    thread.join(timeout=60)
    events.extend(collect_until(watch, writer.put("w/last", "end").revision, timeout=60))
    assert killed and watch.reconnects >= 1, "the watch should have moved to another node"

    revisions = [e.kv.mod_revision for e in events]
    assert revisions == sorted(revisions), "events out of revision order"
    assert len({(e.kv.key, e.kv.mod_revision) for e in events}) == len(events), "an event was delivered twice"
    assert all(e.kv.key.startswith(b"w/") and e.type_name == "PUT" for e in events)
    seen = {(e.kv.key, e.kv.value): e.kv.mod_revision for e in events}
    for put, revision in acked.items():
        assert seen.get(put) == revision, f"acknowledged put {put} at {revision} missing or moved"
    # No gap against each key's history: versions 1, 2, 3... and the last one is the key's value now.
    per_key: dict[bytes, list[int]] = defaultdict(list)
    for e in events:
        per_key[e.kv.key].append(e.kv.version)
    final = {kv.key: kv for kv in writer.range("w/", prefix=True).kvs}
    assert set(per_key) == set(final)
    for key, versions in per_key.items():
        assert versions == list(range(1, len(versions) + 1)), f"{key!r}: versions {versions}"
        last = [e for e in events if e.kv.key == key][-1].kv
        assert (last.value, last.mod_revision, last.version) == (
            final[key].value, final[key].mod_revision, final[key].version)
    watch.close()
    print(f"{len(events)} events, {len(acked)} acknowledged puts, {len(errors)} unknown outcomes, "
          f"{watch.reconnects} reconnects")


@pytest.mark.timeout(120)
def test_resume_from_a_revision_on_another_node_and_the_compacted_error(make_cluster: MakeCluster) -> None:
    cluster = make_cluster(3)
    cluster.wait_for_leader()
    client = cluster.client()
    for i in range(10):
        client.put(f"r/{i}", str(i))
    client.txn(success=[Put(b"r/a", b"1"), Put(b"r/b", b"2")])
    last = client.delete("r/0", prev_kv=True).revision

    on_two = cluster.client([cluster.address(2)]).watch("r/", prefix=True, start_revision=2, prev_kv=True)
    first = collect_until(on_two, 6, timeout=60)
    resume_at = on_two.revision + 1
    on_two.close()
    on_three = cluster.client([cluster.address(3)]).watch("r/", prefix=True, start_revision=resume_at,
                                                          prev_kv=True)
    rest = collect_until(on_three, last, timeout=60)
    on_three.close()
    everything = first + rest
    assert [e.kv.mod_revision for e in everything] == list(range(2, last - 1)) + [last - 1, last - 1, last]
    txn_events = [e for e in everything if e.kv.mod_revision == last - 1]
    assert [e.kv.key for e in txn_events] == [b"r/a", b"r/b"]
    assert everything[-1].type_name == "DELETE" and everything[-1].prev_kv.value == b"0"

    client.compact(6)
    # Members serve watches from what they applied (as etcd's do); a follower learns
    # the leader's commit index within a tick (the commit linger, node/actor.py).
    leader = cluster.wait_for_leader()
    commit = cluster.status_of(leader)["commit_index"]
    for node_id in (2, 3):
        cluster.wait_caught_up(node_id, commit, timeout=30)
    with pytest.raises(WatchCompactedError) as refused:
        collect_until(cluster.client([cluster.address(2)]).watch("r/", prefix=True, start_revision=6), last, 30)
    assert refused.value.compact_revision == 6
    after = collect_until(cluster.client([cluster.address(3)]).watch("r/", prefix=True, start_revision=7), last, 30)
    assert [e.kv.mod_revision for e in after] == [e.kv.mod_revision for e in everything if e.kv.mod_revision >= 7]


@pytest.mark.timeout(120)
def test_the_cli_streams_events_and_stops_after_max_events(make_cluster: MakeCluster, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    cluster = make_cluster(3)
    cluster.wait_for_leader()
    client = cluster.client()
    client.put("c/1", "one")
    client.put("c/1", "two")
    client.delete("c/1")
    endpoints = ",".join(cluster.spec.client_addresses())

    def cli(*args: str) -> tuple[int, str, str]:
        """`python -m cluster watch ...` in this process (`main` is the whole CLI)."""
        status = main(["watch", "--endpoints", endpoints, *args])
        captured = capsys.readouterr()
        return status, captured.out, captured.err

    status, out, err = cli("c/", "--prefix", "--rev", "1", "--prev-kv", "--max-events", "3", "--timeout", "30")
    assert status == 0, err
    assert out.splitlines() == ["PUT", "c/1", "one", "PUT", "c/1", "one", "c/1", "two",
                                "DELETE", "c/1", "two", "c/1", ""]
    status, out, err = cli("c/1", "--rev", "2", "--max-events", "2", "-w", "json", "--timeout", "30")
    docs = [json.loads(line) for line in out.splitlines()]
    assert [(d["type"], d["revision"], d["kv"]["value"]) for d in docs] == [("PUT", 2, "one"), ("PUT", 3, "two")]
    head = client.put("live", "now").revision  # a watch starting at a revision still to come waits there
    client.put("live", "later")
    assert cli("live", "--rev", str(head + 1), "--max-events", "1", "--timeout", "30")[1] == "PUT\nlive\nlater\n"
    status, out, err = cli("never", "--max-events", "1", "--timeout", "1")
    assert status == 1 and "0 of 1 events" in err
    client.compact(head)
    # The CLI may watch through a follower, which serves watches from what it applied
    # (as etcd's members do): wait until every member applied the compaction.
    leader = cluster.wait_for_leader()
    commit = cluster.status_of(leader)["commit_index"]
    for node_id in cluster.spec.ids:
        cluster.wait_caught_up(node_id, commit, timeout=30)
    status, out, err = cli("c/", "--prefix", "--rev", "2", "--timeout", "30")
    assert status == 1 and "compacted" in err

    # A real process: Ctrl-C ends an unbounded watch cleanly, exit 0.
    def watches() -> int:
        return sum(st["watches"] for st in map(cluster.status, cluster.spec.ids) if st)

    wait_for(lambda: watches() == 0, 60, "the earlier watches to be gone")
    # Ctrl-C as a terminal delivers it: to a process whose SIGINT is at its default (an
    # ignored SIGINT would be inherited from whatever started this test's worker).
    endless = subprocess.Popen([sys.executable, "-m", "cluster", "watch", "--endpoints", endpoints, "x"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
                               preexec_fn=_default_sigint)
    try:
        wait_for(lambda: watches() == 1, 60, "the endless watch to be created")
        endless.send_signal(signal.SIGINT)
        out, err = endless.communicate(timeout=30)
    finally:
        if endless.poll() is None:
            endless.kill()
            endless.wait()
    assert endless.returncode == 0 and out == "" and "Traceback" not in err, err


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)
