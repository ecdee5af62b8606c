"""Leases in the state machine (etcd v3 semantics): grant, attach, detach, revoke
and the leader's expiry verdict, bounds, snapshots. Time is not here: the node
decides expiry (tests/node/test_leases.py)."""
from __future__ import annotations

import msgpack
import pytest
from kv_driver import Driver
from snapshot_formats import as_record_chunks

from cluster.kv import (
    DeleteRange,
    InvalidCommand,
    KeyValue,
    LeaseExists,
    LeaseExpire,
    LeaseGrant,
    LeaseGrantResponse,
    LeaseKeepAlive,
    LeaseLeases,
    LeaseNotFound,
    LeaseRevoke,
    LeaseRevokeResponse,
    LeaseTimeToLive,
    LimitExceeded,
    Limits,
    OpenSession,
    Put,
    Range,
    RangeResponse,
    SnapshotCorrupt,
    Txn,
    decode_command,
    decode_result,
    encode_command,
    encode_result,
)
from node.statemachine import StateMachine


def live_keys(kv: Driver) -> list[bytes]:
    result = kv(Range(b"\0", b"\0"))
    assert isinstance(result, RangeResponse)
    return [item.key for item in result.kvs]


def test_grant_with_an_id_makes_no_revision_and_returns_the_id() -> None:
    kv = Driver()
    assert kv(LeaseGrant(5, 42)) == LeaseGrantResponse(1, 42, 5)
    assert kv.machine.revision == 1
    lease = kv.machine.lease(42)
    assert lease is not None and (lease.ttl, lease.granted_index, lease.keys) == (5, 1, set())


def test_grant_without_an_id_picks_one_from_the_log_index_deterministically() -> None:
    first, second = Driver(), Driver()
    a, b = first(LeaseGrant(5)), second(LeaseGrant(5))
    assert isinstance(a, LeaseGrantResponse) and a == b and 0 < a.id < 2**63
    c = first(LeaseGrant(5))
    assert isinstance(c, LeaseGrantResponse) and c.id != a.id


def test_an_auto_id_that_is_taken_moves_to_the_next_free_one() -> None:
    probe = Driver()
    probe.skip()
    at_two = probe(LeaseGrant(5))  # the id a grant at index 2 gets
    assert isinstance(at_two, LeaseGrantResponse)
    kv = Driver()
    kv(LeaseGrant(7, at_two.id))  # index 1 takes it explicitly
    again = kv(LeaseGrant(5))  # index 2
    assert isinstance(again, LeaseGrantResponse) and again.id == at_two.id % (2**63 - 1) + 1


def test_lease_id_collision_and_bounds_are_clear_errors() -> None:
    kv = Driver(Limits(max_leases=2, max_lease_ttl=100))
    kv(LeaseGrant(5, 1))
    assert kv(LeaseGrant(5, 1)) == LeaseExists(1)
    assert str(LeaseExists(1)) == "lease 1 already exists"
    assert kv(LeaseGrant(101, 2)) == LimitExceeded("max_lease_ttl", 101, 100)
    assert kv(LeaseGrant(0, 2)) == InvalidCommand("lease TTL must be at least 1 second, got 0")
    assert kv(LeaseGrant(-3, 2)) == InvalidCommand("lease TTL must be at least 1 second, got -3")
    kv(LeaseGrant(5, 2))
    assert kv(LeaseGrant(5, 3)) == LimitExceeded("max_leases", 3, 2)
    assert [lease.id for lease in kv.machine.leases()] == [1, 2]


def test_put_attaches_put_without_lease_or_with_another_detaches() -> None:
    kv = Driver.with_leases(1, 2)
    kv(Put(b"a", b"1", lease=1))
    kv(Put(b"b", b"1", lease=1))
    kv(Txn((), (Put(b"c", b"1", lease=2),), ()))  # a txn put carries a lease too
    kv(Put(b"b", b"2", lease=2))
    assert kv.machine.lease(1).keys == {b"a"}  # type: ignore[union-attr]
    assert kv.machine.lease(2).keys == {b"b", b"c"}  # type: ignore[union-attr]
    kv(Put(b"c", b"2"))
    assert kv.machine.lease(2).keys == {b"b"}  # type: ignore[union-attr]
    assert kv.machine.get(b"c") == KeyValue(b"c", b"2", 4, 6, 2, 0)


def test_revoke_deletes_every_attached_key_in_one_revision() -> None:
    kv = Driver.with_leases(1, 2)
    for key in (b"x", b"a", b"m"):
        kv(Put(key, b"v", lease=1))
    kv(Put(b"other", b"v", lease=2))
    before = kv.machine.revision
    assert kv(LeaseRevoke(1)) == LeaseRevokeResponse(before + 1, 3)
    assert kv.machine.revision == before + 1
    assert live_keys(kv) == [b"other"]
    assert kv.machine.lease(1) is None
    # all three deletes are at that one revision, in key order (sub-revisions)
    history = [kv.machine._store.history(k) for k in (b"a", b"m", b"x")]  # noqa: SLF001
    assert [(h.mains[-1], h.subs[-1]) for h in history] == [(before + 1, 0), (before + 1, 1), (before + 1, 2)]
    assert kv(LeaseRevoke(1)) == LeaseNotFound(1)
    assert kv(Put(b"a", b"again", lease=1)) == LeaseNotFound(1)


def test_revoking_a_lease_without_keys_makes_no_revision() -> None:
    kv = Driver.with_leases(1)
    kv(Put(b"a", b"1", lease=1))
    kv(DeleteRange(b"a"))
    revision = kv.machine.revision
    assert kv(LeaseRevoke(1)) == LeaseRevokeResponse(revision, 0)


def test_an_expiry_applies_only_to_the_grant_it_was_decided_for() -> None:
    kv = Driver()
    granted = kv(LeaseGrant(5, 9))
    assert isinstance(granted, LeaseGrantResponse)
    first_grant = kv.index
    kv(Put(b"k", b"v", lease=9))
    assert kv(LeaseExpire(9, first_grant)) == LeaseRevokeResponse(3, 1)
    kv(LeaseGrant(5, 9))  # re-granted under the same id
    kv(Put(b"k", b"v2", lease=9))
    assert kv(LeaseExpire(9, first_grant)) == LeaseNotFound(9)  # a late verdict: ignored
    assert live_keys(kv) == [b"k"]
    assert kv(LeaseExpire(9, kv.machine.lease(9).granted_index)) == LeaseRevokeResponse(5, 1)  # type: ignore[union-attr]


def test_keepalive_and_queries_are_refused_through_the_log() -> None:
    kv = Driver.with_leases(1)
    for query in (LeaseKeepAlive(1), LeaseTimeToLive(1, True), LeaseLeases()):
        result = kv(query)
        assert isinstance(result, InvalidCommand) and "answered by the leader" in str(result)


def test_a_retried_grant_in_a_session_is_applied_once() -> None:
    kv = Driver()
    kv(OpenSession())
    first = kv(LeaseGrant(5), 1, 1)
    assert kv(LeaseGrant(5), 1, 1) == first
    assert len(kv.machine.leases()) == 1


def test_the_node_sees_grants_and_removals_in_order() -> None:
    kv = Driver()
    kv(LeaseGrant(5, 1))
    kv(LeaseGrant(6, 2))
    kv(LeaseRevoke(1))
    assert kv.machine.drain_lease_events() == [("grant", 1, 5, 1), ("grant", 2, 6, 2),
                                                  ("remove", 1, 0, 0)]
    assert kv.machine.drain_lease_events() == []


@pytest.mark.parametrize("request_", [
    LeaseGrant(5), LeaseGrant(5, 77), LeaseRevoke(3), LeaseKeepAlive(3), LeaseTimeToLive(3, True),
    LeaseLeases(), LeaseExpire(3, 9)])
def test_lease_commands_round_trip_through_bytes(request_: object) -> None:
    assert decode_command(encode_command(request_, 4, 2)).request == request_  # type: ignore[arg-type]


@pytest.mark.parametrize("fields", [
    [8, 5], [8, "5", 0], [8, 5, -1], [9, -1], [9, True], [10], [11, 1, 1], [12, 1], [13, 1], [13, 1, b"x"],
    [8, 5, 2**63], [[8], 5, 0], [{}, 1],
])
def test_malformed_lease_commands_are_invalid_not_crashes(fields: list[object]) -> None:
    kv = Driver()
    result = kv.raw(msgpack.packb([1, 0, 0, fields]))
    assert isinstance(result, InvalidCommand), result


def test_lease_results_round_trip_through_bytes() -> None:
    from cluster.kv import LeaseKeepAliveResponse, LeaseLeasesResponse, LeaseTimeToLiveResponse
    for result in (LeaseGrantResponse(3, 9, 5), LeaseRevokeResponse(4, 2), LeaseKeepAliveResponse(4, 9, 5),
                   LeaseTimeToLiveResponse(4, 9, 5, 3, (b"a", b"b")), LeaseLeasesResponse(4, (1, 9)),
                   LeaseExists(3)):
        assert decode_result(encode_result(result)) == result  # type: ignore[arg-type]


# --- snapshots ---------------------------------------------------------------------------


def leased_state() -> Driver:
    kv = Driver.with_leases(10, 20, 30)
    kv(Put(b"a", b"1", lease=10))
    kv(Put(b"b", b"1", lease=20))
    kv(Put(b"c", b"1", lease=20))
    kv(Put(b"c", b"2"))  # detached again
    kv(Put(b"d", b"1", lease=10))
    kv(DeleteRange(b"d"))
    return kv


def test_leases_and_their_keys_survive_a_snapshot_round_trip() -> None:
    kv = leased_state()
    chunks = list(kv.machine.snapshot(64))
    restored = StateMachine.restore(chunks)
    assert restored == kv.machine
    assert list(restored.snapshot(64)) == chunks
    assert [(lease.id, lease.ttl, lease.granted_index, lease.keys) for lease in restored.leases()] == [
        (10, 60, 1, {b"a"}), (20, 60, 2, {b"b"}), (30, 60, 3, set())]
    assert restored.drain_lease_events() == []
    # and the restored machine revokes exactly as the original does
    again = Driver(machine=restored)
    assert again(LeaseRevoke(20)) == kv(LeaseRevoke(20))
    assert again.machine == kv.machine


def test_the_snapshot_format_is_5_with_a_leases_section() -> None:
    chunks = [msgpack.unpackb(c) for c in leased_state().machine.snapshot()]
    # 3: the auth section (issue 15); 4: alarms (issue 16); 5: record columns (issue 20)
    assert chunks[0][:2] == ["jangada-kv", 5]
    assert [c for c in chunks if c[0] == "leases"] == [["leases", [[10, 60, 1], [20, 60, 2], [30, 60, 3]]]]
    assert chunks[-1][0] == "end" and chunks[-1][3] == 3


def test_a_format_1_snapshot_still_loads_with_no_leases() -> None:
    kv = Driver()
    kv(Put(b"a", b"1"))
    kv(OpenSession())
    chunks = as_record_chunks([msgpack.unpackb(c) for c in kv.machine.snapshot()], version=1)
    old = chunks[:1] + [c for c in chunks[1:-1] if c[0] not in ("leases", "auth", "alarms")]
    old.append(chunks[-1][:3])
    restored = StateMachine.restore(msgpack.packb(c) for c in old)
    assert restored == kv.machine


@pytest.mark.parametrize("name, mutate", [
    ("leases in a format 1 stream", lambda c: [*as_record_chunks(c, 1)[:-1], c[-1][:3]]),
    ("lease count wrong", lambda c: [*c[:-1], [*c[-1][:3], 9]]),
    ("leases out of order", lambda c: [x if x[0] != "leases" else ["leases", x[1][::-1]] for x in c]),
    ("lease ttl zero", lambda c: [x if x[0] != "leases" else ["leases", [[1, 0, 1]]] for x in c]),
    ("lease not a triple", lambda c: [x if x[0] != "leases" else ["leases", [[1, 5]]] for x in c]),
    ("leases after sessions", lambda c: [x for x in c if x[0] != "leases"][:-1]
     + [x for x in c if x[0] == "leases"] + [c[-1]]),
])
def test_corrupt_lease_sections_fail_restore(name: str, mutate: object) -> None:
    kv = leased_state()
    kv(OpenSession())
    chunks = [msgpack.unpackb(c) for c in kv.machine.snapshot()]
    with pytest.raises(SnapshotCorrupt):
        StateMachine.restore(msgpack.packb(c) for c in mutate(chunks))  # type: ignore[operator]
