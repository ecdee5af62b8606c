"""One member's data directory of a NEW cluster, starting from a saved state.

etcdctl's `snapshot restore` writes a member's data directory whose state is the
snapshot's and whose membership is the new cluster's (`--initial-cluster`); this
does the same from the new cluster's config:

* the snapshot's key-value history (every key's create and mod revisions and
  version, the store's revision and compact revision), leases (as etcd's restore
  keeps them: their TTLs start again under the new leader), auth users and roles,
  and client sessions are kept as they were;
* raised alarms are not: they named members of the old cluster (a CORRUPT alarm
  would refuse every request of the new one), and a NOSPACE condition is raised
  again by the new cluster if it still holds (etcd's restore keeps its alarm
  bucket; a documented difference);
* the membership is the config's members, every one a voter, written as the
  snapshot's members frame and its metadata (node/address_book.py), so no
  membership change of the old cluster survives;
* the cluster id is the config's `[cluster] id`, which must differ from the one
  the snapshot names: the WAL, the snapshot file and every peer message carry
  it, so no member of the old cluster can vote in, replicate to or join the new
  one (node/storage/segment.py's Identity, node/wire.py).

The directory is written beside its final name (`<dir>.restoring`) and renamed
into place once complete, then opened once as the node will open it. It holds a
snapshot at the saved state's log index and term and a hard state committing it,
and no entries: every member restored from one file holds
byte-identical state at the same (index, term), so the first election proceeds
as after any restart, and the log continues from that index.
"""
from __future__ import annotations

import shutil
from pathlib import Path

from cluster.spec import ClusterSpec
from node.address_book import Address, Membership, with_members
from node.backup.backup_file import load_backup
from node.raft import ConfState, HardState, SnapshotMeta
from node.raft.types import NONE, Index, NodeId, Term
from node.snapshot_transfer import frame_chunks
from node.statemachine import StateMachine
from node.storage import DataDir, SnapshotRef, StorageOptions
from node.storage.durable import replace_durably


class RestoreRefused(Exception):
    """The restore would not make a sound new member (the message says why);
    nothing was written."""


def restore_member(backup: Path, spec: ClusterSpec, node_id: int, data_dir: Path | None = None) -> SnapshotRef:
    """Member `node_id` of the cluster `spec` describes, in `data_dir` (default the
    config's), starting from the snapshot file `backup`."""
    target = data_dir or spec.data_dir_for(node_id)
    _check_target(spec, node_id, target)
    loaded = load_backup(backup)
    if loaded.cluster_id == spec.cluster_id:
        raise RestoreRefused(f"the config's [cluster] id {spec.cluster_id!r} is the snapshot's: a restored cluster "
                             "needs a new id, so that no member of the old one can take part in it")
    return write_member(loaded.machine, loaded.ref.meta.term, spec, node_id, target)


def _check_target(spec: ClusterSpec, node_id: int, target: Path) -> None:
    if node_id not in spec.ids:
        raise RestoreRefused(f"node {node_id} is not a member in the config (members: {list(spec.ids)})")
    if target.exists() and any(target.iterdir()):
        raise RestoreRefused(f"data directory {target} exists and is not empty")


def write_member(machine: StateMachine, term: int, spec: ClusterSpec, node_id: int, target: Path) -> SnapshotRef:
    """Write `machine`'s state (at its applied index, in log term `term`) as the
    whole of member `node_id`'s new data directory `target`."""
    _check_target(spec, node_id, target)
    index = machine.applied_index
    if index < 1 or term < 1:
        raise RestoreRefused("the saved state is empty (log index 0): start a new cluster instead")
    machine.clear_alarms()
    conf = ConfState(tuple(NodeId(i) for i in spec.ids))
    book = Membership(node_id, {m.id: Address(m.peer, m.client, m.grpc, m.gateway) for m in spec.members}, conf)
    meta = SnapshotMeta(Index(index), Term(term), conf)
    chunks = frame_chunks(with_members(book.members_frame(conf), machine.snapshot(spec.snapshot.chunk_bytes)))
    options = StorageOptions(segment_bytes=spec.storage.segment_bytes, keep_snapshots=spec.storage.keep_snapshots)
    # Written aside, then renamed: an interrupted restore leaves no half-made member
    # directory that a node could start from (or that a second restore would refuse).
    scratch = target.with_name(f"{target.name}.restoring")
    if scratch.exists():
        shutil.rmtree(scratch)  # an interrupted restore's, never a member's
    storage, _ = DataDir.open(scratch, spec.cluster_id, node_id, options)
    with storage:
        storage.save_snapshot(meta, chunks)
        storage.append([], HardState(Term(term), NONE, Index(index)), sync=True)
    if target.exists():
        target.rmdir()  # empty (checked above)
    replace_durably(scratch, target)
    storage, recovered = DataDir.open(target, spec.cluster_id, node_id, options)  # as the node will
    storage.close()
    ref = recovered.snapshot_ref
    assert ref is not None and ref.meta == meta, f"{target} does not recover to the snapshot just written"
    return ref
