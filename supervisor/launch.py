"""`up`: check the data directory, prepare the config, then supervise in the
foreground or start a detached supervisor and wait until it reports a leader.

Detach: the parent starts `python -m supervisor up --data-dir DIR --supervise` in
a new session (so the terminal's Ctrl-C and hang-up do not reach it), with its
output appended to `supervisor.log`, and watches the state file until that child
writes `ready: true` (a leader exists), exits (its log tail is shown), or the
timeout passes (the child is stopped). The child is an ordinary foreground
supervisor with plain output.
"""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import TextIO

import psutil

from cluster.curve_keys import KeyFileError
from cluster.discovery import ClusterState, DiscoveryError, Layout, read_state
from cluster.spec import ClusterSpec, SpecError, load_spec
from supervisor import netns
from supervisor.configgen import ConfigConflict, prepare_config
from supervisor.control import ControlError
from supervisor.display import Display, display_for, security_line
from supervisor.spawn import terminate
from supervisor.statefile import SupervisorLock, SupervisorRunning, inspect, remove_state
from supervisor.supervise import Supervisor


def check_free(layout: Layout, out: TextIO) -> None:
    """Refuse if a supervisor is live here; clean a stale state file, but keep one
    whose nodes still run: the new supervisor adopts them (supervisor/spawn.py)."""
    existing = inspect(layout)
    if existing.supervisor_alive or SupervisorLock(layout).is_held_elsewhere():
        state = existing.state
        who = f" (supervisor pid {state.supervisor_pid}, {len(state.nodes)} nodes)" if state else ""
        raise ControlError(f"a cluster is already running in {layout.root}{who}. "
                           "See `python -m supervisor status`; stop it with `python -m supervisor down`.")
    if existing.orphans:
        pids = ", ".join(str(n.pid) for n in existing.orphans)
        print(f"the supervisor (pid {existing.state.supervisor_pid if existing.state else '?'}) is gone but "
              f"{len(existing.orphans)} of its nodes still run (pids {pids}): adopting them", file=out)
        return
    if existing.state is not None or layout.state.exists():
        pid = existing.state.supervisor_pid if existing.state else "?"
        print(f"removing a stale state file (its supervisor, pid {pid}, is gone)", file=out)
        remove_state(layout)


def prepare(layout: Layout, size: int | None, base_port: int | None, config: str | None,
            fault_injection: bool = False, secure: bool = False, netns_wanted: bool = False) -> ClusterSpec:
    """The config `up` runs; with `netns_wanted` (`--netns`), or in a data directory
    that recorded a --netns plan, each member's namespace, link and the bridge are
    made first (supervisor/netns.py) and the members use their namespace addresses."""
    try:
        plan = _netns_plan(layout, size, netns_wanted)
        spec = prepare_config(layout, size, base_port, config, fault_injection, secure,
                              hosts=plan.hosts() if plan else None)
        if plan is not None:
            netns.save(layout, plan)
            made = netns.create(plan)
            if made:
                print(f"netns: made {', '.join(made)} (bridge {plan.bridge}, host {plan.host_address}/24)")
        return spec
    except netns.NetnsUnavailable as error:
        raise ControlError(str(error), 2) from None
    except netns.NetnsError as error:
        raise ControlError(str(error)) from None
    except (SpecError, ValueError, ConfigConflict, KeyFileError, OSError) as error:
        raise ControlError(str(error), 2) from None


def _netns_plan(layout: Layout, size: int | None, wanted: bool) -> netns.NetnsPlan | None:
    plan = netns.load(layout)
    if plan is None and not wanted:
        return None
    netns.require()
    if plan is None:
        existing = load_spec(layout.config) if layout.config.is_file() else None
        count = size or (len(existing.members) if existing else 3)
        plan = netns.plan_for(layout.root, list(range(1, count + 1)))
    return plan


def restore_members(layout: Layout, spec: ClusterSpec, backup: str, out: TextIO) -> None:
    """`up --from-snapshot FILE`: every member's data directory of the new cluster
    `spec` written from the snapshot file (`python -m node.backup restore`: same
    keys, revisions, leases and auth; this cluster's id and members), before any
    member starts. Refused if a member's directory holds anything: a restore
    starts a new cluster, it never overwrites one."""
    targets = {m.id: layout.root / spec.data_dir_for(m.id) for m in spec.members}
    for node_id, target in targets.items():
        if target.exists() and any(target.iterdir()):
            raise ControlError(f"member {node_id}'s data directory {target} is not empty: --from-snapshot starts "
                               "a new cluster (`python -m supervisor down --purge` first)", 2)
    source = str(Path(backup).absolute())
    for node_id, target in targets.items():
        done = subprocess.run([sys.executable, "-m", "node.backup", "restore", source, "--config", str(layout.config),
                               "--id", str(node_id), "--data-dir", str(target)],
                              capture_output=True, text=True, check=False, cwd=layout.root)
        if done.returncode:
            raise ControlError(f"restoring member {node_id} from {backup}: {done.stderr.strip()}")
    print(f"restored {len(targets)} members of cluster {spec.cluster_id} from {backup}", file=out)


def up_foreground(layout: Layout, spec: ClusterSpec, leader_timeout: float, grace: float,
                  display: Display | None = None) -> int:
    lock = SupervisorLock(layout)
    try:
        lock.acquire()
    except SupervisorRunning as error:
        raise ControlError(str(error)) from None
    try:
        supervisor = Supervisor(layout, spec, display or display_for(sys.stdout), grace=grace,
                                previous=_previous_state(layout))
        supervisor.install_signal_handlers()
        return supervisor.run(leader_timeout)
    finally:
        lock.release()


def _previous_state(layout: Layout) -> ClusterState | None:
    """The state file a killed supervisor left (read under the lock: no live
    supervisor writes it now), whose running nodes are adopted."""
    try:
        return read_state(layout)
    except DiscoveryError:
        return None


def up_detached(layout: Layout, spec: ClusterSpec, leader_timeout: float, grace: float, out: TextIO) -> int:
    command = [sys.executable, "-m", "supervisor", "up", str(len(spec.members)), "--data-dir", str(layout.root),
               "--supervise", "--timeout", str(leader_timeout), "--grace", str(grace)]
    with layout.supervisor_log.open("ab") as log:
        child = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                 start_new_session=True, cwd=layout.root)
    deadline = time.monotonic() + leader_timeout + 15
    while time.monotonic() < deadline:
        if child.poll() is not None:
            print(f"the supervisor exited with status {child.returncode} before a leader was elected; "
                  f"the end of {layout.supervisor_log}:", file=out)
            print(_tail(layout, 20), file=out)
            return 1
        try:
            state = read_state(layout)
        except DiscoveryError:
            state = None  # mid-write: read again
        if state is not None and state.ready and state.supervisor_pid == child.pid:
            print(f"cluster {state.cluster_id} is up: {len(state.nodes)} nodes, supervisor pid {child.pid} "
                  f"(log: {layout.supervisor_log})", file=out)
            for node in state.nodes:
                faces = "".join(f"  {name} {url}" for name, url in
                                (("grpc", node.grpc), ("gateway", node.gateway), ("metrics", node.metrics)) if url)
                print(f"  node {node.id}  pid {node.pid}  client {node.client}{faces}  log {layout.node_log(node.id)}",
                      file=out)
            endpoints = ",".join(n.client.removeprefix("tcp://") for n in state.nodes)
            print(f"endpoints: {endpoints}", file=out)
            print(security_line(state), file=out)
            if state.etcd_endpoints():
                print(f"etcd endpoints: {','.join(state.etcd_endpoints())}", file=out)
            print("try: python -m cluster put greeting hello; python -m supervisor status; "
                  "python -m supervisor down", file=out)
            return 0
        time.sleep(0.05)
    print(f"no leader within {leader_timeout:.0f} s; stopping the supervisor (see {layout.supervisor_log})",
          file=out)
    if child.poll() is None:  # our unreaped child: its pid cannot have been reused
        terminate([psutil.Process(child.pid)], grace + 15)
    child.wait()
    return 1


def _tail(layout: Layout, lines: int) -> str:
    try:
        return "\n".join(layout.supervisor_log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
