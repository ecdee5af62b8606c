"""Snapshots: determinism, bounded chunks, restore, corrupt streams, and the
deferral of compaction while a stream is open."""
from __future__ import annotations

import hashlib
import os
import random
import subprocess
import sys
from typing import Any

import msgpack
import pytest
from kv_driver import Driver
from snapshot_formats import as_record_chunks

from cluster.kv import (
    Compact,
    DeleteRange,
    LeaseGrant,
    OpenSession,
    Put,
    PutResponse,
    Range,
    SnapshotCorrupt,
    Txn,
    encode_command,
)
from node.statemachine import StateMachine
from node.statemachine.mvcc import MvccStore


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
    assert header == ["jangada-kv", 5, kv.index, kv.machine.revision, kv.machine.compact_revision]
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


def small_state() -> Driver:
    """History, a tombstone, a txn's two subs, a compaction, a lease and a session."""
    kv = Driver()
    kv(OpenSession())
    kv(LeaseGrant(60, 7))
    kv(Put(b"a", b"1"), 1, 1)
    kv(Put(b"b", b"2", lease=7))
    kv(Put(b"a", b"3"))
    kv(Put(b"c", b"4"))
    kv(DeleteRange(b"c"))
    kv(Txn((), (Put(b"d", b"5"), Put(b"e", b"6")), ()))
    kv(Compact(3))
    kv(Put(b"c", b"7"))
    return kv


#: `small_state()`'s snapshot (chunk_bytes 64) as the FORMAT 4 writer, before the
#: record columns of FORMAT 5, wrote it: what older nodes left on disk.
FORMAT_4_BYTES = bytes.fromhex(
    "95aa6a616e676164612d6b76040a080392a36b767391920096c40161c401310202010092a36b767391920096c40161c4"
    "01330204020092a36b767391920096c40162c401320303010792a36b767391920096c40163c401340505010092a36b76"
    "7391920096c40163c4000006000092a36b767391920096c40163c401370808010092a36b767391920096c40164c40135"
    "0707010092a36b767391920196c40165c401360707010092a66c65617365739193073c0295a461757468c201909092a6"
    "616c61726d739092a873657373696f6e739194010103930102c094a3656e64080101"
)


def test_a_format_4_snapshot_written_by_an_older_node_still_loads() -> None:
    restored = StateMachine.restore([FORMAT_4_BYTES[:100], FORMAT_4_BYTES[100:]])
    assert restored == small_state().machine
    assert restored.read(Range(b"a", b"z")) == small_state().machine.read(Range(b"a", b"z"))
    assert msgpack.unpackb(next(restored.snapshot()))[1] == 5


def test_record_chunks_of_format_4_load_as_their_columns_do() -> None:
    kv = run(workload())
    chunks = as_record_chunks([msgpack.unpackb(c) for c in kv.machine.snapshot(300)])
    assert StateMachine.restore(msgpack.packb(c) for c in chunks) == kv.machine


def single_versions(count: int = 50) -> Driver:
    kv = Driver()
    kv(OpenSession())
    for i in range(count):
        kv(Put(b"key%04d" % i, b"v%d" % i), 1, i + 1)
    return kv


@pytest.mark.parametrize("chunk_bytes", [1, 200, 1 << 20])
def test_single_versions_load_in_bulk_and_equal_the_original(chunk_bytes: int,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    kv = single_versions()
    per_record: list[bytes] = []
    original = MvccStore.load
    monkeypatch.setattr(MvccStore, "load", lambda self, key, *rest: (per_record.append(key), original(self, key, *rest)))
    restored = StateMachine.restore(kv.machine.snapshot(chunk_bytes))
    assert restored == kv.machine and per_record == []  # every chunk took the bulk path
    assert restored.read(Range(b"key", b"kez")) == kv.machine.read(Range(b"key", b"kez"))


def _columns(kv: Driver) -> list[list[object]]:
    return [msgpack.unpackb(c) for c in kv.machine.snapshot(1 << 20)]


def _mutate_columns(chunks: list[list[object]], change: object) -> list[bytes]:
    out = []
    for chunk in chunks:
        if chunk[0] == "kvcols":
            chunk = [list(column) if isinstance(column, list) else column for column in chunk]
            change(chunk)  # type: ignore[operator]
        out.append(msgpack.packb(chunk))
    return out


def _set(column: int, at: int, value: object):  # type: ignore[no-untyped-def]
    def change(chunk: list[list[object]]) -> None:
        chunk[column][at] = value
    return change


@pytest.mark.parametrize("name, change", [
    ("a column short", lambda c: c[4].pop()),
    ("no records", lambda c: c[1:] and [column.clear() for column in c[1:]]),
    ("seven columns", lambda c: c.pop()),
    ("a key not bytes", _set(2, 3, "key0003")),
    ("a value not bytes", _set(3, 3, 7)),
    ("a negative revision", _set(5, 3, -1)),
    ("a revision above int64", _set(4, 3, 1 << 63)),
    ("a bool version", _set(6, 3, True)),
    ("keys out of order", _set(2, 3, b"key0001")),
    ("a record twice", lambda c: [c[column].__setitem__(4, c[column][3]) for column in range(1, 8)]),
    ("a history starting with a tombstone", _set(6, 0, 0)),
    ("a mod revision after the snapshot's", _set(5, 3, 10**6)),
])
def test_corrupt_record_columns_fail_restore(name: str, change: object) -> None:
    with pytest.raises(SnapshotCorrupt):
        StateMachine.restore(_mutate_columns(_columns(single_versions()), change))


def test_record_columns_in_the_wrong_format_fail_restore() -> None:
    chunks = _columns(single_versions())
    with pytest.raises(SnapshotCorrupt):
        StateMachine.restore(msgpack.packb(c) for c in [["jangada-kv", 4, *chunks[0][2:]], *chunks[1:]])


def test_a_stream_consumed_while_writes_continue_holds_the_state_at_its_start() -> None:
    kv = single_versions(40)
    expected = StateMachine.restore(kv.machine.snapshot())
    stream = kv.machine.snapshot(200)
    first = [next(stream), next(stream)]
    kv(Put(b"key0039", b"overwritten"))  # a bare entry becomes a history, past the stream's revision
    kv(Put(b"key0000a", b"created later"))  # a new key, after the stream's revision
    kv(Put(b"key9999", b"created later, after every key"))
    assert StateMachine.restore([*first, *stream]) == expected


def test_a_stream_stops_at_its_last_key_instead_of_walking_keys_created_since(monkeypatch: pytest.MonkeyPatch
                                                                               ) -> None:
    """A store filled in key order gets its new keys after every old one: the
    stream's last step used to look at each of them (skipped, newer than the
    stream) in one call -- 106 ms of CPU at 3.5M keys in a fill."""
    kv = single_versions(40)
    expected = StateMachine.restore(kv.machine.snapshot())
    looked_at: list[bytes] = []
    stored = MvccStore.stored

    def counting(self: MvccStore, keys: list[bytes]) -> list[Any]:
        looked_at.extend(keys)
        return stored(self, keys)

    monkeypatch.setattr(MvccStore, "stored", counting)
    stream = kv.machine.snapshot(200)
    first = [next(stream), next(stream)]
    for i in range(300):
        kv(Put(b"zz%04d" % i, b"created while the stream ran"))
    assert StateMachine.restore([*first, *stream]) == expected
    assert looked_at and not [k for k in looked_at if k.startswith(b"zz")]
