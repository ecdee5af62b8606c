"""`python -m supervisor replace ID`: replace member ID by a new one in one joint step.

Starts a new member as `add` does (next id, fresh ports, `--join`, recorded in the
roster), adds it as a learner and waits until it has caught up; then ONE joint
change promotes it and removes ID (cluster/cli_member_change.py; while joint, every
commit needs a majority of the old voters and one of the new -- docs/raft-core.md,
"Joint consensus"); the leader leaves the joint configuration by itself; finally the
supervisor stops ID and forgets it. ID may be the leader: it hands over once the
joint configuration is left. Unlike `add` then `remove`, the cluster never runs with
an even voter count or one voter short.
"""
from __future__ import annotations

import time
from typing import TextIO

from cluster.cli_member_change import NewMember, change_voters
from cluster.client import ClientError
from cluster.discovery import Layout, read_state
from cluster.spec import SpecError, load_spec
from supervisor import member_changes as mc
from supervisor import netns
from supervisor.configgen import FACES, HOST, free_ports
from supervisor.control import ControlError, wait_until
from supervisor.roster import Member, save_roster


def replace(layout: Layout, which: str, timeout: float, out: TextIO) -> int:
    state = mc._live_state(layout)
    try:
        spec = load_spec(layout.config)
    except SpecError as error:
        raise ControlError(str(error)) from None
    if spec.curve.enabled:
        raise ControlError("replacing a member of a --secure cluster is not supported yet (see `add`)")
    if netns.load(layout) is not None:
        raise ControlError("`supervisor replace` in a --netns cluster is not supported yet (the new member would "
                           "need a namespace of its own); docs/deploy.md shows changing members on other hosts")
    try:
        old = int(which)
    except ValueError:
        raise ControlError(f"node id must be a number, got {which!r}", 2) from None
    roster = mc._roster(layout)
    current = {m.id for m in roster.current(spec)}
    if old not in current:
        raise ControlError(f"no member {old} in this cluster (members: {sorted(current)})", 2)
    node_id = roster.next_id(spec)
    peer_port, client_port, grpc_port, gateway_port = free_ports(FACES)
    member = Member(node_id, f"tcp://{HOST}:{peer_port}", f"tcp://{HOST}:{client_port}", tuple(state.endpoints()),
                    grpc=f"http://{HOST}:{grpc_port}", gateway=f"http://{HOST}:{gateway_port}")
    deadline = time.monotonic() + timeout
    with mc._client(state, timeout) as client:
        try:
            client.members()
        except ClientError as error:
            raise ControlError(f"the cluster does not answer: {error}") from None
        roster.add(member)
        save_roster(layout, roster)
        mc._signal_supervisor(state)
        pid = mc._wait_spawned(layout, node_id, deadline)
        mc._say(out, f"node {node_id}: started as pid {pid} (peer {member.peer}, client {member.client})")
        try:
            added = client.member_add(node_id, member.peer, member.client, grpc=member.grpc, gateway=member.gateway)
            mc._say(out, f"node {node_id}: added as a learner")
            mc._wait_caught_up(client, node_id, int(added.get("commit_index", 0)), deadline, out)
            members = change_voters(client, [NewMember(node_id, member.peer, member.client, member.grpc,
                                                       member.gateway)], [old], deadline,
                                    lambda line: mc._say(out, line))
        except ClientError as error:
            raise ControlError(f"replacing node {old} by node {node_id} failed ({type(error).__name__}: "
                               f"{error}); node {node_id} keeps running: `python -m supervisor remove "
                               f"{node_id}` to undo") from None
    mc._say(out, f"node {old} replaced by node {node_id}: voters {members.get('voters')}")
    roster.remove(old)
    save_roster(layout, roster)
    mc._signal_supervisor(state)

    def forgotten() -> bool:
        now = read_state(layout)
        return now is not None and all(n.id != old for n in now.nodes)
    if not wait_until(forgotten, max(1.0, deadline - time.monotonic())):
        raise ControlError(f"the supervisor did not stop node {old} in time")
    mc._say(out, f"node {old}: stopped and forgotten (its data stays in {layout.node_dir(old)})")
    return 0
