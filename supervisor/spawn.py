"""Starting node processes and ending them, by pid.

Every node is `sys.executable -m node --config DATA/cluster.toml --id N --data-dir
DATA/node-N`, run with the data directory as its working directory, stdout
discarded and stderr appended to `DATA/node-N.log`. On Linux each node also asks
the kernel for SIGTERM when the supervisor dies (PR_SET_PDEATHSIG), so a supervisor
killed with SIGKILL does not leave a cluster running behind it; nodes started by a
supervisor that is gone anyway are found through the state file by `down`.
"""
from __future__ import annotations

import ctypes
import signal
import subprocess
import sys
from collections.abc import Callable, Iterable

import psutil

from cluster.discovery import Layout
from supervisor import netns
from supervisor.roster import Member

_PR_SET_PDEATHSIG = 1


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


def _die_with_parent() -> Callable[[], None] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None

    def preexec() -> None:  # runs in the child between fork and exec
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    return preexec


def spawn_node(layout: Layout, node_id: int, join: Member | None = None) -> subprocess.Popen[bytes]:
    """Start node `node_id`; the caller owns the process. Must be called from the
    main thread: PDEATHSIG fires when the *thread* that forked exits."""
    layout.node_dir(node_id).mkdir(parents=True, exist_ok=True)
    with layout.node_log(node_id).open("ab") as log:
        return subprocess.Popen(node_command(layout, node_id, join), cwd=layout.root, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=log, preexec_fn=_die_with_parent(),
                                start_new_session=True)


def describe_exit(returncode: int, uptime: float) -> str:
    """How a node died, for the supervisor's log line."""
    after = f"after {uptime:.1f} s"
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
