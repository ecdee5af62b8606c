"""Snapshot save/restore of the real state machine through the storage layer: what a
node writes when it compacts is exactly what it (or a follower) restores."""
from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from node.raft.types import ConfState, SnapshotMeta
from cluster.kv import DeleteRange, KvError, OpenSession, Put, SessionOpened, encode_command
from node.statemachine import StateMachine
from node.storage import DataDir, StorageOptions

keys = st.binary(min_size=1, max_size=6)
ops = st.lists(st.one_of(
    st.tuples(st.just("put"), keys, st.binary(max_size=40)),
    st.tuples(st.just("delete"), keys, st.just(b"")),
), max_size=60)


def _machine(script: list[tuple[str, bytes, bytes]]) -> StateMachine:
    """Apply the script, half of it through an exactly-once session, so the snapshot
    carries key history and the session table."""
    sm = StateMachine()
    opened = sm.apply(1, encode_command(OpenSession()))
    assert isinstance(opened, SessionOpened)
    for index, (kind, key, value) in enumerate(script, start=2):
        request = Put(key, value) if kind == "put" else DeleteRange(key)
        client, seq = (opened.client_id, index) if index % 2 else (0, 0)
        result = sm.apply(index, encode_command(request, client_id=client, seq=seq))
        assert not isinstance(result, KvError), result
    puts = sum(1 for kind, _, _ in script if kind == "put")
    assert sm.revision >= 1 + puts, "every put must have been applied"
    return sm


@settings(max_examples=60, deadline=None, derandomize=True)
@given(script=ops, chunk=st.sampled_from([16, 100, 4096]), read_chunk=st.sampled_from([7, 64, 1 << 20]))
def test_state_machine_snapshot_survives_disk_and_reopen(
        script: list[tuple[str, bytes, bytes]], chunk: int, read_chunk: int) -> None:
    sm = _machine(script)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp)
        storage, _ = DataDir.open(path, "c1", 1, StorageOptions())
        meta = SnapshotMeta(sm.applied_index, 1, ConfState((1, 2, 3)))
        with storage:
            storage.save_snapshot(meta, sm.snapshot(chunk))
        reopened, state = DataDir.open(path, "c1", 1, StorageOptions())
        with reopened:
            assert state.snapshot is not None and state.snapshot.meta == meta
            assert state.snapshot_ref is not None
            restored = StateMachine.restore(state.snapshot_ref.iter_data(read_chunk))
    assert restored == sm
