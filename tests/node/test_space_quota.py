"""The space quota's front door and alarm raising (node/space_quota.py), the
[limits] the state machine and the etcd face take (node/replica.py), and the
etcd errors they turn into, with fakes for the core and the replica."""
from __future__ import annotations

from dataclasses import dataclass, field

from cluster.kv import (
    Alarm, AlarmAction, AlarmMember, AlarmType, LeaseGrant, LimitExceeded, NoSpace, Put, Range, Txn, decode_command,
    encode_command,
)
from cluster.kv.errors import Corrupt
from cluster.spec import DEFAULT_QUOTA_BYTES, LimitsSpec, MaintenanceSpec
from node.eventlog import EventLog
from node.etcd import errors
from node.raft import NotLeader, Role
from node.replica import Replica, state_machine_limits
from node.space_quota import RAISE_RETRY_SECONDS, SpaceQuota, quota_of
from node.statemachine import StateMachine


@dataclass
class FakeCore:
    role: Role = Role.LEADER
    proposed: list[object] = field(default_factory=list)

    def propose(self, data: bytes) -> int:
        if self.role is not Role.LEADER:
            raise NotLeader(0)
        self.proposed.append(decode_command(data).request)
        return len(self.proposed)


class FakeMachine(StateMachine):
    size = 0
    raised: tuple[AlarmMember, ...] = ()

    @property
    def size_bytes(self) -> int:  # type: ignore[override]
        return self.size

    @property
    def alarms(self) -> tuple[AlarmMember, ...]:  # type: ignore[override]
        return self.raised


def quota(size: int, role: Role = Role.LEADER, limit: int = 1000) -> tuple[SpaceQuota, FakeCore, FakeMachine, list]:
    now = [100.0]
    core, machine = FakeCore(role), FakeMachine()
    machine.size = size
    space = SpaceQuota(3, MaintenanceSpec(quota_bytes=limit), core, Replica(machine),  # type: ignore[arg-type]
                       lambda: now[0], EventLog(lambda: "node=3", clock=lambda: now[0]))
    return space, core, machine, now


NOSPACE_ALARM = Alarm(AlarmAction.ACTIVATE, 3, AlarmType.NOSPACE)


def test_the_leader_refuses_a_write_that_would_reach_the_quota_and_raises_nospace_once() -> None:
    space, core, machine, now = quota(900)
    assert not space.refuses(Put(b"k", b"v"), 99)
    assert space.refuses(Put(b"k", b"v"), 100)
    assert space.refuses(LeaseGrant(10), 200)
    assert space.refuses(Txn((), (Put(b"k", b"v"),)), 200)
    assert core.proposed == [NOSPACE_ALARM]  # not again while the first may still apply
    now[0] += RAISE_RETRY_SECONDS
    machine.raised = (AlarmMember(3, AlarmType.NOSPACE),)
    assert space.refuses(Put(b"k", b"v"), 200)
    assert core.proposed == [NOSPACE_ALARM]  # raised already: nothing to propose


def test_reads_deletes_and_followers_pass_the_front_door() -> None:
    space, core, _, _ = quota(2000)
    assert not space.refuses(Range(b"k"), 10)
    assert not space.refuses(Txn((), (Range(b"k"),)), 10)
    follower, core, _, _ = quota(2000, Role.FOLLOWER)
    assert not follower.refuses(Put(b"k", b"v"), 10)  # it redirects writes to the leader
    follower.sweep()
    assert core.proposed == []


def test_the_leader_raises_nospace_when_the_applied_size_reaches_the_quota() -> None:
    space, core, machine, _ = quota(999)
    space.sweep()
    assert core.proposed == []
    machine.size = 1000
    space.sweep()
    assert core.proposed == [NOSPACE_ALARM]


def test_quota_zero_is_etcds_two_gib_and_minus_one_is_none() -> None:
    assert quota_of(MaintenanceSpec()) == DEFAULT_QUOTA_BYTES == 2 * 1024**3
    assert quota_of(MaintenanceSpec(quota_bytes=-1)) == 0
    assert quota_of(MaintenanceSpec(quota_bytes=4096)) == 4096


def test_limits_follow_the_config_as_etcds_flags() -> None:
    assert state_machine_limits(LimitsSpec()).max_txn_ops == 128
    assert state_machine_limits(LimitsSpec()).max_value_bytes == 1024 * 1024
    assert state_machine_limits(LimitsSpec(max_txn_ops=4, max_request_bytes=4096)).max_value_bytes == 4096
    raised = state_machine_limits(LimitsSpec(max_request_bytes=4 * 1024 * 1024))
    assert raised.max_value_bytes == 4 * 1024 * 1024
    machine = StateMachine(state_machine_limits(LimitsSpec(max_txn_ops=2)))
    result = machine.apply(1, encode_command(Txn((), tuple(Put(b"k%d" % i, b"") for i in range(3)))))
    assert isinstance(result, LimitExceeded) and errors.from_kv_error(result).status is errors.TOO_MANY_OPS


def test_the_etcd_face_reports_etcds_errors() -> None:
    assert errors.from_kv_error(NoSpace()).status == errors.NO_SPACE
    assert errors.NO_SPACE.message == "etcdserver: mvcc: database space exceeded"
    assert errors.from_kv_error(Corrupt()).status == errors.CORRUPT
    too_large = errors.from_kv_error(LimitExceeded("max_request_bytes", 5000, 4096))
    assert too_large.status == errors.REQUEST_TOO_LARGE
    assert too_large.message == "etcdserver: request is too large"
