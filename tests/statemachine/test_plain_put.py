"""The apply fast path for a session's plain put (StateMachine._apply_plain_put)
against the general one: two machines fed the same entries, one of them made to
take the general path for every command, must answer every entry alike and end
in byte-identical snapshots. The entries mix what the fast path must handle
(retries, stale and unknown sessions, a put over a key that a lease holds, prev_kv)
with what must leave it (leases, deletes, revokes, a raised alarm, puts without a
session)."""
from __future__ import annotations

import random

import pytest

from cluster.kv import (
    DeleteRange, LeaseGrant, LeaseRevoke, OpenSession, Put, PutResponse, Range, encode_command,
)
from cluster.kv.alarms import Alarm, AlarmAction, AlarmType
from node.statemachine import StateMachine

KEYS = [b"a", b"b", b"c", b"d"]


def entries(seed: int, count: int) -> list[bytes]:
    rng = random.Random(seed)
    out = [encode_command(OpenSession()), encode_command(OpenSession()), encode_command(LeaseGrant(60, 9))]
    sessions = {1: 0, 2: 0, 77: 0}  # 77 was never opened: SessionExpired
    for _ in range(count):
        roll = rng.random()
        key = rng.choice(KEYS)
        if roll < 0.55:  # a session's plain put: new, retried, or stale
            client = rng.choice(list(sessions))
            last = sessions[client]
            seq = rng.choice([last + 1, last + 1, last, max(1, last - 1)])
            sessions[client] = max(last, seq)
            out.append(encode_command(Put(key, b"v%d" % rng.randrange(100), prev_kv=rng.random() < 0.5),
                                      client, seq))
        elif roll < 0.65:  # a put that attaches the lease (general path)
            client = rng.choice([1, 2])
            sessions[client] += 1
            out.append(encode_command(Put(key, b"leased", lease=9), client, sessions[client]))
        elif roll < 0.72:
            out.append(encode_command(Put(key, b"no-session")))
        elif roll < 0.80:
            out.append(encode_command(DeleteRange(key)))
        elif roll < 0.84:
            out.append(encode_command(LeaseRevoke(9)))
            out.append(encode_command(LeaseGrant(60, 9)))
        elif roll < 0.88:
            action = rng.choice([AlarmAction.ACTIVATE, AlarmAction.DEACTIVATE])
            out.append(encode_command(Alarm(action, 1, AlarmType.NOSPACE)))
        elif roll < 0.93:
            out.append(encode_command(Range(key)))
        else:
            out.append(encode_command(OpenSession()))
    return out


def general_only(machine: StateMachine) -> StateMachine:
    machine._apply_plain_put = lambda index, command, put: machine._apply_command(index, command)  # type: ignore[method-assign]
    return machine


@pytest.mark.parametrize("seed", range(12))
def test_the_fast_path_answers_and_stores_exactly_as_the_general_one(seed: int) -> None:
    fast, general = StateMachine(), general_only(StateMachine())
    took_fast = 0
    original = fast._apply_plain_put

    def counting(index, command, put):  # type: ignore[no-untyped-def]
        nonlocal took_fast
        took_fast += 1
        return original(index, command, put)

    fast._apply_plain_put = counting  # type: ignore[method-assign]
    for index, data in enumerate(entries(seed, 400), start=1):
        assert fast.apply(index, data) == general.apply(index, data), f"entry {index}"
    assert took_fast > 50  # the fast path really ran
    assert fast.revision == general.revision and fast.hash_all() == general.hash_all()
    assert b"".join(fast.snapshot()) == b"".join(general.snapshot())


def test_a_plain_put_over_a_leased_key_lets_the_lease_go() -> None:
    machine = StateMachine()
    machine.apply(1, encode_command(OpenSession()))
    machine.apply(2, encode_command(LeaseGrant(60, 9)))
    machine.apply(3, encode_command(Put(b"k", b"1", lease=9), 1, 1))
    assert machine.lease(9).keys == {b"k"}  # type: ignore[union-attr]
    result = machine.apply(4, encode_command(Put(b"k", b"2", prev_kv=True), 1, 2))
    assert isinstance(result, PutResponse) and result.prev_kv is not None and result.prev_kv.lease == 9
    assert machine.lease(9).keys == set()  # type: ignore[union-attr]
    assert machine.apply(5, encode_command(Put(b"k", b"2", prev_kv=True), 1, 2)) == result  # the retry: cached
