"""Snapshot files: written as a stream, checksummed, installed atomically.

File layout (the same bytes are what a leader streams to a follower)::

    8 bytes   magic b"JGDSNAP1"
    u32       length of the metadata that follows
    msgpack   [cluster_id, index, term, voters, learners]
    ...       state machine data, opaque, any length
    u64       data length                 \\ trailer, 40 bytes
    32 bytes  sha256 of everything before the trailer

Checksum: sha256, not crc32. A snapshot is large, crosses the network, and its digest
is also its identity in the WAL marker, so a 32-bit check is too weak; hashlib's
sha256 runs at GB/s, far faster than the state machine can produce bytes.

Writing: into ``<name>.snap.tmp``, fsync, rename to ``<name>.snap``, fsync the
directory. A file with the final name is therefore always complete, but it is not
*committed* until the WAL holds its marker (see storage.py): recovery ignores newer
files without one.
"""
from __future__ import annotations

import hashlib
import os
import re
import struct
import uuid
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Iterable, Iterator, cast

import msgpack

from node.raft.types import ConfState, SnapshotMeta

from .durable import disk_fault, ensure_dir, replace_durably, sync_dir
from .errors import SnapshotCorrupt, SnapshotTransferError
from .reaper import Removal

MAGIC = b"JGDSNAP1"
_META_LEN = struct.Struct("<I")
_TRAILER = struct.Struct("<Q32s")
SUFFIX = ".snap"
_NAME = re.compile(r"^([0-9a-f]{16})-([0-9a-f]{16})\.snap$")
_MAX_META = 16 * 1024 * 1024
#: The etcd face pads the file it streams to a multiple of this (node/etcd/maintenance.py).
_ETCD_ALIGN = 512


def snapshot_filename(index: int, term: int) -> str:
    return f"{index:016x}-{term:016x}{SUFFIX}"


def parse_snapshot_filename(filename: str) -> tuple[int, int] | None:
    match = _NAME.match(filename)
    return (int(match.group(1), 16), int(match.group(2), 16)) if match else None


@dataclass(frozen=True, slots=True)
class SnapshotRef:
    """A complete snapshot file: what ``Snapshot.data`` holds in the node. Reading
    stays valid even if the file is pruned meanwhile (POSIX keeps unlinked open files)."""

    path: Path
    meta: SnapshotMeta
    checksum: bytes
    data_offset: int
    data_length: int

    @property
    def file_size(self) -> int:
        return self.data_offset + self.data_length + _TRAILER.size

    def iter_file(self, chunk_bytes: int = 1 << 20) -> Iterator[bytes]:
        """The whole file in chunks: what a leader streams to a follower."""
        with self.path.open("rb") as file:
            while chunk := file.read(chunk_bytes):
                yield chunk

    def iter_data(self, chunk_bytes: int = 1 << 20) -> Iterator[bytes]:
        """The state machine's bytes in chunks, checked against the checksum as they
        go: raises SnapshotCorrupt after the last chunk if they do not match, so a
        restore must not be trusted until the iterator is exhausted."""
        digest = hashlib.sha256()
        with self.path.open("rb") as file:
            prefix = file.read(self.data_offset)
            digest.update(prefix)
            remaining = self.data_length
            while remaining:
                chunk = file.read(min(chunk_bytes, remaining))
                if not chunk:
                    raise SnapshotCorrupt(self.path, self.data_offset + self.data_length - remaining, "file shorter than its trailer says")
                digest.update(chunk)
                remaining -= len(chunk)
                yield chunk
        if digest.digest() != self.checksum:
            raise SnapshotCorrupt(self.path, self.data_offset, "sha256 of the data does not match the trailer")


def _encode_prefix(cluster_id: str, meta: SnapshotMeta) -> bytes:
    fields = [cluster_id, meta.index, meta.term, list(meta.conf.voters), list(meta.conf.learners),
              *meta.conf.joint_fields()]  # none for a simple configuration: the format as before
    packed = cast(bytes, msgpack.packb(fields, use_bin_type=True))
    return MAGIC + _META_LEN.pack(len(packed)) + packed


def read_snapshot_header(path: Path, cluster_id: str) -> SnapshotRef:
    """Parse a snapshot file's metadata and trailer without hashing the data."""
    ref, file_cluster = _read_header(path, None)
    if file_cluster != cluster_id:
        raise SnapshotCorrupt(path, len(MAGIC), f"snapshot of cluster {file_cluster!r}, expected {cluster_id!r}")
    return ref


def read_backup_header(path: Path) -> tuple[SnapshotRef, str]:
    """A snapshot file saved by an operator, of any cluster: its header and the
    cluster id it names. Besides the plain file (`python -m cluster snapshot save`)
    this accepts what `etcdctl snapshot save` writes from the etcd face's
    Maintenance.Snapshot: the file padded with zeros to a multiple of 512 bytes,
    then the SHA-256 of those bytes (checked here). Data is not hashed: use
    `verify_snapshot` (or `iter_data`) before trusting it."""
    size = path.stat().st_size
    if size % _ETCD_ALIGN == hashlib.sha256().digest_size:
        with path.open("rb") as file:
            digest = hashlib.sha256()
            remaining = size - digest.digest_size
            while remaining:
                chunk = file.read(min(1 << 20, remaining))
                if not chunk:
                    break
                digest.update(chunk)
                remaining -= len(chunk)
            if digest.digest() == file.read():
                return _read_padded(path, size - digest.digest_size)
    return _read_header(path, None)


def _read_padded(path: Path, padded: int) -> tuple[SnapshotRef, str]:
    """The file within the first `padded` bytes: the one length whose trailer
    agrees with it, followed by zeros only."""
    with path.open("rb") as file:
        file.seek(max(0, padded - _ETCD_ALIGN - _TRAILER.size))
        tail = file.read(padded - file.tell())
    for pad in range(min(_ETCD_ALIGN, padded)):
        end = len(tail) - pad
        if pad and tail[end] != 0:
            break
        if end < _TRAILER.size:
            break
        try:
            return _read_header(path, padded - pad)
        except SnapshotCorrupt:
            continue
    raise SnapshotCorrupt(path, padded, "not a snapshot file padded to 512 bytes")


def _read_header(path: Path, length: int | None) -> tuple[SnapshotRef, str]:
    """The header of the snapshot file in the first `length` bytes of `path` (all of
    it if None), and the cluster it names."""
    with path.open("rb") as file:
        size = os.fstat(file.fileno()).st_size if length is None else length
        head = file.read(len(MAGIC) + _META_LEN.size)
        if len(head) < len(MAGIC) + _META_LEN.size or head[: len(MAGIC)] != MAGIC:
            raise SnapshotCorrupt(path, 0, "not a snapshot file (bad magic)")
        (meta_len,) = _META_LEN.unpack_from(head, len(MAGIC))
        data_offset = len(head) + meta_len
        if meta_len > _MAX_META or data_offset + _TRAILER.size > size:
            raise SnapshotCorrupt(path, len(MAGIC), f"metadata length {meta_len} does not fit a {size}-byte file")
        meta, file_cluster = _decode_meta(path, file.read(meta_len), len(head))
        file.seek(size - _TRAILER.size)
        data_length, checksum = _TRAILER.unpack(file.read(_TRAILER.size))
    if data_offset + data_length + _TRAILER.size != size:
        raise SnapshotCorrupt(path, size - _TRAILER.size, f"trailer says {data_length} data bytes; the file holds {size - data_offset - _TRAILER.size}")
    return SnapshotRef(path, meta, checksum, data_offset, data_length), file_cluster


def _decode_meta(path: Path, packed: bytes, offset: int) -> tuple[SnapshotMeta, str]:
    try:
        cluster_id, index, term, voters, learners, *joint = msgpack.unpackb(packed, raw=False)
        return SnapshotMeta(index, term, ConfState.from_fields(voters, learners, joint)), cluster_id
    except (ValueError, TypeError, msgpack.UnpackException) as exc:
        raise SnapshotCorrupt(path, offset, f"undecodable metadata: {exc}") from exc


def verify_snapshot(ref: SnapshotRef) -> None:
    """Hash the whole file against its trailer; raise SnapshotCorrupt on mismatch."""
    for _ in ref.iter_data():
        pass


#: A snapshot being written has its data handed to the kernel's writeback every
#: this many bytes (`_TempFile.start_writeback`), so its commit's fsync is short.
WRITEBACK_BYTES = 4 << 20


class _TempFile:
    """A file being written under a temp name, installed by an fsync + rename."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.file: BinaryIO | None = tmp.open("xb")

    def write(self, data: bytes) -> None:
        if self.file is None:
            raise SnapshotTransferError(f"{self.tmp} is already finished or aborted")
        with disk_fault(f"write of {len(data)} bytes to", self.tmp, self.file.tell()):
            self.file.write(data)

    def start_writeback(self, start: int) -> None:
        """Ask the kernel to start writing the bytes from `start` to here, without
        waiting (POSIX_FADV_DONTNEED starts writeback of dirty pages on Linux and
        drops the pages already clean). A machine with plenty of memory otherwise
        holds the whole file dirty until `close_synced`, whose one fsync then
        writes tens of MiB in the loop turn that commits the snapshot: 6-8 ms of
        CPU and 50-130 ms of wall time for 70 MiB, against ~1 ms and 10-65 ms."""
        assert self.file is not None
        with disk_fault("flush of", self.tmp, self.file.tell()):
            self.file.flush()
            os.posix_fadvise(self.file.fileno(), start, self.file.tell() - start, os.POSIX_FADV_DONTNEED)

    def close_synced(self) -> None:
        """Flush, fsync, close; a DiskFault (fail-stop) names the file."""
        assert self.file is not None
        with disk_fault("flush and fsync of", self.tmp, self.file.tell()):
            self.file.flush()
            os.fsync(self.file.fileno())
        self.file.close()
        self.file = None

    def abort(self) -> None:
        if self.file is not None:
            try:
                self.file.close()
            except OSError:
                pass  # a full disk refuses the buffered tail; the file is removed anyway
            self.file = None
        self.tmp.unlink(missing_ok=True)


class SnapshotWriter:
    """Streams a new snapshot into the store: ``write`` chunks as the state machine
    produces them (a few per loop step, so the loop never stalls), then ``commit``."""

    def __init__(self, directory: Path, cluster_id: str, meta: SnapshotMeta, name: str = "") -> None:
        """`name`: the file's name in `directory` (default: the store's name for `meta`)."""
        self._final = directory / (name or snapshot_filename(meta.index, meta.term))
        self._temp = _TempFile(directory / f"{self._final.name}.{uuid.uuid4().hex}.tmp")
        self._meta = meta
        self._digest = hashlib.sha256()
        self._data_length = 0
        self._written_back = 0  # data bytes handed to the kernel's writeback so far
        prefix = _encode_prefix(cluster_id, meta)
        self._data_offset = len(prefix)
        self._digest.update(prefix)
        self._temp.write(prefix)

    def write(self, chunk: bytes) -> None:
        self._temp.write(chunk)
        self._digest.update(chunk)
        self._data_length += len(chunk)
        if self._data_length - self._written_back >= WRITEBACK_BYTES:
            self._temp.start_writeback(self._data_offset + self._written_back)
            self._written_back = self._data_length

    def commit(self) -> SnapshotRef:
        """Trailer, fsync, rename, fsync the directory: the file is then durable and
        complete (but not yet committed: the caller writes the WAL marker next)."""
        checksum = self._digest.digest()
        self._temp.write(_TRAILER.pack(self._data_length, checksum))
        self._temp.close_synced()
        replace_durably(self._temp.tmp, self._final)
        return SnapshotRef(self._final, self._meta, checksum, self._data_offset, self._data_length)

    def abort(self) -> None:
        self._temp.abort()

    def __enter__(self) -> SnapshotWriter:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if exc is not None:
            self.abort()


class SnapshotReceiver:
    """The follower's side of InstallSnapshot: accepts the leader's file in chunks,
    and only once the whole file verifies (magic, cluster, metadata, sha256) renames
    it into the store. Nothing of the follower's state changes before ``finish``."""

    def __init__(self, directory: Path, cluster_id: str, expected: SnapshotMeta | None) -> None:
        self._dir = directory
        self._cluster_id = cluster_id
        self._expected = expected
        self._temp = _TempFile(directory / f"recv-{uuid.uuid4().hex}{SUFFIX}.tmp")
        self.received = 0
        # The sha256 of every byte but the trailer, as they arrive: `finish` needs no
        # second read of the file (70 ms of CPU in one loop turn for a 40 MB file).
        self._digest = hashlib.sha256()
        self._held = b""  # the last _TRAILER.size bytes: the trailer, if the file ends here

    def write(self, chunk: bytes, offset: int | None = None) -> None:
        """Append ``chunk``; if ``offset`` is given it must be the next byte expected
        (a duplicate or reordered chunk is the transport's bug, not silently fixed)."""
        if offset is not None and offset != self.received:
            raise SnapshotTransferError(f"snapshot chunk at offset {offset}, expected offset {self.received}")
        self._temp.write(chunk)
        self.received += len(chunk)
        held = memoryview(self._held + chunk)
        cut = max(len(held) - _TRAILER.size, 0)
        self._digest.update(held[:cut])
        self._held = bytes(held[cut:])

    def finish(self) -> SnapshotRef:
        """Verify and install; raises SnapshotCorrupt (and discards the file) if the
        bytes do not check out."""
        self._temp.close_synced()
        try:
            ref = read_snapshot_header(self._temp.tmp, self._cluster_id)
            if ref.file_size != self.received or self._digest.digest() != ref.checksum:
                raise SnapshotCorrupt(self._temp.tmp, ref.data_offset, "sha256 of the data does not match the trailer")
            if self._expected is not None and ref.meta != self._expected:
                raise SnapshotCorrupt(self._temp.tmp, 0, f"snapshot is {ref.meta}, expected {self._expected}")
        except SnapshotCorrupt:
            self._temp.abort()
            raise
        final = self._dir / snapshot_filename(ref.meta.index, ref.meta.term)
        replace_durably(self._temp.tmp, final)
        return SnapshotRef(final, ref.meta, ref.checksum, ref.data_offset, ref.data_length)

    def abort(self) -> None:
        self._temp.abort()

    def __enter__(self) -> SnapshotReceiver:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if exc is not None:
            self.abort()


class SnapshotStore:
    """The ``snap/`` directory of a node."""

    def __init__(self, directory: Path, cluster_id: str) -> None:
        self.directory = directory
        self.cluster_id = cluster_id
        ensure_dir(directory)

    def files(self) -> list[tuple[int, int, Path]]:
        """(index, term, path) of every complete snapshot file, oldest first."""
        found = []
        for path in self.directory.iterdir():
            parsed = parse_snapshot_filename(path.name)
            if parsed is not None:
                found.append((parsed[0], parsed[1], path))
        return sorted(found)

    def path_for(self, meta: SnapshotMeta) -> Path:
        return self.directory / snapshot_filename(meta.index, meta.term)

    def create(self, meta: SnapshotMeta) -> SnapshotWriter:
        return SnapshotWriter(self.directory, self.cluster_id, meta)

    def save(self, meta: SnapshotMeta, chunks: Iterable[bytes]) -> SnapshotRef:
        with self.create(meta) as writer:
            for chunk in chunks:
                writer.write(chunk)
            return writer.commit()

    def receive(self, expected: SnapshotMeta | None = None) -> SnapshotReceiver:
        return SnapshotReceiver(self.directory, self.cluster_id, expected)

    def open(self, path: Path) -> SnapshotRef:
        return read_snapshot_header(path, self.cluster_id)

    def remove_temp_files(self) -> list[Path]:
        """Temp files are writes or transfers a crash interrupted: never installed."""
        removed = [path for path in self.directory.glob("*.tmp")]
        for path in removed:
            path.unlink()
        if removed:
            sync_dir(self.directory)
        return removed

    def prune(self, keep: int, newest_committed: int, removal: Removal = Removal()) -> list[Path]:
        """Delete all but the ``keep`` newest files at or below ``newest_committed``
        (newer files are not committed yet and are not this function's business),
        through `removal` (node/storage/reaper.py: maybe in a thread of its own)."""
        committed = [path for index, _, path in self.files() if index <= newest_committed]
        doomed = committed[:-keep] if keep else committed
        removal.remove(doomed)
        return doomed

