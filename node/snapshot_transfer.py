"""Snapshot work that must not stall the actor loop, done a few chunks per turn.

* `LocalSnapshot`: write the state machine's snapshot stream to a snapshot file,
  then commit its WAL marker. The state machine's stream is lazy and fixed at the
  applied index it started at, so commands applied meanwhile do not leak into it.
* `SnapshotSender`: stream a snapshot file to one follower as SnapshotChunks over
  the peer socket (the leader's half of InstallSnapshot, Raft §7).

Flow control: the follower acknowledges every chunk it has written
(`SnapshotChunkAck`, carrying the bytes received so far) and the sender keeps at
most `window_chunks` chunks unacknowledged, so one stream holds at most
`window_chunks x chunk_bytes` in the ZeroMQ queues and the follower's socket
(2 MiB with the defaults: 8 x 256 KiB), however slow the follower's disk is. The
stream is done when the follower acknowledges the whole file (it verified the
sha256 and stepped its core); no progress for STALL_SECONDS abandons it, and the
core retries later.
* `SnapshotIntake`: the follower's half: chunks into a SnapshotReceiver, which
  verifies magic, cluster, metadata and sha256 before the file is renamed in.
* `SnapshotSenders`: the leader's streams, one per follower.
"""
from __future__ import annotations

import struct
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from node.eventlog import EventLog
from node.snapshot_io import SnapshotFileWork
from node.raft import InstallSnapshot, SnapshotMeta
from node.storage import DataDir, SnapshotReceiver, SnapshotRef
from node.storage.reaper import Removal
from node.wire import SnapshotChunk, SnapshotChunkAck

#: A stream that has made no progress for this long is abandoned (the follower is
#: gone, its queue stays full, or it rejected the file); the core retries later.
STALL_SECONDS = 5.0
#: Chunks a stream may have sent but not yet acknowledged (module docstring).
WINDOW_CHUNKS = 8


_LENGTH = struct.Struct(">I")


def frame_chunks(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """The state machine's chunks, each length-prefixed: a snapshot file's data is
    plain bytes (read back in arbitrary pieces), while the state machine restores
    from the very chunks it produced."""
    for chunk in chunks:
        yield _LENGTH.pack(len(chunk)) + chunk


def unframe_chunks(pieces: Iterable[bytes]) -> Iterator[bytes]:
    """The inverse of `frame_chunks` over arbitrarily split bytes; a truncated frame
    yields a short final chunk, which the state machine rejects as corrupt."""
    buffer = bytearray()
    for piece in pieces:
        buffer += piece
        while len(buffer) >= _LENGTH.size:
            (length,) = _LENGTH.unpack_from(buffer)
            if len(buffer) < _LENGTH.size + length:
                break
            yield bytes(buffer[_LENGTH.size:_LENGTH.size + length])
            del buffer[:_LENGTH.size + length]
    if buffer:
        yield bytes(buffer)


def _no_mark(phase: str) -> None:
    pass


class LocalSnapshot:
    def __init__(self, storage: DataDir, meta: SnapshotMeta, chunks: Iterator[bytes],
                 before_commit: Callable[[], None] = lambda: None) -> None:
        """`before_commit`: runs before the WAL marker is written (the queued WAL
        writes end first: node/wal_writer.py)."""
        self.meta = meta
        self._before_commit = before_commit
        self._storage = storage
        self._source = chunks
        self._chunks = frame_chunks(chunks)
        # The file's writes, fsyncs and renames on their own thread (node/snapshot_io.py).
        self._file = SnapshotFileWork(storage.begin_snapshot(meta))
        self._ended = False  # the stream is done; the file is being committed

    def pump(self, budget: int, mark: Callable[[str], None] = _no_mark) -> SnapshotRef | None:
        """Hand up to `budget` chunks to the file's thread (fewer while it is behind);
        the committed snapshot once the file is durable and its WAL marker written.
        `mark` names the steps for the long-turn log (node/turn_phases.py)."""
        work = self._file
        ref = work.result()  # raises the thread's disk fault: with the queue full, `write` would not
        if self._ended:
            if ref is None:
                return None  # trailer, fsync, rename, directory fsync: still on the thread
            self._before_commit()
            mark("snapshot.commit.drain")  # the queued WAL writes ended
            self._storage.commit_snapshot(ref)  # the WAL marker: the commit point
            mark("snapshot.commit.marker")  # and the prune handed to the reaper
            return ref
        for _ in range(budget):
            if not work.room:
                break
            chunk = next(self._chunks, None)
            mark("snapshot.chunks.next")  # the state machine's stream: the loop's CPU
            if chunk is None:
                work.commit()
                self._ended = True
                break
            work.write(chunk)
        return None

    def abort(self) -> None:
        close = getattr(self._source, "close", None)
        if close is not None:
            close()  # lets the state machine run its deferred compaction
        self._file.abort()


class SnapshotSender:
    """Streams `message.snapshot`'s file to `message.dst`."""

    def __init__(self, message: InstallSnapshot, chunk_bytes: int,
                 clock: Callable[[], float] = time.monotonic, window_chunks: int = WINDOW_CHUNKS) -> None:
        ref = message.snapshot.data
        if not isinstance(ref, SnapshotRef):
            raise TypeError(f"the core's snapshot must carry a SnapshotRef, got {type(ref).__name__}")
        self.message = message
        self.peer = message.dst
        self._size = ref.file_size
        self._file: BinaryIO = ref.path.open("rb")  # stays readable if pruned meanwhile
        self._chunk_bytes = chunk_bytes
        self._offset = 0  # bytes handed to the socket
        self._acked = 0  # bytes the follower says it has written
        self._window = window_chunks * chunk_bytes
        self._pending: SnapshotChunk | None = None
        self._clock = clock
        self._last_progress = clock()

    def _next_chunk(self) -> SnapshotChunk:
        data = self._file.read(self._chunk_bytes)
        m = self.message
        done = self._offset + len(data) >= self._size
        return SnapshotChunk(m.src, m.dst, m.term, m.snapshot.meta, self._offset, data, done)

    @property
    def in_flight(self) -> int:
        """Bytes sent and not yet acknowledged."""
        return self._offset - self._acked

    def acknowledged(self, received: int) -> None:
        """The follower has written `received` bytes (acks may arrive out of order
        or twice: only progress moves `_acked`). A repeat of the latest is a
        keep-alive: the follower has the whole file and builds its state machine
        before it acknowledges the last chunk (node/snapshot_install.py)."""
        if self._acked < received <= self._offset:
            self._acked = received
            self._last_progress = self._clock()
        elif received == self._acked:
            self._last_progress = self._clock()

    def pump(self, send: Callable[[SnapshotChunk], bool], budget: int) -> bool | None:
        """Send up to `budget` chunks within the window: True once the follower
        acknowledged the whole file, False when the stream is abandoned, None to be
        continued."""
        if self._acked >= self._size:
            return True
        for _ in range(budget):
            if self._offset >= self._size or self.in_flight >= self._window:
                break  # everything sent, or the window is full: wait for acks
            chunk = self._pending or self._next_chunk()
            if not send(chunk):
                self._pending = chunk  # queue full: retry this chunk next turn
                break
            self._pending = None
            self._offset += len(chunk.data)
            if chunk.done:
                break
        if self._clock() - self._last_progress > STALL_SECONDS:
            return False
        return None

    def close(self) -> None:
        self._file.close()


class SnapshotIntake:
    """One incoming snapshot transfer. `receiver` is None when the snapshot is not
    worth keeping (we already committed its index): the chunks are read and
    dropped, and the core still gets the InstallSnapshot so it answers the leader."""

    def __init__(self, first: SnapshotChunk, receiver: SnapshotReceiver | None) -> None:
        self.src = first.src
        self.term = first.term
        self.meta = first.meta
        self.receiver = receiver
        self.received = 0

    def matches(self, chunk: SnapshotChunk) -> bool:
        return (chunk.src, chunk.term, chunk.meta, chunk.offset) == (
            self.src, self.term, self.meta, self.received)

    def write(self, chunk: SnapshotChunk) -> None:
        if self.receiver is not None:
            self.receiver.write(chunk.data, chunk.offset)
        self.received += len(chunk.data)

    def finish(self) -> SnapshotRef | None:
        return self.receiver.finish() if self.receiver is not None else None

    def abort(self) -> None:
        if self.receiver is not None:
            self.receiver.abort()


def remove_unused(ref: SnapshotRef, removal: Removal = Removal()) -> None:
    """A received snapshot the core did not install: it must not linger, or the
    next recovery would set it aside as an orphan. `removal`: the data dir's
    (node/storage/reaper.py), so a large file is not unlinked in the loop."""
    removal.remove([Path(ref.path)])


class SnapshotSenders:
    """The leader's snapshot streams, one per follower (a newer InstallSnapshot for
    a follower replaces its stream)."""

    def __init__(self, chunk_bytes: int, clock: Callable[[], float],
                 send_chunk: Callable[[SnapshotChunk], bool], log: EventLog) -> None:
        self._chunk_bytes = chunk_bytes
        self._clock = clock
        self._send_chunk = send_chunk
        self._log = log
        self.streams: dict[int, SnapshotSender] = {}

    def __bool__(self) -> bool:
        return bool(self.streams)

    def start(self, message: InstallSnapshot) -> None:
        old = self.streams.pop(message.dst, None)
        if old is not None:
            old.close()
        self.streams[message.dst] = SnapshotSender(message, self._chunk_bytes, self._clock)
        self._log.info(f"streaming snapshot {message.snapshot.meta.index} to node {message.dst}")

    def acknowledged(self, ack: SnapshotChunkAck) -> None:
        sender = self.streams.get(ack.src)
        if sender is not None and (ack.term, ack.index) == (
                sender.message.term, sender.message.snapshot.meta.index):
            sender.acknowledged(ack.received)

    def pump(self, report_snapshot: Callable[[int, bool], None], budget: int) -> None:
        """A few chunks of every stream; a finished or abandoned one is reported to
        the core (`report_snapshot(peer, ok)`) and closed."""
        for peer, sender in list(self.streams.items()):
            outcome = sender.pump(self._send_chunk, budget)
            if outcome is None:
                continue
            sender.close()
            del self.streams[peer]
            report_snapshot(peer, outcome)
            self._log.info(f"snapshot {sender.message.snapshot.meta.index} to node {peer}: "
                           f"{'sent' if outcome else 'abandoned'}")

    def close(self) -> None:
        for sender in self.streams.values():
            sender.close()
        self.streams.clear()
