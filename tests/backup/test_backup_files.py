"""Backup files and restored data directories, without processes: the status
reader (plain and etcd-face-padded files), restore of a member's data directory
into a new cluster (and the supervisor's `up --from-snapshot` doing it for each), a survivor's data directory turned into a backup (its WAL
past the snapshot and past its recorded commit index kept), and the client's
checked download of a snapshot file in pieces."""
from __future__ import annotations

import hashlib
import io
import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from cluster.discovery import Layout
from cluster.kv.alarms import Alarm, AlarmAction, AlarmMember, AlarmType
from cluster.kv import DeleteRange, LeaseGrant, Put, RoleAdd, encode_command
from cluster.kv.auth import UserAdd
from cluster.protocol import SnapshotReadRequest, decode_requests, encode_request
from cluster.snapshot_download import SnapshotDownload, SnapshotMismatch
from cluster.spec import ClusterSpec, load_spec
from node.address_book import Address, Membership, with_members
from node.backup import RestoreRefused, load_backup, restore_member, save_survivor, survivor_state
from node.backup.__main__ import humanize_bytes, main as backup_main, status_text
from node.raft import ConfState, Entry, EntryKind, HardState, SnapshotMeta
from node.replica import restore_state
from node.snapshot_reads import SnapshotReads, SnapshotUnavailable
from node.snapshot_transfer import frame_chunks
from node.statemachine import StateMachine
from node.storage import DataDir
from node.storage.errors import ForeignSegment, SnapshotCorrupt
from supervisor.configgen import prepare_config
from supervisor.control import ControlError
from supervisor.launch import restore_members

pytestmark = pytest.mark.timeout(60)

OLD = "old-cluster"


def spec_for(tmp: Path, cluster_id: str) -> ClusterSpec:
    return replace(load_spec("cluster-3"), cluster_id=cluster_id, data_dir=str(tmp / cluster_id / "node-{id}"))


def commands() -> list[bytes]:
    """Puts (some keys rewritten), a delete, a lease with a key on it, a user, a role,
    and a CORRUPT alarm raised last (it refuses nothing of what came before)."""
    out = [encode_command(LeaseGrant(60, 77))]
    for i in range(30):
        out.append(encode_command(Put(f"k{i % 7}".encode(), f"v{i}".encode())))
    out.append(encode_command(Put(b"leased", b"x", lease=77)))
    out.append(encode_command(DeleteRange(b"k3")))
    out.append(encode_command(UserAdd("root", hashed="h", no_password=True)))
    out.append(encode_command(RoleAdd("reader")))
    out.append(encode_command(Alarm(AlarmAction.ACTIVATE, 2, AlarmType.CORRUPT)))
    return out


def old_member_dir(tmp: Path, snapshot_at: int, commit: int) -> tuple[Path, StateMachine, int]:
    """Node 1 of the old cluster, as a stopped node leaves it: a snapshot at
    `snapshot_at`, the log after it, a hard state committing `commit`. Returns the
    directory, the state after the WHOLE log, and its last index."""
    spec = spec_for(tmp, OLD)
    path = spec.data_dir_for(1)
    entries = [Entry(1, 1, b"", EntryKind.NOOP)] + [Entry(1, i + 2, c) for i, c in enumerate(commands())]
    machine = StateMachine()
    storage, _ = DataDir.open(path, OLD, 1)
    with storage:
        storage.append(entries, HardState(1, 1, commit))
        for entry in entries:
            if entry.kind is EntryKind.NORMAL:
                machine.apply(entry.index, entry.data)
            else:
                machine.apply_empty(entry.index)
            if entry.index == snapshot_at:
                conf = ConfState(spec.ids)
                book = Membership(1, {m.id: Address(m.peer, m.client) for m in spec.members}, conf)
                storage.save_snapshot(SnapshotMeta(snapshot_at, 1, conf),
                                      frame_chunks(with_members(book.members_frame(conf), machine.snapshot(512))))
                storage.compact(snapshot_at)
    return path, machine, entries[-1].index


def saved_backup(tmp: Path) -> tuple[Path, StateMachine]:
    """A backup as `snapshot save` copies it: node 1's snapshot file of its whole log."""
    path, machine, last = old_member_dir(tmp, snapshot_at=0, commit=0)
    storage, _ = DataDir.open(path, OLD, 1)
    with storage:
        conf = ConfState((1, 2, 3))
        ref = storage.save_snapshot(SnapshotMeta(last, 1, conf), frame_chunks(
            with_members(Membership(1, {}, conf).members_frame(conf), machine.snapshot(512))))
        backup = tmp / "backup.snap"
        shutil.copyfile(ref.path, backup)
    return backup, machine


def etcd_padded(plain: Path) -> Path:
    """What etcdctl saves from the etcd face: zeros to a multiple of 512, then the SHA-256."""
    data = plain.read_bytes()
    data += bytes(-len(data) % 512)
    padded = plain.with_name("etcdctl.db")
    padded.write_bytes(data + hashlib.sha256(data).digest())
    return padded


def test_status_reports_etcdctls_fields_for_the_plain_and_the_etcd_padded_file(tmp_path: Path) -> None:
    backup, machine = saved_backup(tmp_path)
    status = load_backup(backup).status()
    assert status.revision == machine.revision
    assert status.hash == machine.hash_kv(0)[0]
    assert status.total_keys == machine.history_records() > 0
    assert status.total_size == backup.stat().st_size
    assert (status.cluster_id, status.index) == (OLD, machine.applied_index)
    padded = etcd_padded(backup)
    assert replace(load_backup(padded).status(), total_size=status.total_size) == status
    out = io.StringIO()
    assert backup_main(["status", str(backup), "-w", "json"], out) == 0
    assert json.loads(out.getvalue()) == {"hash": status.hash, "revision": status.revision,
                                          "totalKey": status.total_keys, "totalSize": status.total_size}
    table = status_text(status, "table").splitlines()
    assert [c.strip() for c in table[1].split("|")[1:-1]] == ["HASH", "REVISION", "TOTAL KEYS", "TOTAL SIZE"]
    assert status_text(status, "simple") == (f"{status.hash:x}, {status.revision}, {status.total_keys}, "
                                             f"{humanize_bytes(status.total_size)}")
    assert [humanize_bytes(n) for n in (5, 999, 2_100_000, 12_345_678)] == ["5 B", "999 B", "2.1 MB", "12 MB"]


def test_a_damaged_backup_is_refused(tmp_path: Path) -> None:
    backup, _ = saved_backup(tmp_path)
    data = bytearray(backup.read_bytes())
    data[len(data) // 2] ^= 0x01
    backup.write_bytes(bytes(data))
    with pytest.raises(SnapshotCorrupt):
        load_backup(backup)
    assert backup_main(["status", str(backup)], io.StringIO()) == 1


def test_restore_writes_a_new_clusters_member_with_the_same_state(tmp_path: Path) -> None:
    backup, machine = saved_backup(tmp_path)
    assert machine.alarms == (AlarmMember(2, AlarmType.CORRUPT),)  # the old cluster's: not restored
    machine.clear_alarms()
    new = spec_for(tmp_path, "new-cluster")
    for node_id in new.ids:
        restore_member(backup, new, node_id)
    for node_id in new.ids:
        storage, recovered = DataDir.open(new.data_dir_for(node_id), new.cluster_id, node_id)
        with storage:
            ref = recovered.snapshot_ref
            assert ref is not None and recovered.entries == []
            assert recovered.hard_state.commit == ref.meta.index == machine.applied_index
            assert ref.meta.conf == ConfState(new.ids)
            book = Membership(node_id, {}, ConfState())
            restored = restore_state(ref, 4096, book)
        assert restored == machine  # revisions, versions, leases, auth, sessions
        assert restored.lease(77) is not None and restored.auth.user("root") is not None
        assert book.applied_conf == ConfState(new.ids)
        assert book.address(2) == Address(new.member(2).peer, new.member(2).client, new.member(2).grpc,
                                          new.member(2).gateway)
    with pytest.raises(ForeignSegment):  # the old cluster's id is not the new one's
        DataDir.open(new.data_dir_for(1), OLD, 1)


def test_restore_refuses_the_old_cluster_id_a_used_directory_and_a_stranger(tmp_path: Path) -> None:
    backup, _ = saved_backup(tmp_path)
    with pytest.raises(RestoreRefused, match="new id"):
        restore_member(backup, spec_for(tmp_path, OLD), 2, tmp_path / "fresh")
    new = spec_for(tmp_path, "new-cluster")
    used = new.data_dir_for(1)
    used.mkdir(parents=True)
    (used / "something").write_text("x")
    with pytest.raises(RestoreRefused, match="not empty"):
        restore_member(backup, new, 1)
    with pytest.raises(RestoreRefused, match="not a member"):
        restore_member(backup, new, 9)


def test_a_survivor_keeps_its_whole_wal_beyond_the_snapshot_and_the_commit_index(tmp_path: Path) -> None:
    path, machine, last = old_member_dir(tmp_path, snapshot_at=10, commit=20)
    state = survivor_state(path, OLD, 1)
    assert (state.snapshot_index, state.index, state.commit_index) == (10, last, 20)
    assert state.beyond_commit == last - 20
    assert state.machine == machine
    out = tmp_path / "survivor.snap"
    save_survivor(state, OLD, out, 4096)
    new = spec_for(tmp_path, "new-cluster")
    restore_member(out, new, 3)
    machine.clear_alarms()  # a new cluster starts without the old one's alarms
    storage, recovered = DataDir.open(new.data_dir_for(3), new.cluster_id, 3)
    with storage:
        assert recovered.snapshot_ref is not None
        assert restore_state(recovered.snapshot_ref, 4096, Membership(3, {}, ConfState())) == machine


def test_snapshot_reads_are_bounded_and_survive_the_file_being_pruned(tmp_path: Path) -> None:
    backup, _ = saved_backup(tmp_path)
    files = {5: backup}
    reads = SnapshotReads(files.get, OLD, max_message_bytes=1000)
    sink = io.BytesIO()
    download = SnapshotDownload(sink)
    first = reads.read(SnapshotReadRequest(1, 5, 0, 1 << 20), now=0.0)
    assert len(first["data"]) == 500  # half of max_message_bytes
    backup.rename(tmp_path / "pruned")  # the open file stays readable
    files.clear()
    done = download.take(first)
    while not done:
        done = download.take(reads.read(SnapshotReadRequest(1, 5, download.offset, 300), now=1.0))
    assert sink.getvalue() == (tmp_path / "pruned").read_bytes()
    with pytest.raises(SnapshotUnavailable):  # closed at the end; the file is gone now
        reads.read(SnapshotReadRequest(1, 5, 0), now=2.0)
    request = SnapshotReadRequest(7, 5, 1234, 4096, token="t")
    assert decode_requests(encode_request(request), 1 << 20) == [request]


def test_a_download_refuses_bytes_of_another_file_and_a_bad_checksum(tmp_path: Path) -> None:
    backup, _ = saved_backup(tmp_path)
    reads = SnapshotReads({5: backup}.get, OLD, max_message_bytes=1 << 20)
    whole = reads.read(SnapshotReadRequest(1, 5, 0), now=0.0)
    with pytest.raises(SnapshotMismatch, match="changed"):
        download = SnapshotDownload(io.BytesIO())
        download.take({**whole, "data": whole["data"][:100]})
        download.take({**whole, "offset": 100, "data": whole["data"][100:], "term": 9})
    flipped = bytearray(whole["data"])
    flipped[50] ^= 1
    with pytest.raises(SnapshotMismatch, match="SHA-256"):
        SnapshotDownload(io.BytesIO()).take({**whole, "data": bytes(flipped)})


def test_up_from_snapshot_restores_every_member_and_refuses_a_used_directory(tmp_path: Path) -> None:
    backup, machine = saved_backup(tmp_path)
    layout = Layout(tmp_path / "data")
    spec = prepare_config(layout, 1)  # a new config: a new cluster id (one member: one restore process)
    out = io.StringIO()
    restore_members(layout, spec, str(backup), out)
    assert f"restored 1 members of cluster {spec.cluster_id}" in out.getvalue()
    storage, recovered = DataDir.open(layout.root / spec.data_dir_for(1), spec.cluster_id, 1)
    machine.clear_alarms()
    with storage:
        assert recovered.snapshot_ref is not None
        assert restore_state(recovered.snapshot_ref, 4096, Membership(1, {}, ConfState())) == machine
    with pytest.raises(ControlError, match="not empty"):
        restore_members(layout, spec, str(backup), out)
