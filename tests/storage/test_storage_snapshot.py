"""Snapshot files: streamed save and chunked restore, transfer to a follower with
checksum verification before install, and commit through the WAL marker."""
from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node.raft.types import ConfState, Entry, SnapshotMeta
from node.storage import DataDir, SnapshotCorrupt, SnapshotTransferError, StorageOptions
from node.storage.snapshot_file import SnapshotStore

META = SnapshotMeta(42, 7, ConfState((1, 2, 3), (4,)))


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    return [data[a:b] for a, b in zip(points, points[1:])]


@settings(max_examples=40, deadline=None)
@given(st.binary(max_size=5000), st.lists(st.integers(0, 5000), max_size=8), st.integers(1, 3000))
def test_a_snapshot_saved_in_any_chunks_restores_in_any_chunk_size(data: bytes, cuts: list[int], chunk: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = SnapshotStore(Path(tmp), "c")
        ref = store.save(META, _split(data, cuts))
        assert ref.meta == META and ref.data_length == len(data)
        assert b"".join(ref.iter_data(chunk)) == data
        assert store.open(ref.path) == ref


@settings(max_examples=40, deadline=None)
@given(st.binary(max_size=5000), st.integers(1, 2000))
def test_a_snapshot_streamed_to_a_follower_in_chunks_installs_identically(data: bytes, chunk: int) -> None:
    with tempfile.TemporaryDirectory() as leader_dir, tempfile.TemporaryDirectory() as follower_dir:
        sent = SnapshotStore(Path(leader_dir), "c").save(META, [data])
        receiver = SnapshotStore(Path(follower_dir), "c").receive(expected=META)
        offset = 0
        for piece in sent.iter_file(chunk):
            receiver.write(piece, offset)
            offset += len(piece)
        installed = receiver.finish()
        assert installed.meta == META and installed.checksum == sent.checksum
        assert b"".join(installed.iter_data()) == data


def _received(tmp_path: Path, payload: bytes) -> SnapshotStore:
    follower = SnapshotStore(tmp_path / "follower", "c")
    receiver = follower.receive()
    receiver.write(payload)
    with pytest.raises(SnapshotCorrupt):
        receiver.finish()
    return follower


def test_a_transfer_with_a_flipped_byte_is_refused_and_leaves_nothing_installed(tmp_path: Path) -> None:
    sent = SnapshotStore(tmp_path / "leader", "c").save(META, [b"abc" * 1000])
    damaged = bytearray(sent.path.read_bytes())
    damaged[sent.data_offset + 1500] ^= 0x40
    follower = _received(tmp_path, bytes(damaged))
    assert list(follower.directory.iterdir()) == []


@pytest.mark.parametrize("piece", [7, 40, 1000])
def test_a_flipped_byte_is_found_whatever_the_chunks(tmp_path: Path, piece: int) -> None:
    """The receiver hashes the bytes as they arrive (holding back what may be the
    trailer), so `finish` reads nothing again: chunks smaller than the trailer too."""
    sent = SnapshotStore(tmp_path / "leader", "c").save(META, [b"abc" * 1000])
    for position in (sent.data_offset + 2, sent.data_offset + sent.data_length - 1):
        damaged = bytearray(sent.path.read_bytes())
        damaged[position] ^= 0x01
        receiver = SnapshotStore(tmp_path / f"follower-{position}", "c").receive()
        for offset in range(0, len(damaged), piece):
            receiver.write(bytes(damaged[offset:offset + piece]), offset)
        with pytest.raises(SnapshotCorrupt):
            receiver.finish()


def test_a_truncated_transfer_is_refused(tmp_path: Path) -> None:
    sent = SnapshotStore(tmp_path / "leader", "c").save(META, [b"abc" * 1000])
    follower = _received(tmp_path, sent.path.read_bytes()[:-10])
    assert list(follower.directory.iterdir()) == []


def test_a_snapshot_from_another_cluster_is_refused(tmp_path: Path) -> None:
    sent = SnapshotStore(tmp_path / "leader", "other-cluster").save(META, [b"abc"])
    receiver = SnapshotStore(tmp_path / "follower", "c").receive()
    receiver.write(sent.path.read_bytes())
    with pytest.raises(SnapshotCorrupt, match="cluster 'other-cluster'"):
        receiver.finish()


def test_a_snapshot_other_than_the_one_announced_is_refused(tmp_path: Path) -> None:
    sent = SnapshotStore(tmp_path / "leader", "c").save(META, [b"abc"])
    receiver = SnapshotStore(tmp_path / "follower", "c").receive(expected=SnapshotMeta(43, 7))
    receiver.write(sent.path.read_bytes())
    with pytest.raises(SnapshotCorrupt, match="expected"):
        receiver.finish()


def test_out_of_order_chunks_are_a_transfer_error(tmp_path: Path) -> None:
    receiver = SnapshotStore(tmp_path, "c").receive()
    receiver.write(b"abcd", 0)
    with pytest.raises(SnapshotTransferError, match="offset 10, expected offset 4"):
        receiver.write(b"efgh", 10)
    receiver.abort()
    assert list(tmp_path.iterdir()) == []


def test_a_writer_aborted_by_an_exception_leaves_no_file(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path, "c")
    with pytest.raises(RuntimeError):
        with store.create(META) as writer:
            writer.write(b"partial")
            raise RuntimeError("state machine failed")
    assert list(tmp_path.iterdir()) == []


def test_a_received_snapshot_is_committed_through_the_data_dir(tmp_path: Path) -> None:
    leader = SnapshotStore(tmp_path / "leader", "c").save(META, [b"state"])
    storage, _ = DataDir.open(tmp_path / "node", "c", 2)
    with storage:
        storage.append([Entry(1, 1)])
        with storage.receive_snapshot(META) as receiver:
            for chunk in leader.iter_file(3):
                receiver.write(chunk)
            ref = receiver.finish()
        storage.commit_snapshot(ref)
        assert storage.snapshot == ref
    storage, state = DataDir.open(tmp_path / "node", "c", 2)
    storage.close()
    assert state.snapshot is not None and state.snapshot.meta == META and state.entries == []


def test_a_snapshot_file_without_its_wal_marker_is_set_aside_on_recovery(tmp_path: Path) -> None:
    """A crash between the file's rename and its marker: the file is not committed."""
    storage, _ = DataDir.open(tmp_path, "c", 1)
    with storage:
        storage.append([Entry(1, i) for i in range(1, 50)])
        storage.save_snapshot(SnapshotMeta(10, 1), [b"committed"])
        storage.begin_snapshot(SnapshotMeta(40, 1)).commit()  # ... and the crash
    storage, state = DataDir.open(tmp_path, "c", 1, StorageOptions())
    storage.close()
    assert state.snapshot is not None and state.snapshot.meta.index == 10
    assert [path.name for path in state.orphaned_snapshots] == [f"{40:016x}-{1:016x}.snap.orphan"]
    assert len(state.entries) == 39
