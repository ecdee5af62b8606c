"""Auto-compaction: etcd's --auto-compaction-mode periodic|revision with
--auto-compaction-retention ([maintenance] in the cluster config), so the
history kept in memory stays bounded under a steady write load.

The schedules are etcd 3.4's (etcdserver/api/v3compactor/periodic.go and
revision.go), as pure objects taking `now` and the revision:

* `PeriodicSchedule`: the revision is sampled every retention/10 (for a
  retention over an hour: every 6 minutes); the first compaction comes one
  retention after the start, then one every retention (at most every hour), each
  to the oldest sample kept, the revision of about one retention ago. So with
  "5m", the history of the last 5 to 10 minutes stays readable (watch --rev,
  get --rev).
* `RevisionSchedule`: every `REVISION_CHECK_SECONDS`, compact to the current
  revision minus the retention, unless that is where the last compaction went.
  etcd checks every 5 minutes; jangada's store lives in memory, so it checks every
  minute: the history then never holds much more than the retention.

Every member samples (so a new leader has the history of revisions at once), as
etcd runs its compactor everywhere, paused on followers; only the leader's node
proposes. It proposes an `AutoCompact` command (cluster/kv/requests.py) rather
than a `Compact`: while auth is on, `Compact` is root's at apply time, and the
node has no user; `AutoCompact` is refused from clients at the router (like
LeaseExpire), so only a node proposes it. A proposal counts as etcd's success:
one lost with a leadership change is retried by the next leader's schedule.
"""
from __future__ import annotations

from collections import deque
from collections.abc import Callable

from cluster.kv import AutoCompact, encode_command
from cluster.spec import MaintenanceSpec, compaction_retention
from node.eventlog import EventLog
from node.raft import LeadershipTransferInProgress, NotLeader, RaftCore, Role, UncommittedBytesExceeded
from node.replica import Replica

#: How often revision mode looks (etcd: 5 minutes; see the module docstring).
REVISION_CHECK_SECONDS = 60.0
#: etcd's retryDivisor: periodic mode samples the revision 10 times per retention.
SAMPLES_PER_RETENTION = 10
#: etcd caps the interval between periodic compactions at an hour.
MAX_COMPACT_INTERVAL_S = 3600.0


class PeriodicSchedule:
    """etcd's Periodic compactor as a value: call `due` as often as you like."""

    def __init__(self, retention_s: float, now: float) -> None:
        assert retention_s > 0
        self.retention = retention_s
        self.compact_interval = min(retention_s, MAX_COMPACT_INTERVAL_S)
        self.sample_interval = self.compact_interval / SAMPLES_PER_RETENTION
        #: samples kept: the oldest is the revision of one retention ago
        self.samples_kept = int(retention_s / self.sample_interval) + 1
        self._samples: deque[int] = deque(maxlen=self.samples_kept)
        self._next_sample = now
        self._last_success = now
        self._wait = retention_s  # the first compaction waits a whole retention

    def due(self, now: float, revision: int, leading: bool) -> int | None:
        """Take the samples due by `now`; return the revision to compact to if a
        compaction is due and this node leads (it then counts as done), else None."""
        if now < self._next_sample:
            return None
        target = None
        if self._samples and leading and now - self._last_success >= self._wait:
            target = self._samples[0]
            self._last_success = now
            self._wait = self.compact_interval
        self._samples.append(revision)
        self._next_sample = now + self.sample_interval
        return target


class RevisionSchedule:
    """etcd's Revision compactor as a value: keep the last `retention` revisions."""

    def __init__(self, retention: int, now: float, interval_s: float = REVISION_CHECK_SECONDS) -> None:
        assert retention > 0
        self.retention = retention
        self.interval = interval_s
        self._next_check = now + interval_s
        self._previous = 0

    def due(self, now: float, revision: int, leading: bool) -> int | None:
        if now < self._next_check:
            return None
        self._next_check = now + self.interval
        target = revision - self.retention
        if not leading or target <= 0 or target == self._previous:
            return None
        self._previous = target
        return target


Schedule = PeriodicSchedule | RevisionSchedule


def schedule_for(spec: MaintenanceSpec, now: float) -> Schedule | None:
    """The schedule [maintenance] asks for, or None when auto-compaction is off."""
    mode = spec.auto_compaction_mode
    if not mode:
        return None
    retention = compaction_retention(mode, spec.auto_compaction_retention)
    if retention <= 0:
        return None
    if mode == "periodic":
        return PeriodicSchedule(retention, now)
    return RevisionSchedule(int(retention), now)


class AutoCompaction:
    """The actor's side: run the schedule on every sweep; the leader proposes."""

    def __init__(self, spec: MaintenanceSpec, core: RaftCore, replica: Replica, clock: Callable[[], float],
                 log: EventLog) -> None:
        self.schedule = schedule_for(spec, clock())
        self._core = core
        self._replica = replica
        self._log = log

    def sweep(self, now: float) -> None:
        schedule = self.schedule
        if schedule is None:
            return
        sm = self._replica.sm
        target = schedule.due(now, sm.revision, self._core.role is Role.LEADER)
        if target is None or target <= sm.compact_revision:
            return  # nothing new to forget (etcd: ErrCompacted counts as success)
        try:
            self._core.propose(encode_command(AutoCompact(target)))
        except (NotLeader, LeadershipTransferInProgress, UncommittedBytesExceeded) as error:
            self._log.rate_limited("auto-compaction", f"auto-compaction to revision {target} not proposed: {error}")
            return
        self._log.info(f"auto-compaction to revision {target} proposed (revision {sm.revision})")
