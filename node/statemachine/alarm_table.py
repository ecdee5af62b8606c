"""The raised alarms (cluster/kv/alarms.py) and what they refuse.

etcd keeps its alarms in the backend's "alarm" bucket and swaps its applier when
one is raised: applierV3Capped for NOSPACE (puts, txns with a put and lease
grants fail with ErrNoSpace; deletes, reads and compaction go on, so space can
be freed) and applierV3Corrupt for CORRUPT (every KV and lease request fails
with ErrCorrupt). Here the table is part of the replicated state (snapshots,
digest) and `check` is the one gate `StateMachine` calls per command while any
alarm is raised; with none raised the state machine pays one attribute check.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator

from cluster.kv.alarms import Alarm, AlarmAction, AlarmMember, AlarmResponse, AlarmType
from cluster.kv.errors import Corrupt, NoSpace
from cluster.kv.requests import (
    AutoCompact, Compact, DeleteRange, LeaseGrant, LeaseRevoke, Put, Range, Request, Txn,
)

#: The requests a CORRUPT alarm refuses (etcd's applierV3Corrupt).
_CORRUPT_REFUSES = (Put, Range, DeleteRange, Txn, Compact, AutoCompact, LeaseGrant, LeaseRevoke)


class AlarmTable:
    def __init__(self) -> None:
        self._raised: set[AlarmMember] = set()
        #: whether any alarm is raised (the state machine's one check per command)
        self.any = False
        self._nospace = False
        self._corrupt = False

    def __iter__(self) -> Iterator[AlarmMember]:
        """The raised alarms, ascending (member, type)."""
        return iter(sorted(self._raised))

    def __len__(self) -> int:
        return len(self._raised)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AlarmTable) and self._raised == other._raised

    __hash__ = None  # type: ignore[assignment]  # mutable

    def load(self, alarms: Iterable[AlarmMember]) -> None:
        self._raised = set(alarms)
        self._changed()

    def apply(self, request: Alarm, revision: int) -> AlarmResponse:
        """etcd's applierV3backend.Alarm: GET lists the alarms (of `alarm` only
        unless NONE); ACTIVATE raises one (NONE is ignored, as etcd); DEACTIVATE
        clears one and answers it, or nothing if it was not raised."""
        member = AlarmMember(request.member_id, request.alarm)
        match request.action:
            case AlarmAction.GET:
                wanted = [a for a in self if request.alarm is AlarmType.NONE or a.alarm is request.alarm]
                return AlarmResponse(revision, tuple(wanted))
            case AlarmAction.ACTIVATE:
                if request.alarm is AlarmType.NONE:
                    return AlarmResponse(revision)
                self._raised.add(member)
                self._changed()
                return AlarmResponse(revision, (member,))
            case AlarmAction.DEACTIVATE:
                if member not in self._raised:
                    return AlarmResponse(revision)
                self._raised.discard(member)
                self._changed()
                return AlarmResponse(revision, (member,))
        raise AssertionError(f"not an alarm action: {request.action!r}")

    def check(self, request: Request) -> None:
        """Raise the error the raised alarms refuse `request` with (call only
        while `any`): CORRUPT first, as etcd's corrupt applier wraps the capped one."""
        if self._corrupt and isinstance(request, _CORRUPT_REFUSES):
            raise Corrupt()
        if self._nospace and _writes_space(request):
            raise NoSpace()

    def _changed(self) -> None:
        kinds = {a.alarm for a in self._raised}
        self._nospace = AlarmType.NOSPACE in kinds
        self._corrupt = AlarmType.CORRUPT in kinds
        self.any = bool(self._raised)


def _writes_space(request: Request) -> bool:
    """What etcd's capped applier refuses: a put, a txn with a put in either
    branch (nested txns too), a lease grant. A lease expiry frees space: it goes on."""
    if isinstance(request, (Put, LeaseGrant)):
        return True
    if isinstance(request, Txn):
        return any(_writes_space(op) for op in request.success + request.failure)
    return False



