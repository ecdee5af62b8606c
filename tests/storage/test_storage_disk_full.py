"""A member whose disk fills up fail-stops, names the file, loses nothing
acknowledged, and rejoins once space is freed (issue 18; docs/storage.md "Disk
faults").

Node 3 of a 3-node cluster keeps its data directory on a small tmpfs mounted in a
private mount namespace. A holder process (`unshare -m ... exec sleep`) owns the
namespace so the tmpfs (and node 3's data) outlives node 3's exits; node 3 runs
*inside* it (`nsenter -t HOLDER -m`), as do the filler and the final `python -m
node.storage check`. The mount never propagates to the host (private), and it
dies with the namespace's last process: the holder, ended by pid in teardown
(and bounded by its sleep even if the test process itself is killed).
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from cluster.client import ClientError
from node.localcluster import LocalCluster, wait_for

TMPFS_SIZE = "4m"
HOLDER_SECONDS = 600  # the namespace's upper bound on life if teardown never runs


def _why_not() -> str | None:
    if sys.platform != "linux":
        return "needs Linux mount namespaces"
    if os.geteuid() != 0:
        return "needs root (unshare -m and mount -t tmpfs)"
    missing = [tool for tool in ("unshare", "nsenter") if shutil.which(tool) is None]
    return f"needs {' and '.join(missing)} (util-linux)" if missing else None


def _mounted(pid: int, path: Path) -> bool:
    try:
        lines = Path(f"/proc/{pid}/mountinfo").read_text().splitlines()
    except OSError:
        return False
    return any(line.split()[4] == str(path) for line in lines)


class PrivateDisk:
    """A tmpfs at `path`, visible only inside a mount namespace held by one process."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir(parents=True)
        self.holder = subprocess.Popen(
            ["unshare", "-m", "--propagation", "private", "sh", "-c",
             f"mount -t tmpfs -o size={TMPFS_SIZE} jangada-test {path} && exec sleep {HOLDER_SECONDS}"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def ready(self) -> str | None:
        """None once mounted, else why it cannot be (the holder died)."""
        def mounted_or_dead() -> bool:
            return _mounted(self.holder.pid, self.path) or self.holder.poll() is not None
        wait_for(mounted_or_dead, 10, "the private tmpfs")
        if self.holder.poll() is not None:
            _, stderr = self.holder.communicate()
            return f"cannot mount a tmpfs in a private mount namespace: {stderr.decode().strip()}"
        return None

    def inside(self, *command: str) -> list[str]:
        return ["nsenter", "-t", str(self.holder.pid), "-m", f"--wd={self.path.parent}", "--", *command]

    def run(self, *command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.inside(*command), capture_output=True, text=True, timeout=60, check=False)

    def close(self) -> None:
        if self.holder.poll() is None:
            self.holder.send_signal(signal.SIGKILL)
        self.holder.wait(timeout=30)
        if self.holder.stderr is not None:
            self.holder.stderr.close()


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[PrivateDisk]:
    reason = _why_not()
    if reason:
        print(f"skipped: {reason}")
        pytest.skip(reason)
    disk = PrivateDisk(tmp_path / "node-3")
    try:
        reason = disk.ready()
        if reason:
            print(f"skipped: {reason}")
            pytest.skip(reason)
        assert not _mounted(os.getpid(), disk.path)  # private: the host never sees it
        yield disk
    finally:
        disk.close()
    assert not _mounted(os.getpid(), disk.path)


def _start_inside(cluster: LocalCluster, disk: PrivateDisk, node_id: int) -> None:
    """Like LocalCluster.start, with the node inside the disk's mount namespace
    (nsenter execs it: the pid is the node's, and cluster.close() ends it)."""
    with (cluster.root / f"node-{node_id}.log").open("ab") as log:
        cluster.procs[node_id] = subprocess.Popen(
            disk.inside(sys.executable, "-m", "node", "--config", str(cluster.config), "--id", str(node_id)),
            stdout=subprocess.DEVNULL, stderr=log, cwd=cluster.root)


@pytest.mark.timeout(180)
def test_a_full_disk_fail_stops_the_member_which_rejoins_after_space_is_freed(
        tmp_path: Path, disk: PrivateDisk) -> None:
    cluster = LocalCluster(tmp_path, 3)
    try:
        cluster.start(1)
        cluster.start(2)
        _start_inside(cluster, disk, 3)
        cluster.wait_for_leader()
        client = cluster.client()
        acked: list[str] = []
        for i in range(30):
            client.put(f"full/k{i}", f"v{i}")
            acked.append(f"full/k{i}")
        node3 = cluster.procs[3]
        cluster.wait_caught_up(3, client.status(timeout=5)["applied_index"])

        fill = disk.run("sh", "-c", f"cat /dev/zero > {disk.path}/filler")
        assert "No space left on device" in fill.stderr, fill.stderr
        value = "x" * 200
        # bounded: the WAL has at most its preallocated space (256 KiB) left to fill
        for i in range(30, 3000):
            if node3.poll() is not None:
                break
            try:
                client.put(f"full/k{i}", value)
                acked.append(f"full/k{i}")
            except ClientError:
                pass  # not acknowledged: nothing is claimed about it
        assert wait_for(lambda: node3.poll() is not None, 30, "node 3 to fail-stop")
        assert node3.returncode == 1
        log = cluster.log_text(3)
        # a write, or the WAL's preallocation (node/storage/wal.py) reaching the end
        assert ("disk fault: write of" in log or "disk fault: preallocation of" in log) \
            and "No space left on device (ENOSPC)" in log, log[-3000:]
        assert f"{disk.path}/wal/" in log and ".wal at byte " in log

        # Nothing acknowledged is lost: every acked write is readable from the majority.
        for key in acked:
            assert client.get(key) is not None, key
        last_index = client.status(timeout=5)["applied_index"]

        assert disk.run("rm", f"{disk.path}/filler").returncode == 0
        _start_inside(cluster, disk, 3)
        cluster.wait_caught_up(3, last_index)
        only3 = cluster.client([cluster.address(3)])
        assert only3.get(acked[-1], serializable=True) is not None
        assert cluster.stop(3) == 0  # graceful: the dir lock is free for the check

        check = disk.run(sys.executable, "-m", "node.storage", "check", str(disk.path),
                         "--cluster-id", cluster.spec.cluster_id, "--node-id", "3")
        assert check.returncode == 0 and "error" not in check.stderr, check.stdout + check.stderr
    finally:
        cluster.close()
