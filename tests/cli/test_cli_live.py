"""Every CLI command against a real one-node cluster started by the supervisor,
as subprocesses with no flags (the CLI finds the cluster from the state file).
One cluster for the module: the tests use disjoint keys."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from cluster.discovery import connect
from tests.supervisor.harness import Session, clean_env


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Session]:
    session = Session(tmp_path_factory.mktemp("live"))
    try:
        up = session.supervisor("up", "1", "--detach")
        assert up.returncode == 0, up.stdout + up.stderr
        yield session
    finally:
        session.supervisor("down", "--purge")
        session.close()


@pytest.mark.timeout(120)
def test_every_command_on_a_live_cluster(live: Session) -> None:
    cli = live.cli
    for key, value in (("app/a", "1"), ("app/b", "2"), ("app/c", "3"), ("other", "x")):
        assert cli("put", key, value).returncode == 0
    assert cli("get", "app/", "--prefix", "--keys-only").stdout == "app/a\napp/b\napp/c\n"
    assert cli("get", "app/", "--prefix", "--limit", "2", "--print-value-only").stdout == "1\n2\n"
    assert cli("get", "app/", "--prefix", "--count-only").stdout == "3\n"
    assert cli("get", "app/b", "--from-key", "--keys-only").stdout == "app/b\napp/c\nother\n"
    assert cli("get", "app/a", "--serializable", "--print-value-only").stdout == "1\n"
    assert cli("put", "app/a", "--prev-kv", stdin="from stdin").stdout == "OK\napp/a\n1\n"
    doc = json.loads(cli("get", "app/a", "-w", "json").stdout)
    assert doc["kvs"][0]["value"] == "from stdin" and doc["kvs"][0]["version"] == 2
    revision = doc["header"]["revision"]

    txn = 'value("other") = "x"\n\nput other y\nget other\n\nput other z\n'
    out = cli("txn", stdin=txn)
    assert out.stdout.splitlines() == ["SUCCESS", "", "OK", "", "other", "y"], out.stderr
    assert cli("txn", "-w", "json", stdin=txn).returncode == 0  # compare fails now: the failure branch
    assert cli("get", "other", "--print-value-only").stdout == "z\n"

    assert cli("get", "app/a", "--rev", "2", "--print-value-only").stdout == "1\n"
    assert cli("compact", str(revision)).stdout == f"compacted revision {revision}\n"
    compacted = cli("get", "app/a", "--rev", "2")
    assert compacted.returncode == 1 and "compacted" in compacted.stderr
    future = cli("get", "app/a", "--rev", "999999")
    assert future.returncode == 1 and "invalid request" in future.stderr

    assert cli("del", "app/", "--prefix").stdout == "3\n"
    assert cli("get", "app/", "--prefix", "--count-only").stdout == "0\n"

    assert cli("put", "other", "--ignore-value", "--prev-kv").stdout == "OK\nother\nz\n"
    assert cli("get", "other", "--print-value-only").stdout == "z\n"
    missing = cli("put", "nope", "v", "--ignore-lease")
    assert missing.returncode == 1 and "key not found" in missing.stderr

    big = cli("put", "big", stdin="x" * (1024 * 1024 + 1))
    assert big.returncode == 1 and "max_value_bytes" in big.stderr

    health = cli("endpoint", "health")
    assert health.returncode == 0 and "is healthy" in health.stdout
    status = json.loads(cli("endpoint", "status", "-w", "json").stdout)
    assert status[0]["status"]["role"] == "leader"
    members = json.loads(cli("member", "list", "-w", "json").stdout)["members"]
    assert [(m["id"], m["is_leader"]) for m in members] == [(1, True)]
    assert members[0]["peer"].startswith("tcp://127.0.0.1:")
    assert "| ID " in cli("member", "list", "-w", "table").stdout


@pytest.mark.timeout(120)
def test_the_client_library_finds_the_cluster_from_the_state_file(live: Session) -> None:
    with connect(cwd=live.cwd, timeout=20) as client:
        client.put("lib", "works")
        kv = client.get("lib")
        assert kv is not None and kv.value == b"works"
    assert live.cli("get", "lib", "--print-value-only").stdout == "works\n"


def raw_cli(live: Session, *args: bytes, stdin: bytes = b"",
            stdout: int = subprocess.PIPE) -> subprocess.CompletedProcess[bytes]:
    """The CLI with byte arguments and byte input, as a shell runs it."""
    return subprocess.run([sys.executable.encode(), b"-m", b"cluster", *args], cwd=live.cwd, env=clean_env(),
                          input=stdin, stdout=stdout, stderr=subprocess.PIPE, timeout=60)


@pytest.mark.timeout(120)
def test_the_rough_edges_on_a_live_cluster(live: Session) -> None:
    """issue 16: `printf '\\xff\\xfe' | python -m cluster put $'\\xff'`, `get $'\\xff'`,
    lease ids in hex in a txn and the table, `endpoint status -w json | head`,
    `endpoint health -w table`."""
    assert raw_cli(live, b"put", b"\xff", stdin=b"\xff\xfe").returncode == 0
    got = raw_cli(live, b"get", b"\xff")
    assert (got.returncode, got.stdout, got.stderr) == (0, b"\xff\n\xff\xfe\n", b"")

    granted = live.cli("lease", "grant", "60")
    lease = granted.stdout.split()[1]
    assert granted.stdout == f"lease {lease} granted with TTL(60s)\n"
    txn = f'lease("held") = "0"\n\nput held v --lease={lease}\n\n'
    assert live.cli("txn", stdin=txn).stdout.splitlines()[0] == "SUCCESS"
    compare = f'lease("held") = "{lease}"\n\nget held --sort-by=MODIFY --order=DESCEND\n\n'
    assert live.cli("txn", stdin=compare).stdout.splitlines() == ["SUCCESS", "", "held", "v"]
    assert f"| {lease} |" in live.cli("get", "held", "-w", "table").stdout

    read, write = os.pipe()
    os.close(read)  # `| head` that has exited
    try:
        piped = raw_cli(live, b"endpoint", b"status", b"-w", b"json", stdout=write)
    finally:
        os.close(write)
    assert piped.returncode == 141 and b"Traceback" not in piped.stderr, piped.stderr
    table = live.cli("endpoint", "health", "-w", "table").stdout.splitlines()
    assert [c.strip() for c in table[1].strip("|").split("|")] == ["ENDPOINT", "HEALTH", "TOOK", "ERROR"]
    assert [c.strip() for c in table[3].strip("|").split("|")][1] == "true"
