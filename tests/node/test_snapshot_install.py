"""A follower builds a received snapshot's state machine in bounded steps across
loop turns (node/snapshot_install.py), before the core hears of the snapshot:
the result equals a one-shot restore, every step is bounded, the last chunk is
acknowledged only once the core is stepped (earlier acknowledgements are repeated
as keep-alives), and a newer transfer drops the partial build and its file."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from cluster.kv.codec import encode_command
from cluster.kv.requests import Compact, DeleteRange, LeaseGrant, Put, Txn
from node import local_disk, snapshot_install
from node.address_book import Membership
from node.dropped_frames import DroppedFrames
from node.eventlog import EventLog
from node.local_disk import LocalDisk
from node.raft import ConfState, InstallSnapshot, SnapshotMeta
from node.replica import Replica
from node.snapshot_install import PendingInstall, StateBuild
from node.snapshot_transfer import frame_chunks
from node.statemachine import StateMachine
from node.statemachine.mvcc import MvccStore
from node.storage import DataDir, SnapshotRef
from node.storage.snapshot_file import SnapshotStore
from node.wire import SnapshotChunk

CHUNK = 2048


def busy_machine() -> StateMachine:
    """A state with every part a restore rebuilds: many keys and versions,
    tombstones, a compaction, multi-key transactions (shared change-index slots),
    leases with attached keys, client sessions."""
    sm = StateMachine()
    index = 0

    def apply(request: Any, client_id: int = 0, seq: int = 0) -> None:
        nonlocal index
        index += 1
        sm.apply(index, encode_command(request, client_id, seq))

    apply(LeaseGrant(600, 7))
    for i in range(400):
        apply(Put(b"key/%04d" % (i * 37 % 400), b"v%d" % i * 20, lease=7 if i % 5 == 0 else 0))
    for i in range(0, 400, 3):
        apply(Put(b"key/%04d" % i, b"second"), client_id=9, seq=i + 1)
    apply(DeleteRange(b"key/0100", b"key/0120"))
    apply(Compact(sm.revision - 50))
    for i in range(30):
        apply(Txn((), (Put(b"txn/%02d/a" % i, b"1"), Put(b"txn/%02d/b" % i, b"2")), ()))
    return sm


def snapshot_file(tmp_path: Path, sm: StateMachine) -> SnapshotRef:
    meta = SnapshotMeta(sm.applied_index, 3, ConfState((1, 2, 3)))
    return SnapshotStore(tmp_path / "leader", "c1").save(meta, frame_chunks(sm.snapshot(CHUNK)))


def test_a_stepped_build_equals_a_one_shot_restore(tmp_path: Path) -> None:
    sm = busy_machine()
    ref = snapshot_file(tmp_path, sm)
    build = StateBuild(ref, CHUNK, sm.limits, step_records=7)
    while not build.step():
        pass
    built = build.machine
    once = StateMachine.restore(sm.snapshot(CHUNK))
    assert built is not None and built == once == sm
    assert built.hash_all() == once.hash_all() and built.hash_kv(0) == once.hash_kv(0)
    assert built._store.changes == once._store.changes  # the watch change index too
    assert built.leases() == once.leases()
    assert build.steps > sm.key_count // 7


def test_every_step_does_a_bounded_amount_of_work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """At most `step_records` records per step loaded one by one, and at most one
    chunk's worth (CHUNK bytes) loaded in bulk (FORMAT 5's single-version columns);
    the other phases are bounded by the same count of keys or slots."""
    loads = bulk = 0
    bulk_sizes: list[int] = []
    original, original_singles = MvccStore.load, MvccStore.load_singles

    def counting_load(self: MvccStore, *args: Any) -> None:
        nonlocal loads
        loads += 1
        original(self, *args)

    def counting_singles(self: MvccStore, keys: list[bytes], kvs: list[Any]) -> None:
        nonlocal bulk
        bulk += len(keys)
        bulk_sizes.append(sum(map(len, keys)) + sum(len(kv.value) for kv in kvs))
        original_singles(self, keys, kvs)

    monkeypatch.setattr(MvccStore, "load", counting_load)
    monkeypatch.setattr(MvccStore, "load_singles", counting_singles)
    sm = busy_machine()
    build = StateBuild(snapshot_file(tmp_path, sm), CHUNK, sm.limits, step_records=25)
    per_step: list[int] = []
    done = False
    while not done:
        before, calls_before = loads, len(bulk_sizes)
        done = build.step()
        per_step.append(loads - before)
        assert len(bulk_sizes) - calls_before <= 1  # at most one bulk chunk per step
    assert max(per_step) == 25 and all(size <= CHUNK for size in bulk_sizes)
    assert sum(per_step) + bulk == sm.history_records()
    assert build.machine == sm


def test_closing_a_build_drops_it_and_its_file(tmp_path: Path) -> None:
    sm = busy_machine()
    build = StateBuild(snapshot_file(tmp_path, sm), CHUNK, sm.limits, step_records=10)
    for _ in range(5):
        assert not build.step()
    build.close()
    assert build.machine is None
    with pytest.raises(AssertionError):
        build.prepared()


# --- LocalDisk: a transfer received, built over turns, then handed to the core ------


class FakeCore:
    def __init__(self) -> None:
        self.log = SimpleNamespace(committed=0)
        self.term = 3
        self.stepped: list[Any] = []

    def step(self, message: Any) -> None:
        self.stepped.append(message)


class FakePeers:
    def __init__(self) -> None:
        self.acks: list[int] = []

    def acknowledge_chunk(self, chunk: SnapshotChunk, received: int) -> None:
        self.acks.append(received)


def follower(tmp_path: Path) -> tuple[LocalDisk, FakeCore, FakePeers, Replica]:
    storage, _ = DataDir.open(tmp_path / "follower", "c1", 2)
    core, peers, replica = FakeCore(), FakePeers(), Replica(StateMachine())
    log = EventLog(lambda: "node=2")
    disk = LocalDisk(2, storage, core, replica, Membership(2, {}, ConfState()), None,  # type: ignore[arg-type]
                     CHUNK, peers, DroppedFrames(log), log)  # type: ignore[arg-type]
    return disk, core, peers, replica


def chunks_of(ref: SnapshotRef, leader: int = 1, term: int = 3) -> list[SnapshotChunk]:
    data = ref.path.read_bytes()
    return [SnapshotChunk(leader, 2, term, ref.meta, offset, data[offset:offset + CHUNK],
                          offset + CHUNK >= len(data)) for offset in range(0, len(data), CHUNK)]


def received(tmp_path: Path) -> tuple[SnapshotRef, LocalDisk, FakeCore, Replica, PendingInstall]:
    """A follower that received every chunk of `busy_machine`'s snapshot (term 3)
    and built one step of it."""
    ref = snapshot_file(tmp_path, busy_machine())
    disk, core, _, replica = follower(tmp_path)
    for chunk in chunks_of(ref):
        disk.receive_chunk(chunk)
    disk.build_install()
    pending = disk.pending_install
    assert pending is not None
    return ref, disk, core, replica, pending


@pytest.fixture
def one_step_per_turn(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(local_disk, "TURN_BUDGET_SECONDS", 0.0)


@pytest.mark.usefixtures("one_step_per_turn")
def test_the_core_hears_of_a_snapshot_only_once_its_state_is_built(tmp_path: Path) -> None:
    sm = busy_machine()
    ref = snapshot_file(tmp_path, sm)
    disk, core, peers, replica = follower(tmp_path)
    chunks = chunks_of(ref)
    for chunk in chunks:
        disk.receive_chunk(chunk)
    assert disk.pending_install is not None and not core.stepped
    assert peers.acks == [c.offset + len(c.data) for c in chunks[:-1]]  # not the last one yet
    turns = 0
    while disk.pending_install is not None:
        disk.build_install()
        turns += 1
        assert turns < 10_000
    assert turns > 1 and disk.installs.last_turns == turns == disk.installs.last_steps
    assert disk.installs.status()["snapshot_installs_prepared"] == 1
    [message] = core.stepped
    assert isinstance(message, InstallSnapshot) and message.snapshot.data.path.name == ref.path.name
    assert peers.acks[-1] == ref.file_size
    prepared = replica.take_prepared(message.snapshot.data)
    assert prepared is not None and prepared.machine == sm and prepared.machine.hash_all() == sm.hash_all()
    disk.close()


@pytest.mark.usefixtures("one_step_per_turn")
def test_a_build_repeats_its_last_acknowledgement_as_a_keep_alive(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(snapshot_install, "KEEPALIVE_SECONDS", 0.0)
    sm = busy_machine()
    disk, core, peers, _ = follower(tmp_path)
    chunks = chunks_of(snapshot_file(tmp_path, sm))
    for chunk in chunks:
        disk.receive_chunk(chunk)
    written = len(peers.acks)
    disk.build_install()
    disk.build_install()
    assert peers.acks[written:] == [chunks[-1].offset] * 2 and not core.stepped
    disk.close()


@pytest.mark.usefixtures("one_step_per_turn")
def test_a_new_transfer_drops_the_partial_build_and_its_file(tmp_path: Path) -> None:
    ref, disk, core, replica, pending = received(tmp_path)
    assert pending.ref.path.exists()
    for _ in range(2):
        disk.build_install()
    disk.receive_chunk(chunks_of(ref, leader=3, term=4)[0])  # a new leader starts over
    assert disk.pending_install is None and not pending.ref.path.exists()
    assert disk.installs.aborted == 1 and not core.stepped and replica.prepared is None
    disk.close()


@pytest.mark.usefixtures("one_step_per_turn")
def test_a_new_term_drops_the_partial_build(tmp_path: Path) -> None:
    """The core refuses an InstallSnapshot of an older term: no use finishing it."""
    _, disk, core, _, pending = received(tmp_path)
    core.term = 4
    disk.build_install()
    assert disk.pending_install is None and disk.installs.aborted == 1 and not core.stepped
    assert not pending.ref.path.exists()
    disk.close()


def test_a_keepalive_is_due_once_per_interval() -> None:
    build = SimpleNamespace(ref=None, steps=0)
    pending = PendingInstall(None, build, 100, now=10.0)  # type: ignore[arg-type]
    assert not pending.keepalive_due(10.5)
    assert pending.keepalive_due(10.0 + snapshot_install.KEEPALIVE_SECONDS)
    assert not pending.keepalive_due(10.1 + snapshot_install.KEEPALIVE_SECONDS)


def test_a_replaced_state_is_torn_down_a_bounded_step_at_a_time() -> None:
    old = busy_machine()
    keys = old.key_count
    replica = Replica(old)
    new = StateMachine()
    replica.replace(new, teardown_step=50)
    assert replica.sm is new and len(replica.retired) == 1
    steps = 0
    for _ in replica.retired[0]:
        steps += 1
        assert old.key_count == keys - 50 * steps or old.key_count == 0
    assert steps == -(-keys // 50) and old.key_count == 0


def test_tear_down_stops_at_its_budget_and_resumes() -> None:
    replica = Replica(busy_machine())
    replica.replace(StateMachine(), teardown_step=10)
    ticks = iter(range(10_000))
    snapshot_install.tear_down(replica.retired, 3, clock=lambda: next(ticks))  # three steps' worth
    assert replica.retired
    snapshot_install.tear_down(replica.retired, 10_000, clock=lambda: next(ticks))
    assert not replica.retired
