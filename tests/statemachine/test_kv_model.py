"""Property tests: the real state machine agrees with the reference model on
every result, at every readable revision, and across snapshot/restore."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from kv_driver import Driver
from kv_reference import Reference
from kv_strategies import requests_at

from cluster.kv import Range
from node.statemachine import StateMachine

EVERYTHING = Range(b"\0", b"\0")


def assert_same_history(machine: StateMachine, reference: Reference) -> None:
    """Every revision still readable holds the same keys in both."""
    assert (machine.revision, machine.compact_revision) == (reference.revision, reference.compact)
    for revision in range(max(reference.compact, 1), reference.revision + 1):
        at = Range(b"\0", b"\0", revision=revision)
        assert machine.read(at) == reference.apply(at), f"at revision {revision}"


@settings(max_examples=60, deadline=None)
@given(st.data(), st.integers(0, 50))
def test_every_result_matches_the_reference_model(data: st.DataObject, steps: int) -> None:
    kv, reference = Driver.with_leases(3), Reference()  # the strategies put with lease 3
    for _ in range(steps):
        request = data.draw(requests_at(reference.revision))
        assert kv(request) == reference.apply(request), request
    assert_same_history(kv.machine, reference)


@settings(max_examples=40, deadline=None)
@given(st.data(), st.integers(0, 30), st.integers(0, 15), st.integers(40, 400))
def test_a_restored_snapshot_is_the_same_state_and_stays_so(
    data: st.DataObject, before: int, after: int, chunk_bytes: int
) -> None:
    kv, reference = Driver.with_leases(3), Reference()  # the strategies put with lease 3
    for _ in range(before):
        request = data.draw(requests_at(reference.revision))
        kv(request)
        reference.apply(request)
    chunks = list(kv.machine.snapshot(chunk_bytes))
    restored = Driver(machine=StateMachine.restore(chunks))
    assert restored.machine == kv.machine
    assert list(restored.machine.snapshot(chunk_bytes)) == chunks
    assert_same_history(restored.machine, reference)
    for _ in range(after):
        request = data.draw(requests_at(reference.revision))
        assert restored(request) == kv(request) == reference.apply(request)
    assert restored.machine == kv.machine


@settings(max_examples=40, deadline=None)
@given(st.data(), st.integers(0, 30), st.integers(1, 12), st.integers(1, 4))
def test_a_lazy_snapshot_describes_the_state_when_it_was_taken(
    data: st.DataObject, before: int, during: int, pace: int
) -> None:
    """Applying (and compacting) while a snapshot streams does not change it."""
    kv = Driver.with_leases(3)
    for _ in range(before):
        kv(data.draw(requests_at(kv.machine.revision)))
    expected = list(kv.machine.snapshot(64))
    stream = kv.machine.snapshot(64)
    chunks = []
    for i in range(during):
        kv(data.draw(requests_at(kv.machine.revision)))
        if i % pace == 0:
            chunks.extend(c for _, c in zip(range(1), stream))
    chunks.extend(stream)
    assert chunks == expected
