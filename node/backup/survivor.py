"""Everything a stopped member's data directory holds, as one snapshot file.

When the other members are lost, the survivor's directory is the cluster's only
copy. Its newest snapshot alone would lose what came after it, so the state is
its snapshot plus its WAL's entries applied in order - *all* of them, not only
those up to the commit index it recorded. An entry acknowledged to a client was
on a majority, but this member may not yet have heard that it was committed (a
follower learns the commit index with the next message), so stopping at the
recorded commit index could drop an acknowledged write. An entry that was never
committed is a write whose client was not answered (its outcome was unknown), so
including it is a legal outcome; every entry in the log was appended by a
leader, and the log is consistent (Raft's Log Matching property). etcd's
`--force-new-cluster` drops the entries beyond the commit index instead.

The result is an ordinary snapshot file of the old cluster (same format as
`python -m cluster snapshot save` writes), which `snapshot status` reads and
`snapshot restore` / `python -m supervisor up N --from-snapshot` turn into a new
cluster. Opening the directory takes its lock (the member must be stopped) and
drops a torn WAL tail, exactly as the member's own restart would.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from node.address_book import split_members
from node.backup.backup_file import READ_BYTES
from node.raft import ConfState, EntryKind, SnapshotMeta
from node.raft.types import Index, Term
from node.snapshot_transfer import frame_chunks, unframe_chunks
from node.statemachine import StateMachine
from node.storage import DataDir, SnapshotRef
from node.storage.snapshot_file import SnapshotWriter


@dataclass(frozen=True, slots=True)
class SurvivorState:
    """The member's state after its whole log: applied `index` in `term`, of which
    `snapshot_index` came from its snapshot and `beyond_commit` entries lie past
    the commit index it had recorded."""

    machine: StateMachine
    index: int
    term: int
    snapshot_index: int
    commit_index: int
    beyond_commit: int


def survivor_state(data_dir: Path, cluster_id: str, node_id: int) -> SurvivorState:
    storage, recovered = DataDir.open(data_dir, cluster_id, node_id)
    try:
        ref = recovered.snapshot_ref
        machine = StateMachine()
        index = term = 0
        if ref is not None:
            _, chunks = split_members(unframe_chunks(ref.iter_data(READ_BYTES)))
            machine = StateMachine.restore(chunks)
            index, term = ref.meta.index, ref.meta.term
        snapshot_index = index
        for entry in recovered.entries:
            if entry.kind is EntryKind.NORMAL:
                machine.apply(entry.index, entry.data)
            else:
                machine.apply_empty(entry.index)
            index, term = entry.index, entry.term
    finally:
        storage.close()
    commit = recovered.hard_state.commit
    return SurvivorState(machine, index, term, snapshot_index, commit, max(0, index - max(commit, snapshot_index)))


def save_survivor(state: SurvivorState, cluster_id: str, out: Path, chunk_bytes: int) -> SnapshotRef:
    """Write `state` to the snapshot file `out` (a temp name, fsync, rename)."""
    meta = SnapshotMeta(Index(state.index), Term(state.term), ConfState())
    out = out.absolute()
    with SnapshotWriter(out.parent, cluster_id, meta, name=out.name) as writer:
        for chunk in frame_chunks(state.machine.snapshot(chunk_bytes)):
            writer.write(chunk)
        return writer.commit()
