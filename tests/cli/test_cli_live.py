"""Every CLI command against a real one-node cluster started by the supervisor,
as subprocesses with no flags (the CLI finds the cluster from the state file)."""
from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from cluster.discovery import connect
from tests.supervisor.harness import Session


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Session]:
    session = Session(tmp_path)
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
    assert future.returncode == 2 and "invalid request" in future.stderr

    assert cli("del", "app/", "--prefix").stdout == "3\n"
    assert cli("get", "app/", "--prefix", "--count-only").stdout == "0\n"

    assert cli("put", "other", "--ignore-value", "--prev-kv").stdout == "OK\nother\nz\n"
    assert cli("get", "other", "--print-value-only").stdout == "z\n"
    missing = cli("put", "nope", "v", "--ignore-lease")
    assert missing.returncode == 2 and "key not found" in missing.stderr

    big = cli("put", "big", stdin="x" * (1024 * 1024 + 1))
    assert big.returncode == 2 and "max_value_bytes" in big.stderr

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
