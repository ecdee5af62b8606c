"""Snapshot files read by clients, a bounded piece per request.

`python -m cluster snapshot save` copies one member's snapshot file across hosts
with SnapshotReadRequests (cluster/protocol.py): each asks for up to
SNAPSHOT_READ_MAX bytes at an offset, so the loop spends one `pread` of at most
that much (a page-cache copy, well under a millisecond) per request and never
stalls on a large file.

A file stays open between requests: the node may prune it (a newer snapshot is
committed, `keep_snapshots`) while a client is half-way, and POSIX keeps an
unlinked open file readable, so the copy completes with the bytes it started
with. At most MAX_OPEN files are held, the least recently read is closed first,
and a file no request touched for IDLE_SECONDS is closed at the next request
(a client that gave up leaves nothing open for long).
"""
from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from cluster.protocol import SNAPSHOT_READ_MAX, SnapshotReadRequest
from node.storage import SnapshotCorrupt, SnapshotRef
from node.storage.snapshot_file import read_snapshot_header

MAX_OPEN = 4
IDLE_SECONDS = 60.0


class SnapshotUnavailable(Exception):
    """The snapshot file asked for is no longer on this node (pruned before the
    client's first read) or unreadable: the client starts again from a newer one."""


@dataclass(slots=True)
class _OpenSnapshot:
    file: BinaryIO
    ref: SnapshotRef
    last_used: float


class SnapshotReads:
    def __init__(self, find: Callable[[int], Path | None], cluster_id: str, max_message_bytes: int) -> None:
        """`find`: the path of the snapshot file at an index (DataDir.snapshot_file)."""
        self._find = find
        self._cluster_id = cluster_id
        #: room for the reply's other fields and msgpack's framing
        self._max_piece = min(SNAPSHOT_READ_MAX, max_message_bytes // 2)
        self._open: OrderedDict[int, _OpenSnapshot] = OrderedDict()

    def read(self, request: SnapshotReadRequest, now: float) -> dict[str, Any]:
        """The StatusReply body for `request`; raises SnapshotUnavailable."""
        self._close_idle(now)
        entry = self._open.get(request.index) or self._open_file(request.index, now)
        entry.last_used = now
        self._open.move_to_end(request.index)
        ref = entry.ref
        size = ref.file_size
        offset = min(request.offset, size)
        data = os.pread(entry.file.fileno(), min(request.max_bytes, self._max_piece, size - offset), offset)
        if offset + len(data) >= size:
            self._close(request.index)  # the client has it all
        return {"index": ref.meta.index, "term": ref.meta.term, "size": size, "checksum": ref.checksum.hex(),
                "offset": offset, "data": data}

    def _open_file(self, index: int, now: float) -> _OpenSnapshot:
        path = self._find(index)
        if path is None:
            raise SnapshotUnavailable(f"no snapshot at index {index} on this node (replaced by a newer one)")
        try:
            file = path.open("rb")
        except FileNotFoundError:
            raise SnapshotUnavailable(f"snapshot {path.name} was just replaced by a newer one") from None
        try:
            ref = read_snapshot_header(path, self._cluster_id)
        except (OSError, SnapshotCorrupt) as error:  # pruned meanwhile, or a file being replaced
            file.close()
            raise SnapshotUnavailable(f"snapshot {path.name}: {error}") from None
        while len(self._open) >= MAX_OPEN:
            self._close(next(iter(self._open)))
        entry = self._open[index] = _OpenSnapshot(file, ref, now)
        return entry

    def _close_idle(self, now: float) -> None:
        for index in [i for i, e in self._open.items() if now - e.last_used > IDLE_SECONDS]:
            self._close(index)

    def _close(self, index: int) -> None:
        entry = self._open.pop(index, None)
        if entry is not None:
            entry.file.close()

    def close(self) -> None:
        for index in list(self._open):
            self._close(index)
