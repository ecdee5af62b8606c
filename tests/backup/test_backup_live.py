"""Backup and disaster recovery with real processes (docs/operations.md, "Backup
and disaster recovery"): a snapshot saved from a running cluster under writes
becomes a new cluster holding every key and revision up to the snapshot's
revision; a cluster whose other members' data directories are gone is rebuilt
from the one that is left. One source cluster serves both, in one test."""
from __future__ import annotations

import io
import json
import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from cluster import cli
from cluster.client import Client
from cluster.kv import KeyValue
from node.backup import restore_member
from node.localcluster import LocalCluster
from tests.clusters import cluster_maker

SECTIONS: dict[str, dict[str, Any]] = {
    "timing": {"tick_ms": 10, "election_ticks": 30, "heartbeat_ticks": 3, "request_timeout_ms": 5000},
    "snapshot": {"applied_entries": 100},  # members snapshot and compact their WAL during the test
    "maintenance": {"auto_compaction_mode": ""},  # the whole history stays readable to compare
}
KEYS = 40
#: The background writer's bound: it stops at this many writes if not told sooner.
MAX_WRITES = 3000


@pytest.fixture
def make(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Callable[..., LocalCluster]]:
    with cluster_maker(tmp_path, request, **SECTIONS) as make:
        yield make


@pytest.mark.timeout(150)
def test_backup_restore_and_recovery_from_the_one_member_left(make: Callable[..., LocalCluster],
                                                             tmp_path: Path) -> None:
    """One source cluster for both (a cluster start is the expensive part): first
    a backup under writes restored into a new cluster, then the disaster."""
    source = make()
    source.wait_for_leader()
    a_snapshot_saved_under_writes_restores_into_a_new_cluster_with_every_revision(source, make, tmp_path)
    a_cluster_whose_other_members_are_lost_is_recovered_from_the_one_left(source, make, tmp_path)


def run_cli(*argv: str) -> str:
    out = io.StringIO()
    status = cli.main(list(argv), out)
    assert status == 0, f"python -m cluster {' '.join(argv)} exited {status}: {out.getvalue()}"
    return out.getvalue()


def restore_into(make: Callable[..., LocalCluster], backup: Path) -> LocalCluster:
    """A NEW 3-member cluster (its own id and ports), every member restored from
    `backup` (the first with the CLI, which runs `python -m node.backup`; the
    others in this process, saving an interpreter start each), then started."""
    new = make(start=False)
    first, *others = new.spec.ids
    run_cli("snapshot", "restore", str(backup), "--config", str(new.config), "--id", str(first))
    for node_id in others:
        restore_member(backup, new.spec, node_id)
    new.start_all()
    new.wait_for_leader()
    return new


def state_at(client: Client, revision: int) -> list[KeyValue]:
    return list(client.range(b"", prefix=True, revision=revision).kvs)


def history(client: Client, upto: int) -> list[tuple[str, KeyValue]]:
    """Every event of revisions 1..`upto`, from a watch replaying them: each key's
    value, create and mod revisions and version at every revision, in far fewer
    requests than a range at each revision."""
    events: list[tuple[str, KeyValue]] = []
    watch = client.watch(b"", prefix=True, start_revision=1)
    try:
        while not events or events[-1][1].mod_revision < upto:
            response = watch.get(timeout=30)
            assert response is not None, f"no watch events after revision {events[-1][1].mod_revision if events else 0}"
            events += [(e.type_name, e.kv) for e in response.events]
    finally:
        watch.close()
    return [(kind, kv) for kind, kv in events if kv.mod_revision <= upto]


class Writer(threading.Thread):
    """Puts (keys rewritten, so versions grow) and a delete now and then, each
    acknowledged write's revision recorded, until stopped or MAX_WRITES."""

    def __init__(self, client: Client, prefix: str) -> None:
        super().__init__(daemon=True)
        self.client = client
        self.prefix = prefix
        self.stop = threading.Event()
        self.acknowledged = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            for i in range(MAX_WRITES):
                if self.stop.is_set():
                    return
                key = f"{self.prefix}{i % KEYS:03d}"
                if i % 17 == 16:
                    self.client.delete(key)
                else:
                    self.client.put(key, f"value-{i}")
                self.acknowledged += 1
        except BaseException as error:  # reported by the test
            self.error = error


def a_snapshot_saved_under_writes_restores_into_a_new_cluster_with_every_revision(
        source: LocalCluster, make: Callable[..., LocalCluster], tmp_path: Path) -> None:
    lease = source.client().lease_grant(600)
    source.client().put("leased", "x", lease=lease.id)
    writer = Writer(source.client(), "load/")
    writer.start()
    try:
        while writer.acknowledged < 150 and writer.is_alive():
            writer.join(0.01)
        backup = tmp_path / "backup.snap"
        endpoint = source.address(2).removeprefix("tcp://")  # from ONE member: a follower or the leader
        run_cli("--endpoints", endpoint, "snapshot", "save", str(backup))
        assert writer.is_alive(), "the writer stopped before the snapshot was saved"
    finally:
        writer.stop.set()
        writer.join(30)
    assert writer.error is None, writer.error
    assert not (tmp_path / "backup.snap.part").exists()
    status = json.loads(run_cli("snapshot", "status", str(backup), "-w", "json"))
    revision = status["revision"]
    assert 150 < revision < 2 + writer.acknowledged + 1, "the snapshot must hold the writes before the save"

    restored = restore_into(make, backup)
    old, new = source.client(), restored.client()
    assert new.range(b"", prefix=True).revision == revision
    assert state_at(new, revision) == state_at(old, revision)
    restored_history = history(new, revision)
    assert restored_history == history(old, revision)  # every key and revision up to the snapshot's
    assert {kv.mod_revision for _, kv in restored_history} == set(range(2, revision + 1))  # 1 is the empty store
    assert new.lease_list().ids == (lease.id,)
    assert new.put("after", "restore").revision == revision + 1
    run_cli("--endpoints", restored.address(1).removeprefix("tcp://"), "endpoint", "status")


def a_cluster_whose_other_members_are_lost_is_recovered_from_the_one_left(
        source: LocalCluster, make: Callable[..., LocalCluster], tmp_path: Path) -> None:
    client = source.client()
    for i in range(60):
        client.put(f"survive/{i % 7}", f"v{i}")
    expected = state_at(client, 0)
    revision = client.range(b"", prefix=True).revision
    index = max(source.status_of(i)["applied_index"] for i in source.running())
    source.wait_caught_up(3, index)  # every acknowledged write is in node 3's log
    for node_id in list(source.running()):
        source.kill(node_id)  # a disaster: no clean shutdown
    for node_id in (1, 2):
        shutil.rmtree(source.spec.data_dir_for(node_id))
    survivor = tmp_path / "survivor.snap"
    report = run_cli("snapshot", "save", str(survivor), "--from-data-dir", str(source.spec.data_dir_for(3)),
                     "--config", str(source.config), "--id", "3")
    assert "node 3's state at log index" in report

    recovered = restore_into(make, survivor)
    new = recovered.client()
    assert state_at(new, 0) == expected
    assert new.range(b"", prefix=True).revision == revision
    assert new.put("after", "recovery").revision == revision + 1
