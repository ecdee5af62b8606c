"""State-machine chunks survive the trip through a snapshot file's plain bytes."""
from __future__ import annotations

from hypothesis import given, strategies as st

from node.snapshot_transfer import frame_chunks, unframe_chunks
from cluster.kv import Put, encode_command
from node.statemachine import StateMachine


@given(st.lists(st.binary(max_size=50), max_size=10), st.lists(st.integers(1, 40), min_size=1, max_size=20))
def test_framed_chunks_come_back_whatever_the_read_size(chunks: list[bytes], cuts: list[int]) -> None:
    data = b"".join(frame_chunks(chunks))
    pieces, at, i = [], 0, 0
    while at < len(data):
        step = cuts[i % len(cuts)]
        pieces.append(data[at:at + step])
        at, i = at + step, i + 1
    assert list(unframe_chunks(pieces)) == chunks


def test_a_state_machine_restores_from_framed_bytes() -> None:
    sm = StateMachine()
    for i in range(1, 50):
        sm.apply(i, encode_command(Put(b"k%d" % i, b"v" * i)))
    data = b"".join(frame_chunks(sm.snapshot(chunk_bytes=256)))
    restored = StateMachine.restore(unframe_chunks(data[i:i + 100] for i in range(0, len(data), 100)))
    assert restored == sm
