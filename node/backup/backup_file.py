"""A saved snapshot file, read back whole: checked, loaded, summarised.

The file is a node's snapshot file (node/storage/snapshot_file.py: a header
naming the cluster, index and term; the state machine's framed chunks led by
the members frame; a SHA-256 trailer), as `python -m cluster snapshot save`
copies it; or the same bytes padded as the etcd face streams them to etcdctl
(`read_backup_header` accepts both). Loading verifies the trailer and every
chunk (the state machine's loader checks order and counts), so a backup that
loads is one a cluster can start from.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from node.address_book import split_members
from node.snapshot_transfer import unframe_chunks
from node.statemachine import StateMachine
from node.storage import SnapshotRef
from node.storage.snapshot_file import read_backup_header, verify_snapshot

#: The piece size files are read in.
READ_BYTES = 1 << 20
#: `status` hashes however many records the file holds: it stalls no node.
_NO_LIMIT = 2**62


@dataclass(frozen=True, slots=True)
class BackupStatus:
    """etcdctl 3.4's `snapshot status` fields, plus where the snapshot came from.

    `hash`: the HashKV digest of the key-value history at `revision` (equal to
    `python -m cluster endpoint hashkv` on a member at that revision, if it has
    not compacted since); `total_keys`: the key-value records the file holds,
    one per key and revision (etcd counts its bbolt keys); `total_size`: the
    file's bytes."""

    hash: int
    revision: int
    total_keys: int
    total_size: int
    cluster_id: str
    index: int
    term: int
    compact_revision: int

    def etcd_json(self) -> dict[str, int]:
        """etcdctl's `snapshot status -w json` object."""
        return {"hash": self.hash, "revision": self.revision, "totalKey": self.total_keys,
                "totalSize": self.total_size}


@dataclass(frozen=True, slots=True)
class Backup:
    ref: SnapshotRef
    cluster_id: str
    machine: StateMachine
    file_size: int

    def status(self) -> BackupStatus:
        digest, revision, compact = self.machine.hash_kv(0, max_records=_NO_LIMIT)
        return BackupStatus(digest, revision, self.machine.history_records(), self.file_size, self.cluster_id,
                            self.ref.meta.index, self.ref.meta.term, compact)


def load_backup(path: Path) -> Backup:
    """The state a snapshot file holds. Raises the storage's SnapshotCorrupt (bad
    header or checksum) or the state machine's SnapshotCorrupt (bad content)."""
    ref, cluster_id = read_backup_header(path)
    verify_snapshot(ref)  # first, so that a damaged file is reported as such, not as bad content
    _, chunks = split_members(unframe_chunks(ref.iter_data(READ_BYTES)))  # the old cluster's members
    machine = StateMachine.restore(chunks)
    return Backup(ref, cluster_id, machine, path.stat().st_size)
