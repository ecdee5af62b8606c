"""Replies leave at the end of a turn, one frame per client per MAX_BATCH replies
(node/outbox.py); a full client queue drops the frame and counts it."""
from __future__ import annotations

import logging

from cluster.protocol import MAX_BATCH, ErrorCode, ErrorReply, decode_replies
from node.dropped_frames import DroppedFrames
from node.eventlog import EventLog
from node.outbox import Outbox


def _dropped() -> DroppedFrames:
    return DroppedFrames(EventLog(lambda: "node=1", logger=logging.getLogger("test-outbox")))


def test_one_frame_per_client_per_turn() -> None:
    sent: list[tuple[bytes, bytes]] = []

    def send(identity: bytes, frame: bytes) -> bool:
        sent.append((identity, frame))
        return True

    outbox = Outbox(send, _dropped())
    for i in range(3):
        outbox.reply(b"a", ErrorReply(i, 1, ErrorCode.TIMEOUT, "x"))
    outbox.reply(b"b", ErrorReply(9, 1, ErrorCode.TIMEOUT, "y"))
    assert sent == []  # nothing leaves before the flush
    outbox.flush()
    assert [identity for identity, _ in sent] == [b"a", b"b"]
    assert [r.request_id for r in decode_replies(sent[0][1])] == [0, 1, 2]
    outbox.flush()
    assert len(sent) == 2  # flushed replies are gone


def test_large_batches_split_and_a_full_queue_is_counted() -> None:
    dropped = _dropped()
    frames: list[bytes] = []

    def send(identity: bytes, frame: bytes) -> bool:
        frames.append(frame)
        return False  # the client's queue is full

    outbox = Outbox(send, dropped)
    for i in range(MAX_BATCH + 1):
        outbox.reply(b"a", ErrorReply(i, 1, ErrorCode.TIMEOUT, "x"))
    outbox.flush()
    assert len(frames) == 2
    assert dropped.counts["client-reply-dropped"] == 2
