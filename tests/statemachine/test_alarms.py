"""Alarms in the state machine (node/statemachine/alarm_table.py): raised and
cleared through the log, refusing what etcd's capped and corrupt appliers refuse,
kept in snapshots and the digest."""
from __future__ import annotations

import msgpack
import pytest

from cluster.kv import (
    Alarm, AlarmAction, AlarmMember, AlarmResponse, AlarmType, Compact, DeleteRange, LeaseGrant, Put, Range, Txn,
    encode_command,
)
from cluster.kv.errors import Corrupt, NoSpace, SnapshotCorrupt
from cluster.kv.results import CompactResponse, DeleteResponse, PutResponse, RangeResponse
from node.statemachine.machine import StateMachine


class Log:
    def __init__(self) -> None:
        self.machine = StateMachine()
        self.index = 0

    def __call__(self, request: object) -> object:
        self.index += 1
        return self.machine.apply(self.index, encode_command(request))  # type: ignore[arg-type]


def raise_(log: Log, member: int, kind: AlarmType) -> object:
    return log(Alarm(AlarmAction.ACTIVATE, member, kind))


def test_activate_get_and_deactivate_answer_as_etcd() -> None:
    log = Log()
    log(Put(b"k", b"v"))
    assert raise_(log, 2, AlarmType.NOSPACE) == AlarmResponse(2, (AlarmMember(2, AlarmType.NOSPACE),))
    raise_(log, 1, AlarmType.CORRUPT)
    both = (AlarmMember(1, AlarmType.CORRUPT), AlarmMember(2, AlarmType.NOSPACE))
    assert log(Alarm(AlarmAction.GET)) == AlarmResponse(2, both)
    assert log(Alarm(AlarmAction.GET, 0, AlarmType.NOSPACE)) == AlarmResponse(2, both[1:])
    assert log(Alarm(AlarmAction.DEACTIVATE, 2, AlarmType.NOSPACE)) == AlarmResponse(2, both[1:])
    assert log(Alarm(AlarmAction.DEACTIVATE, 2, AlarmType.NOSPACE)) == AlarmResponse(2, ())  # not raised
    assert raise_(log, 3, AlarmType.NONE) == AlarmResponse(2, ())  # NONE is not an alarm
    assert log.machine.alarms == both[:1]


def test_nospace_refuses_puts_and_grants_but_not_reads_deletes_or_compaction() -> None:
    log = Log()
    log(Put(b"a", b"1"))
    log(Put(b"b", b"2"))
    raise_(log, 1, AlarmType.NOSPACE)
    assert log(Put(b"c", b"3")) == NoSpace()
    assert log(LeaseGrant(10)) == NoSpace()
    assert log(Txn((), (Range(b"a"), Txn((), (Put(b"x", b"y"),))), ())) == NoSpace()  # a nested put
    assert log(Txn((), (Range(b"a"), DeleteRange(b"b")), ())).succeeded  # type: ignore[union-attr]
    assert isinstance(log(Range(b"a")), RangeResponse)
    assert isinstance(log.machine.read(Range(b"a")), RangeResponse)
    assert isinstance(log(DeleteRange(b"a")), DeleteResponse)
    assert isinstance(log(Compact(2)), CompactResponse)
    log(Alarm(AlarmAction.DEACTIVATE, 1, AlarmType.NOSPACE))
    assert isinstance(log(Put(b"c", b"3")), PutResponse)


def test_corrupt_refuses_every_kv_and_lease_request_reads_too() -> None:
    log = Log()
    log(Put(b"a", b"1"))
    raise_(log, 3, AlarmType.CORRUPT)
    for request in (Put(b"c", b"3"), Range(b"a"), DeleteRange(b"a"), Compact(1), LeaseGrant(5)):
        assert log(request) == Corrupt(), request
    assert log.machine.read(Range(b"a")) == Corrupt()
    log(Alarm(AlarmAction.DEACTIVATE, 3, AlarmType.CORRUPT))
    assert isinstance(log(Range(b"a")), RangeResponse)


def test_alarms_are_in_snapshots_and_in_the_digest() -> None:
    log, other = Log(), Log()
    for each in (log, other):
        each(Put(b"a", b"1"))
    assert log.machine.hash_all() == other.machine.hash_all()
    raise_(log, 2, AlarmType.NOSPACE)
    other(Alarm(AlarmAction.GET))  # same index, no alarm
    assert log.machine.hash_all() != other.machine.hash_all()
    restored = StateMachine.restore(log.machine.snapshot())
    assert restored == log.machine and restored.alarms == (AlarmMember(2, AlarmType.NOSPACE),)
    assert restored.apply(log.index + 1, encode_command(Put(b"b", b"2"))) == NoSpace()


@pytest.mark.parametrize("name, mutate", [
    ("no alarms chunk in format 4", lambda c: [x for x in c if x[0] != "alarms"]),
    ("alarms twice", lambda c: [x for y in c for x in ([y, y] if y[0] == "alarms" else [y])]),
    ("unknown alarm type", lambda c: [x if x[0] != "alarms" else ["alarms", [[1, 9]]] for x in c]),
    ("alarm NONE", lambda c: [x if x[0] != "alarms" else ["alarms", [[1, 0]]] for x in c]),
    ("alarms out of order", lambda c: [x if x[0] != "alarms" else ["alarms", [[2, 1], [1, 1]]] for x in c]),
])
def test_corrupt_alarm_sections_fail_restore(name: str, mutate: object) -> None:
    log = Log()
    log(Put(b"a", b"1"))
    raise_(log, 1, AlarmType.NOSPACE)
    chunks = [msgpack.unpackb(c) for c in log.machine.snapshot()]
    with pytest.raises(SnapshotCorrupt):
        StateMachine.restore(msgpack.packb(c) for c in mutate(chunks))  # type: ignore[operator]
