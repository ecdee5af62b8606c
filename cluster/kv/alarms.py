"""Alarms (etcd's Maintenance.Alarm): a member's report that the cluster must
stop taking some requests until an operator acts, replicated through the log so
every member refuses the same requests from the same entry on.

Names and numbers are etcdserverpb's: `AlarmAction` GET 0 / ACTIVATE 1 /
DEACTIVATE 2, `AlarmType` NONE 0 / NOSPACE 1 / CORRUPT 2. An alarm is raised
for a member (the one that found the store over its quota, or the one whose
state diverged); GET lists every raised alarm, DEACTIVATE ("alarm disarm")
clears one (etcdctl disarms every listed alarm one by one), and NONE as the type
of a GET means all.

While an alarm is raised the state machine refuses what etcd's appliers refuse
(node/statemachine/alarm_table.py):

* NOSPACE (etcd's applierV3Capped): puts, txns with a put, lease grants get
  `NoSpace` ("etcdserver: mvcc: database space exceeded"); reads, deletes,
  compaction and alarm requests go on, so an operator can free space and disarm.
* CORRUPT (etcd's applierV3Corrupt): every KV and lease request gets `Corrupt`
  ("etcdserver: corrupt cluster") until the alarm is disarmed.

Alarm requests are the root user's while auth is on (etcd: admin permission).
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class AlarmAction(IntEnum):
    """etcdserverpb.AlarmRequest.AlarmAction."""

    GET = 0
    ACTIVATE = 1
    DEACTIVATE = 2


class AlarmType(IntEnum):
    """etcdserverpb.AlarmType."""

    NONE = 0
    NOSPACE = 1
    CORRUPT = 2


@dataclass(frozen=True, slots=True)
class Alarm:
    """etcd's AlarmRequest: GET (member 0 and NONE: every alarm), ACTIVATE or
    DEACTIVATE `alarm` for `member_id`. Logged (as in etcd, GET too)."""

    action: AlarmAction
    member_id: int = 0
    alarm: AlarmType = AlarmType.NONE


@dataclass(frozen=True, slots=True, order=True)
class AlarmMember:
    """etcd's AlarmMember: one raised alarm."""

    member_id: int
    alarm: AlarmType


@dataclass(frozen=True, slots=True)
class AlarmResponse:
    """etcd's AlarmResponse: the alarms the request concerned (GET: all raised;
    ACTIVATE: the one raised; DEACTIVATE: the one cleared, none if it was not
    raised), ascending (member, type)."""

    revision: int
    alarms: tuple[AlarmMember, ...] = ()
