"""Starting node processes and ending them, by pid.

Every node is `sys.executable -m node --config DATA/cluster.toml --id N --data-dir
DATA/node-N`, run with the data directory as its working directory, stdout
discarded and stderr appended to `DATA/node-N.log`, in a session of its own (a
terminal's Ctrl-C or hang-up reaches the supervisor only, which then stops its
nodes in order).

Nodes outlive their supervisor. The supervisor is not a replica: a cluster of N
fault-tolerant nodes must not stop serving because it died (issue 18), so nodes
are *not* tied to its life (no PR_SET_PDEATHSIG). A supervisor that is killed
(SIGKILL, OOM, a crash) leaves its nodes serving; the next `up` in the same data
directory adopts them (`Adopted`: matched by pid, start time and command line
against the state file) and starts only the missing ones. A supervisor that is
*asked* to stop (SIGTERM, SIGINT, SIGHUP, `down`) stops every node first.

An adopted node is not our child: its exit status cannot be reaped, only
noticed (`Adopted.exited`, polled through psutil), so its death is reported with
an unknown status and its log's last line.
"""
from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass

import psutil

from cluster.discovery import Layout
from supervisor import netns
from supervisor.roster import Member


def node_command(layout: Layout, node_id: int, join: Member | None = None) -> list[str]:
    """The node's command line; a member added after the initial config (`join`)
    also gets `--join ENDPOINTS --peer P --client C` (and `--grpc U --gateway U`
    for the etcd faces it has). In a --netns cluster it runs inside the member's
    namespace (`ip netns exec NS`, which execs it: same pid; supervisor/netns.py)."""
    command = netns.node_prefix(layout, node_id) + [sys.executable, "-m", "node", "--config", str(layout.config), "--id", str(node_id),
               "--data-dir", str(layout.node_dir(node_id))]
    if join is not None:
        command += ["--join", ",".join(join.join or ()), "--peer", join.peer, "--client", join.client]
        for flag, url in (("--grpc", join.grpc), ("--gateway", join.gateway)):
            if url:
                command += [flag, url]
    return command


def spawn_node(layout: Layout, node_id: int, join: Member | None = None) -> subprocess.Popen[bytes]:
    """Start node `node_id`; the caller owns the process."""
    layout.node_dir(node_id).mkdir(parents=True, exist_ok=True)
    with layout.node_log(node_id).open("ab") as log:
        return subprocess.Popen(node_command(layout, node_id, join), cwd=layout.root, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=log, start_new_session=True)


class Adopted:
    """A node started by an earlier supervisor that is gone, still running, taken
    over by this one. It cannot be waited on (its parent is now init or a
    subreaper), so `exited` polls psutil, which checks pid *and* start time: a
    reused pid reads as this node having exited, never as it running."""

    def __init__(self, process: psutil.Process) -> None:
        self.process = process
        self.pid = process.pid

    def exited(self) -> bool:
        try:
            return not self.process.is_running() or self.process.status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True


NodeProcess = subprocess.Popen[bytes] | Adopted


@dataclass(frozen=True, slots=True)
class Exit:
    """A node's death. `code` is the exit status (negative: the signal), None for an
    adopted node, whose status only its real parent could read."""

    code: int | None


def exit_of(proc: NodeProcess) -> Exit | None:
    """How `proc` ended, or None while it runs."""
    if isinstance(proc, Adopted):
        return Exit(None) if proc.exited() else None
    code = proc.poll()
    return None if code is None else Exit(code)


def as_psutil(proc: NodeProcess) -> psutil.Process | None:
    """The psutil handle to signal `proc`, None if it is gone."""
    if isinstance(proc, Adopted):
        return None if proc.exited() else proc.process
    if proc.poll() is not None:
        return None
    try:
        return psutil.Process(proc.pid)  # our unreaped child: the pid cannot be reused yet
    except psutil.NoSuchProcess:
        return None


def reap(proc: NodeProcess) -> None:
    """Collect a stopped node's exit status (an adopted node's init does that)."""
    if not isinstance(proc, Adopted):
        proc.wait()


def describe_exit(returncode: int | None, uptime: float) -> str:
    """How a node died, for the supervisor's log line (None: an adopted node's
    status, which cannot be known)."""
    after = f"after {uptime:.1f} s"
    if returncode is None:
        return f"exited, status unknown (adopted from an earlier supervisor: see its log) {after}"
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"killed by {name} {after}"
    meaning = {0: "graceful stop", 1: "fail-stop or cannot start: see its log",
               2: "bad config or data directory in use"}.get(returncode, "unexpected status")
    return f"exited with status {returncode} ({meaning}) {after}"


def terminate(procs: Iterable[psutil.Process], grace: float) -> list[int]:
    """SIGTERM each process (and SIGCONT, in case chaos paused it), wait up to
    `grace` seconds, SIGKILL whatever is left; the pids that needed SIGKILL."""
    procs = list(procs)
    for proc in procs:
        for sig in (signal.SIGTERM, signal.SIGCONT):
            try:
                proc.send_signal(sig)
            except psutil.NoSuchProcess:
                break
    _, alive = psutil.wait_procs(procs, timeout=grace)
    for proc in alive:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=10)
    return [p.pid for p in alive]
