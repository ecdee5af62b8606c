"""Users, roles and authentication end to end on one real 3-node cluster: the CLI
(`python -m cluster`, as subprocesses) and the native Client, with etcdctl's
commands and outputs. Short token TTL: the Client must re-authenticate unseen."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cluster.client import Client
from cluster.kv.errors import PermissionDenied
from node.localcluster import LocalCluster

pytestmark = pytest.mark.timeout(180)

TOKEN_TTL_S = 2
SECTIONS = {
    "timing": {"tick_ms": 10, "election_ticks": 30, "heartbeat_ticks": 3, "request_timeout_ms": 5000},
    "auth": {"token_ttl_s": TOKEN_TTL_S, "password_iterations": 1000},
}
ROOT = "root:root-pw"
DENIED = "Error: etcdserver: permission denied\n"


class Cli:
    """Runs `python -m cluster ARGS` against the cluster (no terminal: a password
    prompt reads stdin, as getpass does without a tty)."""

    def __init__(self, cluster: LocalCluster) -> None:
        self.env = {**os.environ, "JANGADA_ENDPOINTS": ",".join(cluster.address(i) for i in cluster.ids)}

    def __call__(self, *args: str, stdin: str = "", user: str = "") -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "cluster", *(("--user", user) if user else ()), *args]
        return subprocess.run(argv, input=stdin, capture_output=True, text=True, env=self.env, timeout=60,
                              start_new_session=True)

    def ok(self, *args: str, user: str = "", stdin: str = "") -> str:
        done = self(*args, user=user, stdin=stdin)
        assert done.returncode == 0, f"{args}: {done.stderr}"
        return done.stdout


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    root: Path = tmp_path_factory.mktemp("auth-live")
    local = LocalCluster(root, size=3, **SECTIONS)  # type: ignore[arg-type]
    try:
        local.start_all()
        local.wait_for_leader()
        yield local
    finally:
        local.close()


@pytest.fixture(scope="module")
def cli(cluster: LocalCluster) -> Cli:
    return Cli(cluster)


def enable_auth_and_a_read_only_role(cli: Cli) -> None:
    assert cli.ok("user", "add", ROOT) == "User root created\n"
    assert cli.ok("auth", "enable") == "Authentication Enabled\n"  # adds the root role and grants it
    assert cli.ok("put", "/app/x", "1", user=ROOT) == "OK\n"
    assert cli.ok("put", "/other/x", "2", user=ROOT) == "OK\n"
    assert cli.ok("role", "add", "reader", user=ROOT) == "Role reader created\n"
    assert cli.ok("role", "grant-permission", "reader", "read", "/app/", "--prefix", user=ROOT) == \
        "Role reader updated\n"
    assert cli.ok("role", "get", "reader", user=ROOT) == \
        "Role reader\nKV Read:\n\t[/app/, /app0) (prefix /app/)\nKV Write:\n"
    assert cli.ok("user", "add", "alice", "--interactive=false", user=ROOT, stdin="alice-pw\n") == \
        "User alice created\n"
    assert cli.ok("user", "grant-role", "alice", "reader", user=ROOT) == "Role reader is granted to user alice\n"
    assert cli.ok("user", "get", "alice", user=ROOT) == "User: alice\nRoles: reader\n"
    assert cli.ok("user", "list", user=ROOT) == "alice\nroot\n"
    assert cli.ok("role", "list", user=ROOT) == "reader\nroot\n"
    assert cli.ok("auth", "status", user=ROOT).startswith("Authentication Status: true\nAuthRevision: ")


def the_reader_reads_its_prefix_only(cli: Cli) -> None:
    assert cli.ok("get", "/app/x", "--print-value-only", user="alice:alice-pw") == "1\n"
    write = cli("put", "/app/x", "2", user="alice:alice-pw")
    assert (write.returncode, write.stderr) == (1, DENIED)
    other = cli("get", "/other/x", user="alice:alice-pw")
    assert (other.returncode, other.stderr) == (1, DENIED)
    manage = cli("user", "list", user="alice:alice-pw")
    assert (manage.returncode, manage.stderr) == (1, DENIED)


def passwords_prompted_and_wrong(cli: Cli) -> None:
    assert cli.ok("get", "/app/x", "--print-value-only", user="alice", stdin="alice-pw\n") == "1\n"
    wrong = cli("get", "/app/x", user="alice:nope")
    assert wrong.returncode == 1
    assert wrong.stderr == "Error: etcdserver: authentication failed, invalid user ID or password\n"
    assert "nope" not in wrong.stderr + wrong.stdout
    anonymous = cli("get", "/app/x")
    assert anonymous.returncode == 1 and anonymous.stderr.startswith("Error: etcdserver: ")


def the_client_renews_an_expired_token_unseen(cluster: LocalCluster) -> None:
    with Client([cluster.address(i) for i in cluster.ids], user="alice", password="alice-pw", timeout=20) as client:
        assert client.get("/app/x").value == b"1"  # type: ignore[union-attr]
        first = client.token
        time.sleep(TOKEN_TTL_S + 1.5)  # the token expires on every member
        assert client.get("/app/x").value == b"1"  # type: ignore[union-attr]
        assert client.token != first
        with pytest.raises(PermissionDenied):
            client.put("/app/x", "no")
        with client.watch("/app/", prefix=True) as watch:
            watch.get(timeout=0.5)  # created: READ on the range is granted
        with pytest.raises(PermissionDenied):
            with client.watch("/other/", prefix=True) as watch:
                watch.get(timeout=5)


def auth_disable_restores_access(cli: Cli) -> None:
    assert cli.ok("auth", "disable", user=ROOT) == "Authentication Disabled\n"
    assert cli.ok("put", "/other/x", "3") == "OK\n"
    assert cli.ok("get", "/other/x", "--print-value-only") == "3\n"
    assert cli.ok("auth", "status").startswith("Authentication Status: false\n")
    # as etcdctl 3.4: --user on a cluster without auth goes on without a token
    assert cli.ok("get", "/other/x", "--print-value-only", user=ROOT) == "3\n"


def test_users_roles_and_authentication(cluster: LocalCluster, cli: Cli) -> None:
    """One story, in order (each step builds on the auth state the last one left)."""
    enable_auth_and_a_read_only_role(cli)
    the_reader_reads_its_prefix_only(cli)
    passwords_prompted_and_wrong(cli)
    the_client_renews_an_expired_token_unseen(cluster)
    auth_disable_restores_access(cli)
