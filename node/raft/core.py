"""The Raft protocol as a pure, deterministic state machine.

Theory of operation
-------------------
`RaftCore` never performs I/O, never reads a clock and draws randomness only from
the `random.Random` in its Config. Its caller (the node's actor loop, or the
simulator) feeds it:

* `tick()` -- one unit of logical time;
* `step(message)` -- a message from a peer;
* `propose(data)`, `propose_conf_change(cc)`, `read_index(ctx)`,
  `transfer_leadership(to)`, `campaign()`;
* `report_unreachable(peer)`, `report_snapshot(peer, ok)`, `compact(snapshot)`.

and then asks `ready()` for a `Ready` batch: what to persist, send and apply. After
handling it (in the order the Ready documents) the caller calls `advance(ready)`.
Between `ready()` and `advance()` the caller must not call anything else but
`persisted`.

`advance(ready)` is `accept(ready)` (the Ready was handled: applied, installed,
and its write handed to the disk) followed by `persisted(ready)` (its write is
durable). A caller with asynchronous storage writes calls `accept` at once and
`persisted` for each Ready later, in the order of the Readies, when its write ends
(etcd-io/raft's async storage writes); meanwhile the core keeps stepping, and the
next Ready hands out only what the earlier ones did not.

Durability rule: a message whose meaning depends on state not yet durable -- a vote
grant, an append acknowledgement, or anything said while the current term or vote
is not yet durable -- is placed in `messages_after_persist`, which the caller sends
only once that Ready's write (and so every earlier one) is durable. A leader's
AppendEntries may leave before the leader's own write (Raft thesis §10.2.1): the
leader counts itself towards a quorum only once `persisted` reports its entries
stable.

Section references are to the Raft paper (Ongaro & Ousterhout 2014) and the Raft
dissertation (Ongaro 2014, "thesis").
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence

from .config import Config
from .errors import (
    InvalidRequest, ProposalDropped, LeadershipTransferInProgress, NotLeader, UncommittedBytesExceeded,
)
from .log import RaftLog
from .membership import Membership
from .messages import (
    RESPONSES_AFTER_PERSIST, AppendEntries, AppendEntriesResponse, Heartbeat,
    HeartbeatResponse, InstallSnapshot, Message, ReadIndexRequest, ReadIndexResponse,
    RequestVote, RequestVoteResponse, TimeoutNow,
)
from .progress import Progress, ProgressState, progress_for, take_recently_active, track_members
from .quorum import VoteResult, joint_committed_index, joint_has_quorum, joint_vote_result
from .read_only import ReadOnly
from .replication import maybe_acknowledge, maybe_back_off, next_append
from .ready import Ready, Reported, Role
from .status import Status
from .types import (
    NONE, ConfChange, ConfState, Entry, EntryKind, HardState, Index, NodeId, ReadState,
    Snapshot, Term, encode_conf_change, leave_joint,
)


class RaftCore:
    """One Raft participant. See the module docstring for the contract."""

    def __init__(self, config: Config, conf: ConfState, *, hard_state: HardState | None = None,
                 snapshot: Snapshot | None = None, entries: Sequence[Entry] = ()) -> None:
        self.cfg = config
        self.id = config.id
        hs = hard_state or HardState()
        self.log = RaftLog(snapshot, entries, hs.commit)
        if snapshot is not None and (snapshot.meta.conf.voters or snapshot.meta.conf.learners):
            conf = snapshot.meta.conf
        # The configuration in effect (thesis §4.1), a function of the log.
        self.membership = Membership(conf)
        self.term = hs.term
        self.vote = hs.vote
        self.lead: NodeId = NONE
        self.role = Role.FOLLOWER
        self.prs: dict[NodeId, Progress] = {}
        self.votes: dict[NodeId, bool] = {}
        self.msgs: list[Message] = []
        self.read_states: list[ReadState] = []
        self.read_only = ReadOnly()
        self.election_elapsed = 0
        self.heartbeat_elapsed = 0
        self.randomized_election_timeout = config.election_ticks
        self.lead_transferee: NodeId = NONE
        self.uncommitted_size = 0
        self._broadcast_pending = False
        # Ticks left before a commit-only broadcast (Config.commit_linger_ticks); 0: none due.
        self.commit_linger = 0
        self.membership.refresh(self.log)  # a restart recovers the membership from the log
        self.reported = Reported(hs, self.membership.conf)
        # The (term, vote) the caller reported durable: until the current ones are,
        # every message waits for the write that makes them so (`ready`).
        self.durable_term, self.durable_vote = hs.term, hs.vote
        self.become_follower(self.term, NONE)

    # ======================================================================
    # Public inputs
    # ======================================================================
    def tick(self) -> None:
        """Advance logical time by one tick."""
        if self.role is Role.LEADER:
            self._maybe_auto_leave()
            self._tick_heartbeat()
        else:
            self._tick_election()

    def campaign(self) -> None:
        """Start an election now (as if the election timeout fired)."""
        self._hup(transfer=False)

    def propose(self, data: bytes, kind: EntryKind = EntryKind.NORMAL) -> Index:
        """Append `data` to the leader's log; returns its index. The entry is committed
        when a committed entry of the same index has the term this call saw
        (`self.term`); a different term at that index means the proposal was lost."""
        if self.role is not Role.LEADER:
            raise NotLeader(self.lead)
        if self.lead_transferee != NONE:
            raise LeadershipTransferInProgress(f"to node {self.lead_transferee}")
        if kind is EntryKind.CONF_CHANGE:
            raise InvalidRequest("membership changes go through propose_conf_change()")
        limit = self.cfg.max_uncommitted_bytes
        size = len(data)
        if limit and self.uncommitted_size > 0 and self.uncommitted_size + size > limit:
            raise UncommittedBytesExceeded(
                f"{self.uncommitted_size} bytes uncommitted, limit {limit}, entry {size}")
        self.uncommitted_size += size
        index = Index(self.log.last_index() + 1)
        self.log.append([Entry(self.term, index, data, kind)])
        self._broadcast_pending = True  # one AppendEntries per follower per Ready: batching
        return index

    def propose_conf_change(self, cc: ConfChange) -> Index:
        """Append the membership change `cc`; returns its log index. It takes effect
        at once (thesis §4.1) and is reported in the next Ready's `conf`; it is done
        when that index commits with the term this call saw. Refusals are typed:
        NotLeader, LeadershipTransferInProgress, ConfChangePending, LeaderNotReady,
        LearnerLagging (retry later) and InvalidConfChange (makes no sense)."""
        if self.role is not Role.LEADER:
            raise NotLeader(self.lead)
        if self.lead_transferee != NONE:
            raise LeadershipTransferInProgress(f"to node {self.lead_transferee}")
        log = self.log
        data = encode_conf_change(self.membership.check_proposal(
            cc, log, self.term, self.prs, self.cfg.max_learner_lag))
        index = Index(log.last_index() + 1)
        log.append([Entry(self.term, index, data, EntryKind.CONF_CHANGE)])
        self.uncommitted_size += len(data)
        self._refresh_conf()
        self._broadcast_pending = True
        self._maybe_commit()  # a removal shrinks the quorum: earlier entries may commit
        return index

    def conf_at(self, index: Index) -> ConfState:
        """The membership in effect after entry `index`: what a snapshot taken at
        `index` must carry in its meta. Raises LogCompacted below the snapshot."""
        return self.membership.conf_at(self.log, index)

    def read_index(self, ctx: bytes) -> None:
        """Request a linearizable read point for `ctx` (thesis §6.4). A ReadState with
        this ctx appears in a later Ready; a lost request simply never appears, so the
        caller times out and retries with a fresh ctx. `ctx` must be unique across the
        cluster (the leader keys pending reads by it; a duplicate of a pending ctx is
        ignored): e.g. random bytes from the node plus a counter."""
        if self.role is Role.LEADER:
            self._leader_read_index(ctx, self.id)
        elif self.lead != NONE:
            self._send(ReadIndexRequest(self.id, self.lead, self.term, ctx))
        else:
            raise NotLeader(NONE)

    def transfer_leadership(self, to: NodeId) -> None:
        """Hand leadership to voter `to` (thesis §3.10): catch it up, then TimeoutNow.
        Proposals are refused until the transfer ends or times out (one election
        timeout)."""
        if self.role is not Role.LEADER:
            raise NotLeader(self.lead)
        if to == self.id:
            return
        if to not in self.voters:
            kind = "a learner (promote it first)" if to in self.learners else "not a member"
            raise InvalidRequest(f"cannot transfer leadership to node {to}: {kind}")
        if self.lead_transferee == to:
            return
        self.lead_transferee = to
        self.election_elapsed = 0
        if self.prs[to].match == self.log.last_index():
            self._send(TimeoutNow(self.id, to, self.term))
        else:
            self._send_append(to)

    def report_unreachable(self, peer: NodeId) -> None:
        """The transport could not deliver to `peer`: stop pipelining to it."""
        pr = self.prs.get(peer)
        if self.role is Role.LEADER and pr is not None and pr.state is ProgressState.REPLICATE:
            pr.become_probe()

    def report_snapshot(self, peer: NodeId, ok: bool) -> None:
        """The snapshot stream to `peer` finished (ok) or failed."""
        pr = self.prs.get(peer)
        if self.role is not Role.LEADER or pr is None or pr.state is not ProgressState.SNAPSHOT:
            return
        pr.snapshot_finished(ok)

    def compact(self, snapshot: Snapshot) -> list[Entry]:
        """The caller saved `snapshot` (taken at an applied index): drop the log prefix
        it covers and use it for followers that fall behind. Its meta.conf must be
        `conf_at(meta.index)`: followers that install it adopt that membership.
        Returns the log's previous entry list (the dropped entries, then the
        retained ones it shares with the new list: RaftLog.compact), which the
        caller may free a slice at a time (freeing is proportional to the entries
        between two snapshots)."""
        if snapshot.meta.index <= self.log.snapshot_index:
            return []
        conf = self.membership.check_snapshot(self.log, snapshot.meta)
        dropped = self.log.compact(snapshot)
        self.membership.rebase(conf)
        self._refresh_conf()
        return dropped

    def status(self) -> Status:
        learner_match = learner_lag = None
        if self.role is Role.LEADER:
            last = self.log.last_index()
            learner_match = {p: self.prs[p].match for p in sorted(self.learners)}
            learner_lag = {p: last - m for p, m in learner_match.items()}
        return Status(
            id=self.id, role=self.role, term=self.term, vote=self.vote, lead=self.lead,
            commit=self.log.committed, applied=self.log.applied,
            last_index=self.log.last_index(), snapshot_index=self.log.snapshot_index,
            progress={p: repr(pr) for p, pr in sorted(self.prs.items())},
            voters=self.conf.voters, learners=self.conf.learners, conf_index=self.conf_index,
            learner_match=learner_match, learner_lag=learner_lag,
            voters_outgoing=self.conf.voters_outgoing, learners_next=self.conf.learners_next,
        )

    # ======================================================================
    # Ready / advance
    # ======================================================================
    def has_ready(self) -> bool:
        log = self.log
        reported = self.reported
        hs, ss = reported.hard_state, reported.soft_state
        # Field comparisons, not fresh dataclasses or calls: this runs after every event.
        return bool(
            self._broadcast_pending or self.msgs
            or (self.read_only.round_wanted and self.read_only.round_done())
            or self.read_states
            or log.in_progress_index < log.snapshot_index + len(log.entries)
            or log.pending_snapshot is not None
            or (log.committed > log.applied and log.pending_snapshot is None)
            or self.term != hs.term or self.vote != hs.vote or log.committed != hs.commit
            or self.lead != ss.lead or self.role is not ss.role or self.term != ss.term
            or self.membership.conf is not reported.conf
        )

    def ready(self) -> Ready:
        if self._broadcast_pending:
            self._broadcast_append()
        if self.read_only.round_wanted and self.read_only.round_done():
            # ReadIndex reads wait for a heartbeat round and none is out: send one.
            self.read_only.start_round()
            if self.role is Role.LEADER:
                self._broadcast_heartbeat()
        log = self.log
        rd = Ready(entries=log.unstable_entries(),
                   committed_entries=log.next_committed_entries(self.cfg.max_committed_size_per_ready),
                   snapshot=log.pending_snapshot, read_states=self.read_states)
        self.read_states = []
        term_or_vote_changed = self.reported.fill(rd, self.term, self.vote, log.committed,
                                                  self.lead, self.role, self.membership.conf)
        msgs, self.msgs = self.msgs, []
        if (term_or_vote_changed or rd.snapshot is not None
                or self.term != self.durable_term or self.vote != self.durable_vote):
            # Everything we say in a new term speaks for a vote/term not yet durable
            # (this Ready's write makes it so, or an earlier one still in flight).
            rd.messages_after_persist = msgs
        else:
            for m in msgs:
                (rd.messages_after_persist if isinstance(m, RESPONSES_AFTER_PERSIST)
                 else rd.messages).append(m)
        rd.must_sync = bool(rd.entries) or term_or_vote_changed or rd.snapshot is not None
        return rd

    def advance(self, rd: Ready) -> None:
        """The caller handled `rd`: its entries, hard state and snapshot are durable and
        its committed entries applied (`accept`, then `persisted`)."""
        self.accept(rd)
        self.persisted(rd)

    def accept(self, rd: Ready) -> None:
        """The caller handled `rd` but maybe its write: the snapshot is installed, the
        committed entries applied, the entries and hard state handed to the disk
        (the next Ready does not hand them out again)."""
        self.reported.acknowledge(rd)
        if rd.snapshot is not None:
            self.log.snapshot_installed(rd.snapshot)
        if rd.entries:
            self.log.accept_unstable(rd.entries[-1].index)
        if rd.committed_entries:
            self.log.applied_to(rd.committed_entries[-1].index)
            if self.role is Role.LEADER:
                applied_bytes = sum(len(e.data) for e in rd.committed_entries)
                self.uncommitted_size = max(0, self.uncommitted_size - applied_bytes)

    def persisted(self, rd: Ready) -> None:
        """`rd`'s write is durable (and so every earlier Ready's: writes end in order).
        May be called before `accept(rd)` or any time after it."""
        if rd.hard_state is not None:
            self.durable_term, self.durable_vote = rd.hard_state.term, rd.hard_state.vote
        if rd.entries:
            last = rd.entries[-1]
            self.log.stable_to(last.index, last.term)
        if self.role is Role.LEADER and self.prs[self.id].maybe_update(self.log.stable_index):
            # The leader's own durable entries count towards the quorum only now.
            if self._maybe_commit():
                self._commit_advanced()

    # ======================================================================
    # Role transitions (Raft §5.2)
    # ======================================================================
    def become_follower(self, term: Term, lead: NodeId) -> None:
        self._reset(term)
        self.lead = lead
        self.role = Role.FOLLOWER

    def _become_pre_candidate(self) -> None:
        # PreVote (thesis §9.6): neither term nor vote change, so a node that cannot
        # win never disrupts the cluster with a higher term.
        assert self.role is not Role.LEADER, "a leader cannot become pre-candidate"
        self.role = Role.PRE_CANDIDATE
        self.lead = NONE
        self.votes = {}

    def _become_candidate(self) -> None:
        assert self.role is not Role.LEADER, "a leader cannot become candidate"
        self._reset(Term(self.term + 1))
        self.vote = self.id
        self.role = Role.CANDIDATE

    def _become_leader(self) -> None:
        assert self.role is Role.CANDIDATE, f"only a candidate can become leader, not {self.role}"
        self._reset(self.term)
        self.lead = self.id
        self.role = Role.LEADER
        if self.id not in self.prs:  # elected outside its latest configuration (§4.2.2)
            self._track_members()
            self.prs[self.id].match = self.log.stable_index
        self.prs[self.id].become_replicate()
        # A no-op in the new term lets the leader commit entries of earlier terms,
        # which Figure 8 forbids it from committing by counting (§5.4.2, §8).
        self.log.append([Entry(self.term, Index(self.log.last_index() + 1), b"", EntryKind.NOOP)])
        self._broadcast_pending = True

    def _reset(self, term: Term) -> None:
        if term != self.term:
            self.term = term
            self.vote = NONE
        self.lead = NONE
        self.election_elapsed = 0
        self.heartbeat_elapsed = 0
        # Randomized election timeouts in [T, 2T) make split votes rare (§5.2).
        self.randomized_election_timeout = self.cfg.rng.randrange(
            self.cfg.election_ticks, 2 * self.cfg.election_ticks)
        self.lead_transferee = NONE
        self.votes = {}
        self.uncommitted_size = 0
        self._broadcast_pending = False
        self.commit_linger = 0
        self.read_only.clear()
        self.prs = progress_for(self.membership.all_voters, self.learners, Index(self.log.last_index() + 1),
                                self.cfg.max_inflight_msgs)
        if self.id in self.prs:
            self.prs[self.id].match = self.log.stable_index

    def _promotable(self) -> bool:
        # While joint, an outgoing-only voter still votes and may lead (etcd-io/raft).
        m = self.membership
        if self.id in m.all_voters:
            return True
        # Thesis §4.2.2: a server not in its own latest configuration still starts
        # elections while that entry is uncommitted -- it may be needed to commit it
        # (e.g. a leader outside C_new that appended C_new and lost its lease: the
        # new voters lack the entry, and the old ones, which hold it, would refuse
        # their shorter logs). It counts votes by that latest configuration, in which
        # its own vote does not count; once leading it commits C_new and hands over.
        log = self.log
        if m.index <= log.committed or m.index <= log.snapshot_index:
            return False
        return self.id in self.membership.conf_at(log, Index(m.index - 1)).all_voters()

    # ======================================================================
    # Timers
    # ======================================================================
    def _tick_election(self) -> None:
        self.election_elapsed += 1
        if self._promotable() and self.election_elapsed >= self.randomized_election_timeout:
            self.election_elapsed = 0
            self._hup(transfer=False)

    def _tick_heartbeat(self) -> None:
        self.heartbeat_elapsed += 1
        self.election_elapsed += 1
        if self.election_elapsed >= self.cfg.election_ticks:
            self.election_elapsed = 0
            if self.cfg.check_quorum and not self._quorum_recently_active():
                # CheckQuorum (thesis §6.2): a leader cut off from a majority steps
                # down instead of serving stale reads and accepting doomed writes.
                self.become_follower(self.term, NONE)
                return
            self.lead_transferee = NONE  # a transfer that did not finish in time is abandoned
        if self.commit_linger:
            self.commit_linger -= 1
            if not self.commit_linger:
                self._broadcast_pending = True  # the commit-only AppendEntries, now
        if self.heartbeat_elapsed >= self.cfg.heartbeat_ticks:
            self.heartbeat_elapsed = 0
            self._broadcast_heartbeat()

    def _quorum_recently_active(self) -> bool:
        m = self.membership
        return joint_has_quorum(m.voters, m.outgoing, take_recently_active(self.prs) | {self.id})

    # ======================================================================
    # Elections (Raft §5.2, §5.4.1; PreVote thesis §9.6)
    # ======================================================================
    def _hup(self, transfer: bool) -> None:
        if self.role is Role.LEADER or not self._promotable():
            return
        self._campaign(pre_vote=self.cfg.pre_vote and not transfer, transfer=transfer)

    def _campaign(self, pre_vote: bool, transfer: bool = False) -> None:
        if pre_vote:
            self._become_pre_candidate()
            term = Term(self.term + 1)
        else:
            self._become_candidate()
            term = self.term
        self.votes = {self.id: True}
        if self._vote_result() is VoteResult.WON:  # a single voter
            if pre_vote:
                self._campaign(pre_vote=False, transfer=transfer)
            else:
                self._become_leader()
            return
        last_index, last_term = self.log.last_index(), self.log.last_term()
        for voter in sorted(self.membership.all_voters):  # both sets while joint
            if voter != self.id:
                self._send(RequestVote(self.id, voter, term, last_index, last_term,
                                       pre_vote, transfer))

    def _handle_request_vote(self, m: RequestVote) -> None:
        # One vote per term (§5.2), and only for a log at least as up to date (§5.4.1).
        # A PreVote for a future term is granted on the log alone: it binds nothing.
        can_vote = (self.vote == m.src
                    or (self.vote == NONE and self.lead == NONE)
                    or (m.pre_vote and m.term > self.term))
        # A joiner that knows no membership yet votes too: only a candidate whose log
        # names it a voter asks it (ADD_VOTER), and that voter set may have no quorum
        # without it (adding a second voter to a one-voter cluster). Its empty log adds
        # nothing to the candidate's majority but is no danger either: with one server
        # changed at a time, every majority of the candidate's configuration overlaps
        # one of the configuration that committed anything, whose members refuse a
        # stale log (thesis §4.1; new servers join with empty logs, §4.2.1). Refusing
        # more -- e.g. every node its own log calls removed -- is not live: that log
        # may hold a stale, uncommitted removal whose truncation needs this very vote.
        # Learners vote: they may have been promoted in a log they have not seen yet.
        if can_vote and self.log.is_up_to_date(m.last_log_index, m.last_log_term):
            self._send(RequestVoteResponse(self.id, m.src, m.term, True, m.pre_vote))
            if not m.pre_vote:
                self.election_elapsed = 0
                self.vote = m.src
        else:
            self._send(RequestVoteResponse(self.id, m.src, self.term, False, m.pre_vote))

    def _handle_vote_response(self, m: RequestVoteResponse) -> None:
        if m.pre_vote != (self.role is Role.PRE_CANDIDATE):
            return  # an answer to the other phase of the election
        self.votes.setdefault(m.src, m.granted)
        result = self._vote_result()
        if result is VoteResult.WON:
            if self.role is Role.PRE_CANDIDATE:
                self._campaign(pre_vote=False)
            else:
                self._become_leader()
        elif result is VoteResult.LOST:
            self.become_follower(self.term, NONE)

    def _vote_result(self) -> VoteResult:
        # Joint consensus: a majority of the incoming AND of the outgoing voters (§6).
        return joint_vote_result(self.membership.voters, self.membership.outgoing, self.votes)

    def _handle_timeout_now(self, m: TimeoutNow) -> None:
        # Leadership transfer: the leader asked us to campaign right away, skipping
        # PreVote; `transfer` lets the vote through the voters' leader stickiness.
        self._hup(transfer=True)

    # ======================================================================
    # Message dispatch
    # ======================================================================
    def step(self, m: Message) -> None:
        """Feed one message from a peer into the core."""
        if m.dst != self.id:
            return
        if self.role is Role.LEADER:
            self._maybe_auto_leave()
        if m.term > self.term:
            if not self._step_higher_term(m):
                return
        elif m.term < self.term:
            self._reject_stale(m)
            return
        match m:
            case RequestVote():
                self._handle_request_vote(m)
            case RequestVoteResponse():
                if self.role in (Role.CANDIDATE, Role.PRE_CANDIDATE):
                    self._handle_vote_response(m)
            case AppendEntries():
                if self._follow(m.src):
                    self._handle_append_entries(m)
            case Heartbeat():
                if self._follow(m.src):
                    self._handle_heartbeat(m)
            case InstallSnapshot():
                if self._follow(m.src):
                    self._handle_install_snapshot(m)
            case AppendEntriesResponse():
                if self.role is Role.LEADER:
                    self._handle_append_response(m)
            case HeartbeatResponse():
                if self.role is Role.LEADER:
                    self._handle_heartbeat_response(m)
            case TimeoutNow():
                if self.role is Role.FOLLOWER:
                    self._handle_timeout_now(m)
            case ReadIndexRequest():
                if self.role is Role.LEADER:
                    self._leader_read_index(m.ctx, m.src)
            case ReadIndexResponse():
                if self.role is Role.FOLLOWER:
                    self.read_states.append(ReadState(m.index, m.ctx))

    def _step_higher_term(self, m: Message) -> bool:
        """Handle a message from a later term. Returns whether to go on processing it."""
        if isinstance(m, RequestVote):
            # Leader stickiness (thesis §4.2.3, §9.6): while we heard from a live leader
            # within the minimum election timeout, a vote request is from a disruptive
            # server -- ignore it, without adopting its term.
            in_lease = (self.cfg.check_quorum and self.lead != NONE
                        and self.election_elapsed < self.cfg.election_ticks)
            if in_lease and not m.transfer:
                return False
            if m.pre_vote:
                return True  # PreVote never changes anyone's term
        elif isinstance(m, RequestVoteResponse) and m.pre_vote and m.granted:
            return True  # carries the term we would campaign in; we adopt it by campaigning
        leader_msg = isinstance(m, (AppendEntries, Heartbeat, InstallSnapshot))
        self.become_follower(m.term, m.src if leader_msg else NONE)
        return True

    def _reject_stale(self, m: Message) -> None:
        """A message from an older term: tell its sender our term so it steps down
        (§5.1). Stale answers are dropped."""
        if isinstance(m, (AppendEntries, Heartbeat, InstallSnapshot)):
            self._send(AppendEntriesResponse(self.id, m.src, self.term, False, Index(0)))
        elif isinstance(m, RequestVote):
            self._send(RequestVoteResponse(self.id, m.src, self.term, False, m.pre_vote))

    def _follow(self, leader: NodeId) -> bool:
        """A leader message for our current term: follow that leader."""
        if self.role is Role.LEADER:
            return False  # impossible with Election Safety; never obey a rival
        if self.role is not Role.FOLLOWER:
            self.become_follower(self.term, leader)
        self.lead = leader
        self.election_elapsed = 0
        return True

    def _send(self, m: Message) -> None:
        self.msgs.append(m)
    # ======================================================================
    # Follower side of replication (Raft §5.3, §7)
    # ======================================================================
    def _handle_append_entries(self, m: AppendEntries) -> None:
        log = self.log
        if m.prev_log_index < log.committed:
            # Everything up to our commit index matches the leader already.
            self._send(AppendEntriesResponse(self.id, m.src, self.term, True, log.committed))
            return
        last_new = log.maybe_append(m.prev_log_index, m.prev_log_term, m.leader_commit, m.entries)
        if last_new is not None:
            if m.entries:
                self._refresh_conf()  # appended or truncated a membership change
            self._send(AppendEntriesResponse(self.id, m.src, self.term, True, last_new))
            return
        hint_index, hint_term = log.find_conflict_by_term(
            min(m.prev_log_index, log.last_index()), m.prev_log_term)
        self._send(AppendEntriesResponse(self.id, m.src, self.term, False, m.prev_log_index,
                                         hint_index, hint_term))

    def _handle_heartbeat(self, m: Heartbeat) -> None:
        # The leader never sends a commit beyond what it knows we hold.
        self.log.commit_to(m.commit)
        self._send(HeartbeatResponse(self.id, m.src, self.term, m.ctx))

    def _handle_install_snapshot(self, m: InstallSnapshot) -> None:
        conf = m.snapshot.meta.conf
        if self.log.maybe_restore(m.snapshot):
            # A snapshot that does not know its membership keeps ours.
            self.membership.rebase(conf if conf.voters or conf.learners else self.conf)
            self._refresh_conf()
        self._send(AppendEntriesResponse(self.id, m.src, self.term, True, self.log.committed))

    # ======================================================================
    # Membership (thesis §4.1-4.3; docs/raft-core.md "Membership")
    # ======================================================================
    @property
    def conf(self) -> ConfState:
        """The configuration in effect: the latest in the log, committed or not (§4.1)."""
        return self.membership.conf

    @property
    def conf_index(self) -> Index:
        """The index `conf` is in effect from: its entry's, or the snapshot's."""
        return self.membership.index

    @conf_index.setter
    def conf_index(self, index: Index) -> None:
        # Only tests that plant bugs (e.g. two pending changes) write this.
        self.membership.index = index

    @property
    def voters(self) -> frozenset[NodeId]:
        return self.membership.voters

    @property
    def learners(self) -> frozenset[NodeId]:
        return self.membership.learners

    def _refresh_conf(self) -> None:
        """The log changed under the membership (§4.1): re-read it and, when it
        changed, give exactly the new members a Progress."""
        if self.membership.refresh(self.log):
            self._track_members()

    def _track_members(self) -> None:
        members = self.membership.all_voters | self.learners
        if self.role is Role.LEADER:
            members |= {self.id}  # a leader removing itself leads until that commits (§4.2.2)
            if self.lead_transferee not in self.voters:
                self.lead_transferee = NONE
        track_members(self.prs, members, self.learners, Index(self.log.last_index() + 1),
                      self.cfg.max_inflight_msgs)

    def _maybe_auto_leave(self) -> None:
        """Joint consensus with auto leave (etcd-io/raft): once the entry entering the
        joint configuration is applied here, this leader proposes leaving it, on its
        next input (a tick or a message; never inside `advance`, so the new entry and
        configuration come out in the next Ready). A refusal (a transfer under way, no
        committed entry of this term yet) is retried on the next input; a new leader
        of a joint configuration does the same."""
        conf = self.membership.conf
        if (self.role is not Role.LEADER or not conf.joint or not conf.auto_leave
                or self.log.applied < self.membership.index):
            return
        try:
            self.propose_conf_change(leave_joint(self.id))
        except ProposalDropped:
            pass

    def _step_down_removed(self) -> None:
        """The change removing this leader committed (thesis §4.2.2): tell followers
        the commit index, hand over to an up-to-date voter, and stop leading. Not
        being a voter, it never campaigns again."""
        self._broadcast_append()
        last = self.log.last_index()
        ready = [v for v in sorted(self.voters) if self.prs[v].match == last]
        if ready:
            self._send(TimeoutNow(self.id, ready[0], self.term))
        self.become_follower(self.term, NONE)

    # ======================================================================
    # Leader side of replication
    # ======================================================================
    def _commit_advanced(self) -> None:
        """The leader's commit index moved: tell the followers now, or within
        `commit_linger_ticks` unless an AppendEntries carries it first."""
        linger = self.cfg.commit_linger_ticks
        if linger == 0:
            self._broadcast_pending = True
        elif self.commit_linger == 0:
            self.commit_linger = linger

    def _broadcast_append(self) -> None:
        self._broadcast_pending = False
        self.commit_linger = 0  # every AppendEntries carries the commit index
        if self.role is not Role.LEADER:
            return
        for peer in self.prs:
            if peer != self.id:
                self._send_append(peer)

    def _broadcast_heartbeat(self) -> None:
        ctx = self.read_only.last_ctx()
        committed = self.log.committed
        for peer, pr in self.prs.items():
            if peer != self.id:
                self._send(Heartbeat(self.id, peer, self.term, min(pr.match, committed), ctx))

    def _send_append(self, to: NodeId, allow_empty: bool = True) -> bool:
        """Send `to` the entries it needs next (or a snapshot). Returns whether a
        message went out."""
        m = next_append(self.log, self.prs[to], self.id, to, self.term,
                        self.cfg.max_size_per_msg, allow_empty)
        if m is not None:
            self._send(m)
        return m is not None

    def _handle_append_response(self, m: AppendEntriesResponse) -> None:
        pr = self.prs.get(m.src)
        if pr is None:
            return
        pr.recent_active = True
        if not m.success:
            if maybe_back_off(self.log, pr, m):
                self._send_append(m.src)
            return
        was_paused = pr.is_paused()
        if not maybe_acknowledge(pr, m.index):
            return  # a duplicate or reordered acknowledgement
        if self._maybe_commit():
            if self.role is not Role.LEADER:
                return  # this leader's removal committed: it stepped down
            self._commit_advanced()
            if was_paused and not self._broadcast_pending:
                self._send_append(m.src)
        elif was_paused:
            self._send_append(m.src)
        while self._send_append(m.src, allow_empty=False):
            pass  # pipeline: fill the in-flight window
        if m.src == self.lead_transferee and pr.match == self.log.last_index():
            self._send(TimeoutNow(self.id, m.src, self.term))

    def _handle_heartbeat_response(self, m: HeartbeatResponse) -> None:
        pr = self.prs.get(m.src)
        if pr is None:
            return
        pr.recent_active = True
        pr.probe_sent = False
        if pr.state is ProgressState.REPLICATE and pr.is_paused():
            pr.free_first_inflight()
        if pr.match < self.log.last_index():
            self._send_append(m.src)
        if m.ctx:
            self._ack_read(m.ctx, m.src)

    def _maybe_commit(self) -> bool:
        """Advance commit to the quorum-replicated index, but only by counting replicas
        of an entry of the current term (§5.4.2, Figure 8)."""
        log = self.log
        ci = self._quorum_committed()
        if ci <= log.committed or log.term_at(ci) != self.term:
            return False
        log.commit_to(ci)
        if self.id not in self.membership.all_voters and ci >= self.membership.index:
            self._step_down_removed()
            return True
        for ctx, origin in self.read_only.take_awaiting_commit():
            self._leader_read_index(ctx, origin)
        return True

    def _quorum_committed(self) -> Index:
        """The index a quorum holds: while joint, a majority of the incoming AND a
        majority of the outgoing voters (Raft §6); neither set alone decides."""
        m, prs = self.membership, self.prs
        return joint_committed_index(m.voters, m.outgoing, {v: prs[v].match for v in m.all_voters})

    # ======================================================================
    # ReadIndex (thesis §6.4)
    # ======================================================================
    def _leader_read_index(self, ctx: bytes, origin: NodeId) -> None:
        log = self.log
        if self.membership.all_voters == {self.id}:
            self._deliver_read(ReadState(log.committed, ctx), origin)
        elif log.term_at(log.committed) != self.term:
            # Until its no-op commits, a new leader's commit index may lag entries that
            # earlier leaders committed: reads wait for it (thesis §6.4 step 1).
            self.read_only.awaiting_commit.append((ctx, origin))
        else:
            self.read_only.add(ctx, log.committed, origin, self.id)  # waits for a round

    def _ack_read(self, ctx: bytes, peer: NodeId) -> None:
        for read in self.read_only.ack(ctx, peer, self.membership.voters, self.membership.outgoing):
            self._deliver_read(ReadState(read.index, read.ctx), read.origin)

    def _deliver_read(self, rs: ReadState, origin: NodeId) -> None:
        if origin == self.id:
            self.read_states.append(rs)
        else:
            self._send(ReadIndexResponse(self.id, origin, self.term, rs.ctx, rs.index))


def boot(config: Config, voters: Iterable[NodeId] = (),
         learners: Iterable[NodeId] = ()) -> RaftCore:
    """A brand-new member with an empty log (term 0): of a brand-new cluster with
    these voters and learners, or -- with none -- a node joining an existing cluster,
    which learns the membership from the leader's log or snapshot."""
    return RaftCore(config, ConfState(tuple(sorted(voters)), tuple(sorted(learners))))
