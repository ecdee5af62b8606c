"""Snapshots: determinism, bounded chunks, restore, corrupt streams, and the
deferral of compaction while a stream is open."""
from __future__ import annotations

import hashlib
import os
import random
import subprocess
import sys

import msgpack
import pytest
from kv_driver import Driver

from cluster.kv import (
    Compact,
    DeleteRange,
    OpenSession,
    Put,
    PutResponse,
    Range,
    SnapshotCorrupt,
    Txn,
    encode_command,
)
from node.statemachine import StateMachine


def workload(seed: int = 7, steps: int = 600) -> list[bytes]:
    """A seeded mix of writes, deletes, sessions and compactions."""
    rng = random.Random(seed)
    commands = [encode_command(OpenSession())]
    revision = 1
    for i in range(steps):
        key = b"k%03d" % rng.randrange(60)
        roll = rng.random()
        if roll < 0.6:
            commands.append(encode_command(Put(key, b"v" * rng.randrange(50)), 1, i + 1))
            revision += 1
        elif roll < 0.8:
            commands.append(encode_command(DeleteRange(key, key + b"5")))
        elif roll < 0.9:
            commands.append(encode_command(Txn((), (Put(key, b"t"), DeleteRange(b"k05")), ())))
        else:
            commands.append(encode_command(Compact(max(2, revision - rng.randrange(20)))))
    return commands


def run(commands: list[bytes]) -> Driver:
    kv = Driver()
    for data in commands:
        kv.raw(data)
    return kv


def digest(machine: StateMachine) -> str:
    return hashlib.sha256(b"".join(machine.snapshot(4096))).hexdigest()


def test_replicas_applying_the_same_log_have_byte_identical_snapshots() -> None:
    assert list(run(workload()).machine.snapshot()) == list(run(workload()).machine.snapshot())


def test_snapshot_bytes_do_not_depend_on_the_hash_seed() -> None:
    """Nothing may depend on set or dict order of bytes keys (PYTHONHASHSEED)."""
    script = (
        "import sys; sys.path.insert(0, sys.argv[1]);"
        "import test_kv_snapshot as t; print(t.digest(t.run(t.workload()).machine))"
    )
    here = os.path.dirname(__file__)
    digests = {
        subprocess.run([sys.executable, "-c", script, here], check=True, capture_output=True,
                       text=True, env={**os.environ, "PYTHONHASHSEED": seed}).stdout.strip()
        for seed in ("0", "4242")
    }
    assert digests == {digest(run(workload()).machine)}


@pytest.mark.parametrize("chunk_bytes", [1, 300, 5000])
def test_chunks_stay_within_chunk_bytes_plus_one_record(chunk_bytes: int) -> None:
    kv = run(workload())
    one_record = 4 + 50 + 64  # key, value (< 50), framing; the chunk's own header < 16
    for data in kv.machine.snapshot(chunk_bytes):
        assert len(data) <= chunk_bytes + one_record + 16


def test_snapshot_carries_the_applied_index_and_revisions() -> None:
    kv = run(workload())
    kv.skip(3)
    header = msgpack.unpackb(next(kv.machine.snapshot()))
    assert header == ["jangada-kv", 4, kv.index, kv.machine.revision, kv.machine.compact_revision]
    restored = StateMachine.restore(kv.machine.snapshot())
    assert restored.applied_index == kv.index


def test_restore_of_a_snapshot_equals_the_original() -> None:
    kv = run(workload())
    restored = StateMachine.restore(kv.machine.snapshot(512))
    assert restored == kv.machine
    assert restored.read(Range(b"k", b"\0")) == kv.machine.read(Range(b"k", b"\0"))


def test_a_restored_session_still_deduplicates() -> None:
    kv = Driver()
    kv(OpenSession())
    first = kv(Put(b"a", b"1"), 1, 1)
    restored = Driver(machine=StateMachine.restore(kv.machine.snapshot()))
    assert restored(Put(b"a", b"1"), 1, 1) == first == PutResponse(2)
    assert restored.machine.revision == 2


def test_an_empty_state_round_trips() -> None:
    machine = StateMachine()
    assert StateMachine.restore(machine.snapshot()) == machine


def corrupt_streams() -> list[tuple[str, list[bytes]]]:
    chunks = list(run(workload(steps=80)).machine.snapshot(200))
    assert len(chunks) > 4
    return [
        ("empty", []),
        ("not msgpack", [b"\xc1"] + chunks[1:]),
        ("wrong magic", [msgpack.packb(["other", 1, 0, 1, 0])] + chunks[1:]),
        ("truncated", chunks[:-1]),
        ("missing middle chunk", chunks[:1] + chunks[2:]),
        ("reordered", [chunks[0], chunks[2], chunks[1], *chunks[3:]]),
        ("data after end", chunks + chunks[1:2]),
        ("garbled record", [chunks[0], msgpack.packb(["kvs", [[0, [b"k", 1]]]]), *chunks[1:]]),
        ("unknown chunk", [chunks[0], msgpack.packb(["leases", []]), *chunks[1:]]),
    ]


@pytest.mark.parametrize("name, chunks", corrupt_streams())
def test_a_corrupt_stream_fails_restore_with_snapshot_corrupt(name: str, chunks: list[bytes]) -> None:
    with pytest.raises(SnapshotCorrupt):
        StateMachine.restore(chunks)


def test_compaction_waits_for_open_streams_then_runs() -> None:
    kv = Driver()
    for value in (b"1", b"2", b"3"):
        kv(Put(b"a", value))
    kv(DeleteRange(b"a"))  # revision 5
    store = kv.machine._store  # noqa: SLF001
    stream = kv.machine.snapshot()
    kv(Compact(5))
    assert len(store.history(b"a").kvs) == 4  # deferred: the stream may still need them
    assert kv(Range(b"a", revision=4)).compact_revision == 5  # type: ignore[union-attr]
    list(stream)
    kv(Put(b"b", b"1"))  # the next write runs the deferred compaction
    assert len(store) == 1


def test_an_abandoned_stream_does_not_block_compaction_forever() -> None:
    kv = Driver()
    kv(Put(b"a", b"1"))
    kv(Put(b"a", b"2"))
    stream = kv.machine.snapshot()
    next(stream)
    del stream
    kv(Compact(3))
    assert len(kv.machine._store.history(b"a").kvs) == 1  # noqa: SLF001


def test_restore_rebuilds_the_change_index_in_sub_revision_order() -> None:
    """The watch change index is rebuilt on load (MvccStore._rebuild_changes): one
    key per single-put revision, and a multi-key transaction's keys in the order it
    wrote them (sub-revision), not key order."""
    commands = workload(seed=11, steps=300)
    for i in range(5):  # keys out of key order within one revision, after a compaction too
        commands.append(encode_command(Txn((), (Put(b"k059", b"a"), Put(b"k001", b"b"), Put(b"k030", b"c")), ())))
        commands.append(encode_command(Put(b"k%03d" % i, b"x")))
    kv = run(commands)
    store = kv.machine._store
    restored = StateMachine.restore(kv.machine.snapshot(512))._store
    assert (restored.changes_from, restored.changes) == (store.changes_from, store.changes)
    assert store.changes[-2] == (b"k059", b"k001", b"k030")
