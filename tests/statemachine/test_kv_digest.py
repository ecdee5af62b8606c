"""Digests for etcd's HashKV and Hash (node/statemachine/digest.py): equal on
replicas at one revision whatever their physical compaction state, different
when the history differs, and etcd's revision checks."""
from __future__ import annotations

import pytest
from kv_driver import Driver
from test_kv_snapshot import run, workload

from cluster.kv import Compact, Compacted, FutureRevision, LeaseGrant, Put
from cluster.protocol import HashRequest, SnapshotFileRequest, decode_request, encode_request
from node.statemachine import StateMachine, digest


def test_replicas_applying_the_same_log_have_equal_hashes() -> None:
    commands = workload()
    a, b = run(commands).machine, run(commands).machine
    assert a.hash_kv(0) == b.hash_kv(0)
    assert a.hash_all() == b.hash_all()
    restored = StateMachine.restore(a.snapshot(4096))
    assert restored.hash_kv(0) == a.hash_kv(0) and restored.hash_all() == a.hash_all()


def test_a_hash_at_a_revision_ignores_later_writes() -> None:
    kv = Driver()
    kv(Put(b"a", b"1"))
    kv(Put(b"b", b"2"))
    at_3, current, compact = kv.machine.hash_kv(3)
    assert (current, compact) == (3, 0)
    kv(Put(b"a", b"3"))
    assert kv.machine.hash_kv(3)[0] == at_3
    assert kv.machine.hash_kv(0)[0] != at_3 and kv.machine.hash_kv(0)[1] == 4


def test_deferred_physical_compaction_does_not_change_the_hash() -> None:
    a, b = Driver(), Driver()
    for kv in (a, b):
        for i in range(5):
            kv(Put(b"k", b"%d" % i))
    b.machine._store.open_stream()  # a snapshot being streamed defers the physical drop
    for kv in (a, b):
        kv(Compact(4))
    assert a.machine.hash_kv(0) == b.machine.hash_kv(0)
    assert a.machine.hash_all() == b.machine.hash_all()


def test_revisions_are_checked_as_etcd_checks_them() -> None:
    kv = Driver()
    for i in range(4):
        kv(Put(b"k", b"%d" % i))
    kv(Compact(3))
    with pytest.raises(Compacted):
        kv.machine.hash_kv(3)  # at or below the compact revision, as etcd's HashByRev
    with pytest.raises(FutureRevision):
        kv.machine.hash_kv(6)
    assert kv.machine.hash_kv(4)[2] == 3


def test_the_whole_state_hash_covers_leases_but_not_the_applied_index() -> None:
    a, b = Driver(), Driver()
    a(LeaseGrant(60, 7))
    b(LeaseGrant(60, 7))
    b.skip(3)  # leader no-ops: another applied index, the same data
    assert a.machine.applied_index != b.machine.applied_index
    assert a.machine.hash_all() == b.machine.hash_all()
    b(LeaseGrant(60, 8))
    assert a.machine.hash_kv(0) == b.machine.hash_kv(0)  # no key changed
    assert a.machine.hash_all() != b.machine.hash_all()


def test_a_store_too_large_to_hash_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    kv = Driver()
    for i in range(5):
        kv(Put(b"k%d" % i, b"v"))
    monkeypatch.setattr(digest, "MAX_RECORDS", 3)
    with pytest.raises(digest.TooLargeToHash):
        kv.machine.hash_kv(0)


@pytest.mark.parametrize("request_", [HashRequest(3, 17, False), HashRequest(4, 0, True), SnapshotFileRequest(5, 99)])
def test_the_native_requests_round_trip(request_: HashRequest | SnapshotFileRequest) -> None:
    assert decode_request(encode_request(request_)) == request_
