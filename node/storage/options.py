"""Storage configuration: sync policy, segment size, snapshot retention, and when to
snapshot and compact."""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class SyncPolicy(str, Enum):
    """``always``: every append that asks for it returns only after fdatasync; the only
    mode that may claim durability. ``none``: never fsync (benchmarks and tests of
    recovery logic only; anything printed under it must say so)."""

    ALWAYS = "always"
    NONE = "none"


@dataclass(frozen=True, slots=True)
class StorageOptions:
    #: Rotate to a new WAL segment once the active one reaches this size. A single
    #: batch is never split, so a segment may exceed it by one batch.
    segment_bytes: int = 64 * 1024 * 1024
    sync: SyncPolicy = SyncPolicy.ALWAYS
    #: Snapshot files to keep (the newest committed ones); at least 1.
    keep_snapshots: int = 2
    #: Chunk size for reading snapshot files (streaming to followers, restoring).
    snapshot_chunk_bytes: int = 1024 * 1024
    #: Remove pruned snapshots and compacted WAL segments in a thread of their own
    #: (node/storage/reaper.py: a node's loop must not wait while unlink frees a
    #: large cached file); off, they are gone when compact/commit return.
    remove_in_background: bool = False

    def __post_init__(self) -> None:
        if self.segment_bytes < 4096:
            raise ValueError(f"segment_bytes must be >= 4096, not {self.segment_bytes}")
        if self.keep_snapshots < 1:
            raise ValueError(f"keep_snapshots must be >= 1, not {self.keep_snapshots}")
        if self.snapshot_chunk_bytes < 1:
            raise ValueError("snapshot_chunk_bytes must be positive")
        object.__setattr__(self, "sync", SyncPolicy(self.sync))


@dataclass(frozen=True, slots=True)
class CompactionPolicy:
    """When the node should take a snapshot and compact.

    After ``applied_entries`` entries applied since the last snapshot, but only
    once the WAL has grown since then by at least ``replay_ratio`` times the last
    snapshot's size; or, whatever else, once the WAL holds ``wal_bytes``.

    The size rule amortizes: a snapshot writes the whole state (every retained
    version, which grows with history until the user compacts it), so taking one
    every fixed number of entries costs O(state) per interval and O(n^2) over a
    long run (etcd's fixed snapshot-count is cheap only because its snapshot is
    not a copy of the store). Waiting until the WAL written since the last
    snapshot is a fixed fraction of that snapshot bounds snapshot writing to
    1/replay_ratio times the bytes the WAL took anyway.

    The ratio also bounds what a restart replays: up to replay_ratio times the
    snapshot's size of WAL entries, each of which is applied again (~10 us of
    CPU per 100-byte put) where a snapshot record only loads (~1.3 us per key in
    FORMAT 5's record columns). Measured at 1,000,000 keys (docs/performance.md,
    "Restart"): streaming a snapshot costs ~0.7 us of state-machine CPU per key
    since FORMAT 5 (2.0-2.4 before), so 0.25 spends about what 0.5 did on
    snapshots per applied entry and halves the longest replay again (issue 20:
    a 1M-key follower restart at or below etcd's). At 5,000,000 keys 0.25 still
    let a follower replay 941,376 entries after a 560 MiB snapshot (39.6 s to
    caught up against etcd's 30.2 s; ~6 s plus ~35 us per replayed entry), so the
    ratio is 0.125: about 8 us of snapshot CPU per applied entry per member, and
    at most ~470,000 entries replayed at 5M keys.

    ``applied_entries`` is 100,000, etcd 3.4's --snapshot-count default: a store
    whose state is small but whose history is long (every version kept until a
    compaction) snapshots its whole history every eighth of it, so the floor is
    what bounds snapshot CPU there. 10,000 before: a put-64 load of 25 s on a fresh
    3-member cluster took 8% more ops/s and 10% less cluster CPU per op with
    100,000 (docs/performance.md, section 12), and a follower replaying 99,066
    entries after a kill spends 0.75 s of CPU on it (`python -m node.restart_bench`).
    """

    applied_entries: int = 100_000
    wal_bytes: int = 256 * 1024 * 1024
    replay_ratio: float = 0.125

    def should_snapshot(self, applied_since_snapshot: int, wal_bytes: int,
                        wal_since_snapshot: int | None = None, snapshot_bytes: int = 0) -> bool:
        if applied_since_snapshot <= 0:
            return False
        if wal_bytes >= self.wal_bytes:
            return True
        grown = wal_bytes if wal_since_snapshot is None else wal_since_snapshot
        return applied_since_snapshot >= self.applied_entries and grown >= snapshot_bytes * self.replay_ratio
