"""The space quota: etcd's --quota-backend-bytes on the store's accounted size
(`StateMachine.size_bytes`, node/statemachine/mvcc.py), [maintenance] quota_bytes
(0: etcd's default 2 GiB; -1: none).

etcd checks it twice, and so does jangada:

* At the front door (etcd's quotaKVServer, v3rpc/quota.go): a put, a txn that
  writes, or a lease grant that would take the size to the quota or over
  (`size + cost >= quota`, cost ~ the request's bytes, as etcd's quota.Cost) is
  refused with NoSpace ("etcdserver: mvcc: database space exceeded") before it
  is proposed, and the NOSPACE alarm is raised. Only the leader checks: writes
  are proposed there (a follower redirects them), so the leader's applied size
  is the one that matters.
* After applying (etcd raises the alarm when a backend went over): when the
  applied size reaches the quota and no NOSPACE alarm is raised, the leader's
  node proposes `Alarm(ACTIVATE, its id, NOSPACE)`. etcd raises it from the
  member whose backend exceeded; here every member counts the same size at the
  same index, so the leader raising it once is enough.

Once raised, the alarm is in the replicated state and every member's state
machine refuses what etcd's capped applier refuses (node/statemachine/
alarm_table.py). Reads, deletes, compaction and `alarm disarm` go on. An
operator compacts (which drops superseded versions from the accounted size),
then disarms; if the live keys alone still fill the quota, the next write raises
the alarm again: the quota must grow or keys be deleted (etcd would also need a
defragment; an in-memory store has no free pages to reclaim).
"""
from __future__ import annotations

from collections.abc import Callable

from cluster.kv import Alarm, AlarmAction, AlarmType, LeaseGrant, Put, Request, Txn, encode_command, is_read_only
from cluster.spec import DEFAULT_QUOTA_BYTES, MaintenanceSpec
from node.eventlog import EventLog
from node.raft import LeadershipTransferInProgress, NotLeader, RaftCore, Role, UncommittedBytesExceeded
from node.replica import Replica

#: Seconds before the leader proposes the alarm again if the first did not apply.
RAISE_RETRY_SECONDS = 1.0


def quota_of(spec: MaintenanceSpec) -> int:
    """The quota in bytes; 0 when there is none."""
    if spec.quota_bytes == -1:
        return 0
    return spec.quota_bytes or DEFAULT_QUOTA_BYTES


def takes_space(request: Request) -> bool:
    """What the quota guards: etcd's quotaKVServer checks Put, Txn and LeaseGrant."""
    return type(request) in (Put, LeaseGrant) or (type(request) is Txn and not is_read_only(request))


class SpaceQuota:
    def __init__(self, node_id: int, spec: MaintenanceSpec, core: RaftCore, replica: Replica,
                 clock: Callable[[], float], log: EventLog) -> None:
        self.id = node_id
        #: the quota in bytes, 0 = none (then the router skips every check)
        self.quota = quota_of(spec)
        self._core = core
        self._replica = replica
        self._clock = clock
        self._log = log
        self._proposed_at = -RAISE_RETRY_SECONDS

    def refuses(self, request: Request, cost: int) -> bool:
        """The front-door check (leader only; call only with a quota): whether
        `request` of `cost` bytes must be refused with NoSpace. Raises the alarm
        when it refuses."""
        if self._core.role is not Role.LEADER or not takes_space(request):
            return False
        if self._replica.sm.size_bytes + cost < self.quota:
            return False
        self.maybe_raise()
        return True

    def sweep(self) -> None:
        """After applying: raise the alarm if the applied size reached the quota."""
        if self.quota and self._core.role is Role.LEADER and self._replica.sm.size_bytes >= self.quota:
            self.maybe_raise()

    def maybe_raise(self) -> bool:
        """Propose NOSPACE for this member unless one is raised or was just proposed."""
        sm = self._replica.sm
        if any(a.alarm is AlarmType.NOSPACE for a in sm.alarms):
            return False
        now = self._clock()
        if now - self._proposed_at < RAISE_RETRY_SECONDS:
            return False
        try:
            self._core.propose(encode_command(Alarm(AlarmAction.ACTIVATE, self.id, AlarmType.NOSPACE)))
        except (NotLeader, LeadershipTransferInProgress, UncommittedBytesExceeded):
            return False
        self._proposed_at = now
        self._log.warning(f"space quota reached: accounted size {sm.size_bytes} bytes, quota {self.quota}: "
                          f"NOSPACE alarm proposed; writes are refused until compaction and `alarm disarm`")
        return True
