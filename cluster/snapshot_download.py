"""A member's snapshot file as a client receives it, piece by piece, checked.

`Client.snapshot` asks one member for its snapshot file in bounded pieces
(SnapshotReadRequest, cluster/protocol.py) and hands each answer to a
`SnapshotDownload`, which writes the bytes to the sink and hashes them as they
go. The file's own integrity check is its trailer (node/storage/snapshot_file.py:
the data length and the SHA-256 of everything before the trailer); every answer
also names that SHA-256, so a piece of another file (the member replaced its
snapshot between two requests) is noticed at once, and the finished download is
accepted only if the bytes hash to it. The format is restated here only as far
as the trailer: the cluster package does not import the node's storage.
"""
from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from typing import Any, BinaryIO

from cluster.errors import ClientError

#: The file's trailer: u64 data length, then the SHA-256 of all bytes before it.
_TRAILER = struct.Struct("<Q32s")


class SnapshotMismatch(ClientError):
    """The bytes received are not the snapshot file the member named: a piece of
    another file, a size that changed, or a checksum that does not verify."""


@dataclass(frozen=True, slots=True)
class SnapshotSaved:
    """What `Client.snapshot` wrote: member `node_id`'s snapshot at log
    `index`/`term`, `size` bytes whose trailer's SHA-256 is `checksum` (hex)."""

    node_id: int
    index: int
    term: int
    size: int
    checksum: str


class SnapshotDownload:
    def __init__(self, sink: BinaryIO) -> None:
        self._sink = sink
        self._digest = hashlib.sha256()
        self._tail = b""  # the last bytes seen: the trailer once complete
        self.offset = 0
        self.first: dict[str, Any] | None = None

    def take(self, piece: dict[str, Any]) -> bool:
        """Write one answer's bytes; True once the whole file is in (and verified)."""
        data = piece.get("data")
        if not isinstance(data, bytes) or piece.get("offset") != self.offset:
            raise SnapshotMismatch(f"expected the bytes at offset {self.offset}, got {piece.get('offset')!r}")
        first = self.first = self.first or piece
        if any(piece.get(k) != first.get(k) for k in ("index", "term", "size", "checksum")):
            raise SnapshotMismatch("the member's snapshot file changed during the download")
        size = int(first["size"])
        if not data and self.offset < size:
            raise SnapshotMismatch(f"no bytes at offset {self.offset} of a {size}-byte file")
        self._sink.write(data)
        self._hash(data, size)
        self.offset += len(data)
        if self.offset < size:
            return False
        self._verify(size, str(first["checksum"]))
        return True

    def _hash(self, data: bytes, size: int) -> None:
        """Hash every byte before the trailer; keep the trailer's."""
        start, end = self.offset, self.offset + len(data)
        body_end = size - _TRAILER.size
        if start < body_end:
            self._digest.update(data[:body_end - start])
        if end > body_end:
            self._tail += data[max(0, body_end - start):]

    def _verify(self, size: int, checksum: str) -> None:
        if self.offset != size or len(self._tail) != _TRAILER.size:
            raise SnapshotMismatch(f"received {self.offset} bytes of a {size}-byte file")
        _, trailer_sum = _TRAILER.unpack(self._tail)
        if trailer_sum.hex() != checksum or self._digest.digest() != trailer_sum:
            raise SnapshotMismatch("the snapshot's SHA-256 does not match its bytes")

    def saved(self, node_id: int) -> SnapshotSaved:
        first = self.first or {}
        return SnapshotSaved(node_id, int(first["index"]), int(first["term"]), int(first["size"]),
                             str(first["checksum"]))
