"""The corruption checks: members compare their HashKV at one revision, and a
member whose state diverged gets a CORRUPT alarm (cluster/kv/alarms.py) that
stops the cluster's KV requests until an operator acts (docs/operations.md,
"Consistency checks").

A member's own checks (record CRCs, snapshot checksums) catch torn and flipped
bytes; they cannot catch a state that is wrong *and* consistent -- a bad disk or
a bug that changed a value together with its checksum, an applier that diverged.
Only comparing replicas does, as etcd's corruption checks do:

* At start-up (`[maintenance] corrupt_check_initial`, etcd's
  --experimental-initial-corrupt-check): once the member applied what its log
  says is committed, it asks every peer for HashKV at its own revision and
  compares (node/hash_comparison.py). Until the verdict it does not serve KV
  requests (they are answered no-leader-yet: the client tries another member);
  peers that do not answer within the request timeout are skipped. On a
  mismatch it logs an error naming itself, keeps refusing KV requests with
  etcd's "etcdserver: corrupt cluster", and reports itself to the leader (an
  AlarmReport), which raises CORRUPT for it. etcd's member exits instead; a
  member that stays up keeps the cluster's quorum and shows the alarm.
* Periodically (`corrupt_check_interval_s`, etcd's
  --experimental-corrupt-check-time): every interval the leader asks every
  member for HashKV at the leader's current revision and raises CORRUPT for the
  members whose hash is not the majority's (itself too).

How members ask each other: peer messages (node/wire.py, HashKVRequest /
HashKVResponse / AlarmReport), as etcd's members use their peer URLs -- no
client socket, no thread, and with `[curve]` the peer channel's authentication;
client auth does not apply (the peer channel is the cluster's own). A member
asked for a revision it has not applied yet answers once it has (a follower
lags its leader by a heartbeat), or says it is behind at the deadline. Each
HashKV is computed on the member's loop: O(retained history), as a client's
HashKV request (refused above digest.MAX_RECORDS records).
"""
from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

from cluster.kv import KvError, encode_command
from cluster.kv.alarms import Alarm, AlarmAction, AlarmMember, AlarmType
from cluster.kv.errors import Compacted, Corrupt
from cluster.protocol import ErrorCode, Reply
from cluster.spec import MaintenanceSpec
from node.answers import Answers
from node.eventlog import EventLog
from node.hash_comparison import MemberHash, odd_members, start_up_mismatch
from node.raft import LeadershipTransferInProgress, NotLeader, RaftCore, Role, UncommittedBytesExceeded
from node.replica import Replica
from node.statemachine import StateMachine, TooLargeToHash
from node.wire import AlarmReport, HashKVRequest, HashKVResponse, HashOutcome

CheckMessage = HashKVRequest | HashKVResponse | AlarmReport
#: Seconds between two proposals (or reports) of one alarm not applied yet.
RAISE_RETRY_S = 1.0
#: Seconds between two requests to a peer that has not answered this round: a frame
#: to a peer not connected yet (a member just started) is dropped, not queued.
ASK_AGAIN_S = 0.5
#: Most requests a member keeps waiting for their revision (bounded: peers resend).
MAX_WAITING = 64
#: What a member not serving yet answers KV requests with.
CHECKING = "checking consistency with its peers before serving (initial corruption check)"


@dataclass(slots=True)
class _Round:
    """One comparison in progress: this member's hash and the peers' answers."""

    check: int
    own: MemberHash
    revision: int
    deadline: float
    initial: bool
    asked: set[int]
    answers: dict[int, HashKVResponse] = field(default_factory=dict)
    asked_at: float = 0.0


class CorruptionCheck:
    def __init__(self, node_id: int, settings: MaintenanceSpec, wait_s: float, core: RaftCore, replica: Replica,
                 peers: Callable[[], set[int]], send: Callable[[CheckMessage], None],
                 answers: Answers, refuse_kv: Callable[[Callable[[int], Reply] | None], None],
                 clock: Callable[[], float], log: EventLog) -> None:
        """`wait_s`: how long a round waits for answers (and a member for a revision
        asked of it). `peers`: the members to ask. `refuse_kv`: sets (or, given
        None, clears) the reply the member answers KV requests with instead of
        serving them (the router's `refusing`)."""
        self.id = node_id
        self._interval = settings.corrupt_check_interval_s
        self._wait_s = wait_s
        self._core = core
        self._replica = replica
        self._peers = peers
        self._send = send
        self._answers = answers
        self._refuse_kv = refuse_kv
        self._clock = clock
        self._log = log
        self._checks = itertools.count(1)
        self._round: _Round | None = None
        self._waiting: list[tuple[float, HashKVRequest]] = []  # asked for revisions not applied yet
        self._raising: dict[AlarmMember, float] = {}  # alarm -> when last proposed or reported
        #: (state machine, (revision, compact revision), hash) of the last HashKV computed
        self._last_hash: tuple[StateMachine, tuple[int, int], int] | None = None
        #: the start-up check has not given its verdict yet (KV requests are refused)
        self.starting = settings.corrupt_check_initial
        #: the start-up check found this member's state diverged
        self.corrupt = False
        self._next_periodic = clock() + self._interval
        if self.starting:
            refuse_kv(lambda rid: answers.error(rid, ErrorCode.NO_LEADER_YET, CHECKING))

    # -- the loop's entry points -------------------------------------------------------

    def sweep(self, now: float) -> None:
        """From the loop's sweep (outside any Ready): answer requests whose revision
        is applied now, start and end rounds, raise or report pending alarms."""
        if self._waiting:
            self._answer_waiting(now)
        if self._round is not None:
            if now >= self._round.deadline:
                self._conclude()
            elif now - self._round.asked_at >= ASK_AGAIN_S:
                self._ask(self._round, now)
        if self._round is None:
            if self.starting:
                self._maybe_start_initial(now)
            elif self._interval and now >= self._next_periodic:
                self._next_periodic = now + self._interval
                if self._core.role is Role.LEADER:
                    self._start(now, initial=False)
        if self._raising:
            self._retry_raising(now)

    def on_message(self, m: CheckMessage) -> None:
        match m:
            case HashKVRequest():
                self._answer(m, self._clock() + self._wait_s)
            case HashKVResponse():
                current = self._round
                if current is not None and m.check == current.check and m.src in current.asked:
                    current.answers[m.src] = m
                    if len(current.answers) == len(current.asked):
                        self._conclude()
            case AlarmReport():
                self._on_report(m)

    # -- answering -----------------------------------------------------------------------

    def _answer(self, request: HashKVRequest, deadline: float) -> None:
        sm = self._replica.sm
        if request.revision > sm.revision:
            if len(self._waiting) < MAX_WAITING:
                self._waiting.append((deadline, request))
            else:
                self._reply(request, HashOutcome.BEHIND)
            return
        try:
            digest, current, compact = self._hash_kv(request.revision)
        except Compacted:
            self._reply(request, HashOutcome.COMPACTED)
            return
        except (KvError, TooLargeToHash) as error:
            self._log.rate_limited("hash-kv-unavailable", f"HashKV at {request.revision} for node "
                                   f"{request.src}: {error}")
            self._reply(request, HashOutcome.UNAVAILABLE)
            return
        self._send(HashKVResponse(self.id, request.src, request.check, request.revision, HashOutcome.OK,
                                  digest, current, compact))

    def _hash_kv(self, revision: int) -> tuple[int, int, int]:
        """The state machine's HashKV, remembering the last one: the history up to a
        revision is fixed once applied, until a compaction (whose revision is part of
        the key), so asking again (a resent request, the round's own hash) is free.
        An installed snapshot replaces the state machine: it is part of the key too."""
        sm = self._replica.sm
        key = (revision, sm.compact_revision)
        last = self._last_hash
        if last is not None and last[0] is sm and last[1] == key:
            return last[2], sm.revision, sm.compact_revision
        digest, current, compact = sm.hash_kv(revision)
        self._last_hash = (sm, key, digest)
        return digest, current, compact

    def _reply(self, request: HashKVRequest, outcome: HashOutcome) -> None:
        self._send(HashKVResponse(self.id, request.src, request.check, request.revision, outcome))

    def _answer_waiting(self, now: float) -> None:
        waiting, self._waiting = self._waiting, []
        revision = self._replica.sm.revision
        for deadline, request in waiting:
            if request.revision <= revision:
                self._answer(request, deadline)
            elif now >= deadline:
                self._reply(request, HashOutcome.BEHIND)
            else:
                self._waiting.append((deadline, request))

    # -- asking --------------------------------------------------------------------------

    def _maybe_start_initial(self, now: float) -> None:
        sm = self._replica.sm
        if sm.applied_index < self._core.log.committed:
            return  # what the log says is committed first: that is the state to check
        if sm.revision <= 1:
            self._pass_initial("nothing written yet: nothing to compare")
        elif not self._start(now, initial=True):
            self._pass_initial("no peer to compare with, or a history too large to hash")

    def _start(self, now: float, initial: bool) -> bool:
        """Hash this member's history at its revision and ask every peer for theirs;
        False if there is nobody to ask or nothing to hash."""
        peers = self._peers()
        sm = self._replica.sm
        revision = sm.revision
        try:
            digest, _, compact = self._hash_kv(revision)
        except (KvError, TooLargeToHash) as error:
            self._log.rate_limited("corruption-check-skipped", f"corruption check skipped: {error}")
            return False
        if not peers:
            return False
        check = next(self._checks)
        # A periodic round ends by the next one's time: a member that is down must not
        # hold up the comparison of the others for the whole request timeout.
        wait = self._wait_s if initial else min(self._wait_s, self._interval)
        self._round = _Round(check, MemberHash(self.id, digest, compact), revision, now + wait, initial, set(peers))
        self._ask(self._round, now)
        return True

    def _ask(self, current: _Round, now: float) -> None:
        """(Again) ask the peers that have not answered the round."""
        current.asked_at = now
        for peer in sorted(current.asked - set(current.answers)):
            self._send(HashKVRequest(self.id, peer, current.check, current.revision))

    def _conclude(self) -> None:
        current, self._round = self._round, None
        assert current is not None
        hashes = [MemberHash(a.src, a.hash, a.compact_revision)
                  for a in current.answers.values() if a.outcome is HashOutcome.OK]
        skipped = {peer: (current.answers[peer].outcome.name.lower() if peer in current.answers else "no answer")
                   for peer in sorted(current.asked) if peer not in {h.member_id for h in hashes}}
        if current.initial:
            self._judge_self(current, hashes, skipped)
        elif self._core.role is Role.LEADER:
            self._judge_members(current, hashes, skipped)

    def _judge_self(self, current: _Round, hashes: list[MemberHash], skipped: dict[int, str]) -> None:
        own = current.own
        disagreeing = start_up_mismatch(own, hashes)
        if not disagreeing:
            self._pass_initial(f"HashKV at revision {current.revision} ({own.hash}) agrees with "
                               f"{len(hashes)} peer(s){_skipped(skipped)}")
            return
        self.starting, self.corrupt = False, True
        self._log.error(f"initial corruption check: node {self.id}'s HashKV at revision {current.revision} "
                        f"({own.hash}) differs from that of node(s) {disagreeing}: node {self.id}'s data is "
                        f"corrupt; it refuses KV requests and asks for a CORRUPT alarm naming node {self.id}")
        self._refuse_kv(lambda rid: self._answers.result(rid, Corrupt()))
        self._raise(AlarmMember(self.id, AlarmType.CORRUPT))

    def _pass_initial(self, why: str) -> None:
        self.starting = False
        self._refuse_kv(None)
        self._log.info(f"initial corruption check passed: {why}")

    def _judge_members(self, current: _Round, hashes: list[MemberHash], skipped: dict[int, str]) -> None:
        odd = odd_members(current.own, hashes)
        if not odd:
            self._log.debug(f"corruption check: HashKV at revision {current.revision} agrees on "
                            f"{len(hashes) + 1} member(s){_skipped(skipped)}")
            return
        found = {h.member_id: h.hash for h in [current.own, *hashes]}
        raised = self._replica.sm.alarms
        for member in odd:
            what = f"node {member}'s HashKV at revision {current.revision} ({found[member]}) is not the " \
                   f"majority's (hashes {found})"
            alarm = AlarmMember(member, AlarmType.CORRUPT)
            if alarm in raised:
                self._log.rate_limited(f"still-corrupt-{member}", f"corruption check: {what}; its CORRUPT "
                                       "alarm is raised")
                continue
            self._log.error(f"corruption check: {what}: raising a CORRUPT alarm naming node {member}")
            self._raise(alarm)

    # -- raising alarms ------------------------------------------------------------------

    def _on_report(self, report: AlarmReport) -> None:
        """A member reports itself: only the leader proposes (a follower drops it,
        the reporter sends it again to the leader it learns of)."""
        if report.alarm not in (AlarmType.NOSPACE, AlarmType.CORRUPT) or self._core.role is not Role.LEADER:
            return
        alarm = AlarmMember(report.src, AlarmType(report.alarm))
        if alarm not in self._replica.sm.alarms and alarm not in self._raising:
            self._log.warning(f"node {report.src} reports itself {alarm.alarm.name}: raising the alarm")
        self._raise(alarm)

    def _raise(self, alarm: AlarmMember) -> None:
        """Propose the alarm (the leader) or report it to the leader (a member raising
        its own); retried by `sweep` until applied."""
        self._raising[alarm] = self._clock()
        core = self._core
        if core.role is Role.LEADER:
            try:
                core.propose(encode_command(Alarm(AlarmAction.ACTIVATE, alarm.member_id, alarm.alarm)))
            except (NotLeader, LeadershipTransferInProgress, UncommittedBytesExceeded) as error:
                self._log.rate_limited("alarm-proposal", f"cannot propose the {alarm.alarm.name} alarm of "
                                       f"node {alarm.member_id} yet: {error}")
        elif alarm.member_id == self.id and core.lead:
            self._send(AlarmReport(self.id, core.lead, int(alarm.alarm)))

    def _retry_raising(self, now: float) -> None:
        raised = set(self._replica.sm.alarms)
        for alarm, last in list(self._raising.items()):
            if alarm in raised:
                del self._raising[alarm]
            elif now - last >= RAISE_RETRY_S:
                if self._core.role is Role.LEADER or alarm.member_id == self.id:
                    self._raise(alarm)
                else:
                    del self._raising[alarm]  # leadership moved on: the new leader checks again


def _skipped(skipped: dict[int, str]) -> str:
    return "; skipped " + ", ".join(f"node {peer} ({why})" for peer, why in skipped.items()) if skipped else ""
