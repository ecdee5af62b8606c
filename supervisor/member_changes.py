"""`python -m supervisor add` and `remove`: grow and shrink a running cluster.

add: pick the next id and four free ports (peer, client, etcd gRPC and gateway), record the member in the roster
(supervisor/roster.py) and signal the supervisor (SIGUSR1), which starts it with
`--join` and a fresh data directory; then, through the cluster (client protocol),
add it as a learner, wait until it has caught up (the leader's lag figure for it
is at most `CAUGHT_UP_LAG` entries) and promote it to voter. Every step prints
one line.

remove: ask the cluster to remove the member (the leader too: it steps down once
the change commits), then record the removal in the roster and signal the
supervisor, which stops that process and forgets it in the state file.
"""
from __future__ import annotations

import signal
import time
from typing import Any, TextIO

from cluster.client import Client, ClientError, InvalidRequestError, RefusedError
from cluster.discovery import ClusterState, Layout, read_state
from cluster.spec import SpecError, load_spec
from supervisor.configgen import HOST, FACES, free_ports
from supervisor import netns
from supervisor.control import ControlError, load_state, wait_until
from supervisor.roster import Member, Roster, RosterError, load_roster, save_roster
from supervisor.statefile import node_process, supervisor_process

#: A learner is promoted once the leader's log is at most this many entries ahead of
#: it (the core refuses beyond Config.max_learner_lag, 1000 by default).
CAUGHT_UP_LAG = 100
PROGRESS_EVERY = 1.0


def _say(out: TextIO, message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {message}", file=out, flush=True)


def _live_state(layout: Layout) -> ClusterState:
    state = load_state(layout)
    if supervisor_process(state) is None:
        raise ControlError("no supervisor is running for this cluster: `python -m supervisor up` first")
    if not state.ready:
        raise ControlError("the cluster is still starting (no leader yet): try again in a moment")
    return state


def _roster(layout: Layout) -> Roster:
    try:
        return load_roster(layout)
    except RosterError as error:
        raise ControlError(str(error)) from None


def _signal_supervisor(state: ClusterState) -> None:
    proc = supervisor_process(state)
    if proc is None:
        raise ControlError("the supervisor is gone")
    proc.send_signal(signal.SIGUSR1)


def _client(state: ClusterState, timeout: float) -> Client:
    return Client(state.endpoints(), timeout=timeout, attempt_timeout=1.0)


def add(layout: Layout, timeout: float, out: TextIO) -> int:
    state = _live_state(layout)
    try:
        spec = load_spec(layout.config)
    except SpecError as error:
        raise ControlError(str(error)) from None
    if spec.curve.enabled:
        # Peers admit only the keys in their config, and a membership change carries
        # none: a new member could never talk to them (docs/security.md).
        raise ControlError("adding a member to a --secure cluster is not supported yet: membership changes "
                           "do not carry CURVE keys, so the members would refuse the new one")
    if netns.load(layout) is not None:
        raise ControlError("`supervisor add` in a --netns cluster is not supported yet (the new member would need "
                           "a namespace of its own); docs/deploy.md shows adding a member on another host by hand")
    roster = _roster(layout)
    node_id = roster.next_id(spec)
    peer_port, client_port, grpc_port, gateway_port = free_ports(FACES)
    member = Member(node_id, f"tcp://{HOST}:{peer_port}", f"tcp://{HOST}:{client_port}", tuple(state.endpoints()),
                    grpc=f"http://{HOST}:{grpc_port}", gateway=f"http://{HOST}:{gateway_port}")
    deadline = time.monotonic() + timeout
    with _client(state, timeout) as client:
        try:
            client.members()  # a leader answers before anything changes
        except ClientError as error:
            raise ControlError(f"the cluster does not answer: {error}") from None
        roster.add(member)
        save_roster(layout, roster)
        _signal_supervisor(state)
        pid = _wait_spawned(layout, node_id, deadline)
        _say(out, f"node {node_id}: started as pid {pid} (peer {member.peer}, client {member.client}, "
                  f"grpc {member.grpc}, gateway {member.gateway}, data {layout.node_dir(node_id)})")
        try:
            added = client.member_add(node_id, member.peer, member.client, grpc=member.grpc,
                                      gateway=member.gateway)
        except ClientError as error:
            roster.forget_added(node_id)
            save_roster(layout, roster)
            _signal_supervisor(state)
            raise ControlError(f"adding node {node_id} as a learner failed ({type(error).__name__}: {error}); "
                               "the process was stopped") from None
        _say(out, f"node {node_id}: added as a learner")
        _wait_caught_up(client, node_id, int(added.get("commit_index", 0)), deadline, out)
        _promote(client, node_id, deadline)
        _say(out, f"node {node_id}: promoted to voter; the cluster has {len(roster.current(spec))} members")
    return 0


def _wait_spawned(layout: Layout, node_id: int, deadline: float) -> int:
    found: dict[str, int] = {}

    def spawned() -> bool:
        state = read_state(layout)
        if state is None:
            return False
        try:
            record = state.node(node_id)
        except KeyError:
            return False
        if record.pid and node_process(record, state) is not None:
            found["pid"] = record.pid
            return True
        return False
    if not wait_until(spawned, max(0.0, deadline - time.monotonic())):
        raise ControlError(f"the supervisor did not start node {node_id} (see {layout.node_log(node_id)})")
    return found["pid"]


def _learner_progress(members: dict[str, Any], node_id: int) -> tuple[int, int | None]:
    """(match, lag) of learner `node_id` as the leader reports them."""
    for row in members.get("members", []):
        if row.get("id") == node_id:
            lag = row.get("lag")
            return int(row.get("match") or 0), int(lag) if lag is not None else None
    return 0, None


def _wait_caught_up(client: Client, node_id: int, added_at: int, deadline: float, out: TextIO) -> None:
    """Caught up: it holds at least the entry that added it (so it is really there,
    not just "close" to a young, short log) and lags at most CAUGHT_UP_LAG entries."""
    next_report = time.monotonic()
    lag: int | None = None
    while time.monotonic() < deadline:
        try:
            match, lag = _learner_progress(client.members(), node_id)
        except ClientError:
            match, lag = 0, None
        if lag is not None and match >= added_at and lag <= CAUGHT_UP_LAG:
            _say(out, f"node {node_id}: caught up (lag {lag} entries)")
            return
        if time.monotonic() >= next_report:
            _say(out, f"node {node_id}: catching up (lag {'?' if lag is None else lag} entries)")
            next_report = time.monotonic() + PROGRESS_EVERY
        time.sleep(0.1)
    raise ControlError(f"node {node_id} did not catch up in time (lag {lag}); it stays a learner: "
                       f"`python -m cluster member promote {node_id}` later, or `python -m supervisor remove "
                       f"{node_id}`")


def _promote(client: Client, node_id: int, deadline: float) -> None:
    last = ""
    while time.monotonic() < deadline:
        try:
            client.member_promote(node_id)
            return
        except RefusedError as error:  # it fell behind again: wait and retry
            last = str(error)
            time.sleep(0.2)
        except InvalidRequestError as error:
            members = client.members()
            if node_id in members.get("voters", []):
                return  # an earlier attempt whose answer was lost did it
            raise ControlError(f"promoting node {node_id} failed: {error}") from None
        except ClientError as error:
            last = f"{type(error).__name__}: {error}"
    raise ControlError(f"promoting node {node_id} failed: {last}; it stays a learner")


def remove(layout: Layout, which: str, timeout: float, out: TextIO) -> int:
    state = _live_state(layout)
    try:
        spec = load_spec(layout.config)
    except SpecError as error:
        raise ControlError(str(error)) from None
    roster = _roster(layout)
    current = {m.id for m in roster.current(spec)}
    try:
        node_id = int(which)
    except ValueError:
        raise ControlError(f"node id must be a number, got {which!r}", 2) from None
    if node_id not in current:
        raise ControlError(f"no member {node_id} in this cluster (members: {sorted(current)})", 2)
    with _client(state, timeout) as client:
        try:
            members = client.member_remove(node_id)
            _say(out, f"node {node_id}: removed from the configuration (voters {members.get('voters')}, "
                      f"learners {members.get('learners')})")
        except InvalidRequestError as error:
            if node_id in _member_ids(client):
                raise ControlError(f"the cluster refused to remove node {node_id}: {error}") from None
            _say(out, f"node {node_id}: already out of the configuration")
        except ClientError as error:
            raise ControlError(f"removing node {node_id} failed ({type(error).__name__}: {error})") from None
    roster.remove(node_id)
    save_roster(layout, roster)
    _signal_supervisor(state)

    def forgotten() -> bool:
        now = read_state(layout)
        return now is not None and all(n.id != node_id for n in now.nodes)
    if not wait_until(forgotten, timeout):
        raise ControlError(f"the supervisor did not stop node {node_id} within {timeout:g} s")
    _say(out, f"node {node_id}: stopped and forgotten; {len(current) - 1} members remain "
              f"(its data stays in {layout.node_dir(node_id)})")
    return 0


def _member_ids(client: Client) -> set[int]:
    members = client.members()
    return set(members.get("voters", [])) | set(members.get("learners", []))
