"""The persistence order (node/ready_handler.py), checked on recording ports: the
one numbered order every caller of `handle_ready` gets, and a `between` call at
every boundary."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from node.raft import (
    AppendEntries, AppendEntriesResponse, ConfState, Entry, HardState, RaftCore, ReadState, Ready, Role,
    Snapshot, SnapshotMeta, SoftState,
)
from node.ready_handler import ReadyPorts, Step, handle_ready


class Recorder:
    """Every port at once; each call is appended to `calls`."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.queued: list[Callable[[], None]] = []

    def on_soft_state(self, ss: SoftState) -> None:
        self.calls.append(("soft_state", ss.role))

    def update_members(self, appended: list[Entry], conf: ConfState | None) -> None:
        self.calls.append(("update_members", len(appended), conf))

    def send(self, message: object) -> None:
        self.calls.append(("send", type(message).__name__))

    def install_snapshot(self, snapshot: Snapshot) -> None:
        self.calls.append(("disk.install_snapshot", snapshot.meta.index))

    def append(self, entries: list[Entry], hard_state: HardState | None, sync: bool) -> None:
        self.calls.append(("disk.append", len(entries), hard_state, sync))

    def restore(self, snapshot: Snapshot) -> None:
        self.calls.append(("apply.restore", snapshot.meta.index))

    def apply(self, entry: Entry) -> None:
        self.calls.append(("apply", entry.index))

    def applied(self, committed: list[Entry], read_states: list[ReadState]) -> None:
        self.calls.append(("applied", len(committed), len(read_states)))

    def maybe_start(self) -> None:
        self.calls.append(("maybe_start_snapshot",))

    def between(self, step: Step) -> None:
        self.calls.append(("between", step))

    def persisted(self, rd: Ready) -> None:
        self.calls.append(("persisted",))

    def accept(self, rd: Ready) -> None:
        self.calls.append(("accept",))

    def submit(self, rd: Ready, done: Callable[[], None]) -> None:
        """Asynchronous writes: queued here, ended by `end_writes`."""
        self.calls.append(("writes.submit", len(rd.entries), rd.hard_state, rd.must_sync))
        self.queued.append(done)

    def end_writes(self) -> None:
        queued, self.queued = self.queued, []
        for done in queued:
            done()


def _full_ready() -> Ready:
    snap = Snapshot(SnapshotMeta(5, 1, ConfState((1, 2, 3))), b"")
    return Ready(
        soft_state=SoftState(1, Role.LEADER, 2), hard_state=HardState(2, 1, 6), snapshot=snap,
        entries=[Entry(2, 6, b"a"), Entry(2, 7, b"b")], committed_entries=[Entry(2, 6, b"a")],
        messages=[AppendEntries(1, 2, 2, 5, 1, (Entry(2, 6, b"a"),), 5)],
        messages_after_persist=[AppendEntriesResponse(1, 3, 2, True, 7)],
        read_states=[ReadState(6, b"ctx")], must_sync=True, conf=ConfState((1, 2, 3)))


def test_the_numbered_order() -> None:
    """Steps 1-8 of node/ready_handler.py, each followed by its boundary."""
    r = Recorder()
    ports = ReadyPorts(r.on_soft_state, peers=r, disk=r, apply=r, snapshots=r)
    rd = _full_ready()
    handle_ready(cast(RaftCore, r), rd, ports, r.between)
    assert r.calls == [
        ("soft_state", Role.LEADER), ("update_members", 2, ConfState((1, 2, 3))), ("between", Step.HOOKS),
        ("send", "AppendEntries"), ("between", Step.SEND),
        ("disk.install_snapshot", 5), ("apply.restore", 5), ("between", Step.INSTALL),
        ("disk.append", 2, HardState(2, 1, 6), True), ("between", Step.PERSIST),
        ("send", "AppendEntriesResponse"), ("persisted",), ("between", Step.SEND_AFTER_PERSIST),
        ("apply", 6), ("applied", 1, 1), ("between", Step.APPLY),
        ("maybe_start_snapshot",), ("between", Step.SNAPSHOT),
        ("accept",),
    ]


def test_asynchronous_writes_send_what_promises_durability_only_when_the_write_ends() -> None:
    """With `writes`, step 4 queues the write and the Ready is accepted at once;
    the acknowledgements go, and the core hears of the write, only when it ends."""
    r = Recorder()
    ports = ReadyPorts(r.on_soft_state, peers=r, disk=r, apply=r, snapshots=r, writes=r)
    handle_ready(cast(RaftCore, r), _full_ready(), ports, r.between)
    assert r.calls == [
        ("soft_state", Role.LEADER), ("update_members", 2, ConfState((1, 2, 3))), ("between", Step.HOOKS),
        ("send", "AppendEntries"), ("between", Step.SEND),
        ("disk.install_snapshot", 5), ("apply.restore", 5), ("between", Step.INSTALL),
        ("writes.submit", 2, HardState(2, 1, 6), True), ("between", Step.PERSIST),
        ("between", Step.SEND_AFTER_PERSIST),
        ("apply", 6), ("applied", 1, 1), ("between", Step.APPLY),
        ("maybe_start_snapshot",), ("between", Step.SNAPSHOT),
        ("accept",),
    ]
    r.calls.clear()
    r.end_writes()
    assert r.calls == [("send", "AppendEntriesResponse"), ("persisted",)]


def test_an_asynchronous_ready_with_only_acknowledgements_still_queues_behind_the_writes() -> None:
    """An acknowledgement may be of entries an earlier, still queued write carries:
    a Ready with nothing to write queues too, so its messages wait for that write."""
    r = Recorder()
    ports = ReadyPorts(r.on_soft_state, peers=r, disk=r, apply=r, snapshots=r, writes=r)
    handle_ready(cast(RaftCore, r), Ready(messages_after_persist=[AppendEntriesResponse(1, 3, 2, True, 7)]), ports)
    assert r.calls[0] == ("writes.submit", 0, None, False)
    assert ("send", "AppendEntriesResponse") not in r.calls
    r.end_writes()
    assert r.calls[-2:] == [("send", "AppendEntriesResponse"), ("persisted",)]


def test_an_empty_ready_touches_no_disk() -> None:
    """Nothing to persist: no WAL write (so no fsync); the apply step still runs
    (reads may have become servable) and the core is advanced."""
    r = Recorder()
    ports = ReadyPorts(r.on_soft_state, peers=r, disk=r, apply=r, snapshots=r)
    handle_ready(cast(RaftCore, r), Ready(), ports)
    assert r.calls == [("persisted",), ("applied", 0, 0), ("maybe_start_snapshot",), ("accept",)]
