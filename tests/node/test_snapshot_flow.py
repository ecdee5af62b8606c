"""Snapshot streams are flow-controlled: the leader keeps at most a window of
unacknowledged chunks per follower, finishes when the whole file is acknowledged,
and abandons a stream that makes no progress."""
from __future__ import annotations

from pathlib import Path

from node.raft import ConfState, InstallSnapshot, Snapshot, SnapshotMeta
from node.snapshot_transfer import STALL_SECONDS, SnapshotSender
from node.storage.snapshot_file import SnapshotStore
from node.wire import SnapshotChunk

CHUNK = 1024


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def sender(tmp_path: Path, clock: Clock, data_bytes: int = 20 * CHUNK) -> SnapshotSender:
    meta = SnapshotMeta(10, 2, ConfState((1, 2)))
    ref = SnapshotStore(tmp_path, "c1").save(meta, [b"x" * data_bytes])
    return SnapshotSender(InstallSnapshot(1, 2, 2, Snapshot(meta, ref)), CHUNK, clock, window_chunks=4)


def test_no_more_than_the_window_is_in_flight_until_acknowledged(tmp_path: Path) -> None:
    clock = Clock()
    stream = sender(tmp_path, clock)
    sent: list[SnapshotChunk] = []
    assert stream.pump(lambda c: sent.append(c) or True, budget=100) is None
    assert len(sent) == 4 and stream.in_flight == 4 * CHUNK
    stream.acknowledged(2 * CHUNK)
    stream.pump(lambda c: sent.append(c) or True, budget=100)
    assert len(sent) == 6 and stream.in_flight == 4 * CHUNK
    stream.acknowledged(CHUNK)  # stale or reordered: no effect
    assert stream.in_flight == 4 * CHUNK


def test_the_stream_is_done_when_the_whole_file_is_acknowledged(tmp_path: Path) -> None:
    clock = Clock()
    stream = sender(tmp_path, clock)
    sent: list[SnapshotChunk] = []
    outcome = None
    while outcome is None:
        outcome = stream.pump(lambda c: sent.append(c) or True, budget=3)
        if sent:
            stream.acknowledged(sent[-1].offset + len(sent[-1].data))
    assert outcome is True and sent[-1].done
    assert b"".join(c.data for c in sent) == stream.message.snapshot.data.path.read_bytes()  # type: ignore[union-attr]
    stream.close()


def test_a_stream_without_acknowledgements_is_abandoned(tmp_path: Path) -> None:
    clock = Clock()
    stream = sender(tmp_path, clock)
    assert stream.pump(lambda c: True, budget=100) is None
    clock.now = STALL_SECONDS / 2
    assert stream.pump(lambda c: True, budget=100) is None
    clock.now = STALL_SECONDS + 1
    assert stream.pump(lambda c: True, budget=100) is False
    stream.close()


def test_a_full_queue_keeps_the_chunk_for_the_next_turn(tmp_path: Path) -> None:
    clock = Clock()
    stream = sender(tmp_path, clock)
    assert stream.pump(lambda c: False, budget=100) is None and stream.in_flight == 0
    sent: list[SnapshotChunk] = []
    stream.pump(lambda c: sent.append(c) or True, budget=1)
    assert sent[0].offset == 0
    stream.close()


def test_a_repeated_acknowledgement_keeps_the_stream_alive(tmp_path: Path) -> None:
    """The follower builds the state machine of the whole file before it
    acknowledges the last chunk (node/snapshot_install.py), repeating its previous
    acknowledgement meanwhile: the stream must not be abandoned as stalled."""
    clock = Clock()
    stream = sender(tmp_path, clock, data_bytes=2 * CHUNK)
    sent: list[SnapshotChunk] = []
    stream.pump(lambda c: sent.append(c) or True, budget=100)
    assert sent[-1].done
    stream.acknowledged(sent[-1].offset)  # all but the last chunk
    for second in range(1, 4):
        clock.now = second * (STALL_SECONDS - 1)
        stream.acknowledged(sent[-1].offset)  # the keep-alive
        assert stream.pump(lambda c: True, budget=100) is None
    clock.now += STALL_SECONDS + 1  # and without one it is abandoned
    assert stream.pump(lambda c: True, budget=100) is False
    stream.close()
