"""One canonical text form for every value: for logs, traces and golden tests."""
from __future__ import annotations

from .messages import (
    AppendEntries, AppendEntriesResponse, Heartbeat, HeartbeatResponse, InstallSnapshot,
    Message, ReadIndexRequest, ReadIndexResponse, RequestVote, RequestVoteResponse, TimeoutNow,
)
from .ready import Ready
from .types import ConfChange, ConfChangeKind, ConfState, Entry, EntryKind, HardState, decode_conf_change


def describe_conf_change(cc: ConfChange) -> str:
    if cc.kind is ConfChangeKind.ENTER_JOINT:
        changes = ", ".join(f"{ch.kind.name.lower().replace('_', '-')} {ch.node_id}" for ch in cc.changes)
        text = f"enter-joint [{changes}]" + (" auto-leave" if cc.auto_leave else "")
    elif cc.kind is ConfChangeKind.LEAVE_JOINT:
        text = "leave-joint"
    else:
        text = f"{cc.kind.name.lower().replace('_', '-')} {cc.node_id}"
    if cc.result is not None:
        text += f" -> {describe_conf(cc.result)}"
    return text


def describe_conf(conf: ConfState) -> str:
    text = f"voters={list(conf.voters)}"
    if conf.joint:
        text += f"&{list(conf.voters_outgoing)}"
    text += f" learners={list(conf.learners)}" if conf.learners else ""
    return text + (f" learners_next={list(conf.learners_next)}" if conf.learners_next else "")


def describe_entry(e: Entry) -> str:
    if e.kind is EntryKind.NOOP:
        return f"{e.term}/{e.index} noop"
    if e.kind is EntryKind.CONF_CHANGE:
        try:
            return f"{e.term}/{e.index} conf {describe_conf_change(decode_conf_change(e.data))}"
        except ValueError:
            return f"{e.term}/{e.index} conf <undecodable {len(e.data)} bytes>"
    body = e.data[:16].decode("utf-8", "replace")
    more = "..." if len(e.data) > 16 else ""
    kind = "" if e.kind is EntryKind.NORMAL else f" {e.kind.name.lower()}"
    return f"{e.term}/{e.index}{kind} {body!r}{more}" if e.data else f"{e.term}/{e.index}{kind}"


def describe_hard_state(hs: HardState) -> str:
    return f"term={hs.term} vote={hs.vote} commit={hs.commit}"


def describe_message(m: Message) -> str:
    head = f"{m.src}->{m.dst} {type(m).__name__} term={m.term}"
    match m:
        case RequestVote():
            pre = " pre-vote" if m.pre_vote else ""
            tr = " transfer" if m.transfer else ""
            return f"{head}{pre}{tr} last={m.last_log_term}/{m.last_log_index}"
        case RequestVoteResponse():
            pre = " pre-vote" if m.pre_vote else ""
            return f"{head}{pre} {'granted' if m.granted else 'rejected'}"
        case AppendEntries():
            ents = ", ".join(describe_entry(e) for e in m.entries)
            return (f"{head} prev={m.prev_log_term}/{m.prev_log_index} commit={m.leader_commit}"
                    f" entries=[{ents}]")
        case AppendEntriesResponse():
            if m.success:
                return f"{head} ok index={m.index}"
            return f"{head} reject index={m.index} hint={m.hint_term}/{m.hint_index}"
        case Heartbeat():
            return f"{head} commit={m.commit}" + (f" ctx={m.ctx!r}" if m.ctx else "")
        case HeartbeatResponse():
            return head + (f" ctx={m.ctx!r}" if m.ctx else "")
        case InstallSnapshot():
            meta = m.snapshot.meta
            return f"{head} snapshot={meta.term}/{meta.index} voters={list(meta.conf.voters)}"
        case ReadIndexRequest():
            return f"{head} ctx={m.ctx!r}"
        case ReadIndexResponse():
            return f"{head} ctx={m.ctx!r} index={m.index}"
        case TimeoutNow():
            return head
    return head


def describe_ready(rd: Ready) -> str:
    lines = []
    if rd.conf is not None:
        lines.append(f"conf: {describe_conf(rd.conf)}")
    if rd.soft_state is not None:
        ss = rd.soft_state
        lines.append(f"soft state: {ss.role.value} lead={ss.lead}")
    if rd.hard_state is not None:
        lines.append(f"hard state: {describe_hard_state(rd.hard_state)}")
    if rd.snapshot is not None:
        meta = rd.snapshot.meta
        lines.append(f"snapshot: {meta.term}/{meta.index}")
    if rd.entries:
        lines.append("entries: " + ", ".join(describe_entry(e) for e in rd.entries))
    if rd.must_sync:
        lines.append("must sync")
    lines += [f"send now: {describe_message(m)}" for m in rd.messages]
    lines += [f"send after persist: {describe_message(m)}" for m in rd.messages_after_persist]
    if rd.committed_entries:
        lines.append("apply: " + ", ".join(describe_entry(e) for e in rd.committed_entries))
    lines += [f"read state: index={r.index} ctx={r.ctx!r}" for r in rd.read_states]
    return "\n".join(lines)
