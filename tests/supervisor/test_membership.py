"""`python -m supervisor add` / `remove` as an operator runs them: real subprocesses
in a tmp working directory with no flags; every process ended by pid."""
from __future__ import annotations

import json
from typing import Any

import pytest

from tests.supervisor.harness import Session


def status_nodes(session: Session) -> dict[int, dict[str, Any]]:
    out = session.supervisor("status", "--json")
    assert out.returncode == 0, out.stderr
    return {n["id"]: n for n in json.loads(out.stdout)["nodes"]}


def members(session: Session) -> dict[str, Any]:
    out = session.cli("member", "list", "-w", "json")
    assert out.returncode == 0, out.stderr
    doc: dict[str, Any] = json.loads(out.stdout)
    return doc


@pytest.mark.timeout(240)
def test_supervisor_add_grows_the_cluster_and_remove_takes_out_the_leader(session: Session) -> None:
    up = session.supervisor("up", "3", "--detach")
    assert up.returncode == 0, up.stdout + up.stderr
    assert session.cli("put", "before", "1").returncode == 0

    added = session.supervisor("add")
    assert added.returncode == 0, added.stdout + added.stderr
    for step in ("node 4: started as pid", "node 4: added as a learner", "node 4: caught up",
                 "node 4: promoted to voter"):
        assert step in added.stdout, added.stdout
    nodes = status_nodes(session)
    assert sorted(nodes) == [1, 2, 3, 4]
    assert nodes[4]["pid"] and nodes[4]["client"].startswith("tcp://127.0.0.1:")
    # The new member has etcd faces too, chosen by `add` and replicated in its ADD_LEARNER.
    faces = {k: nodes[4]["endpoints"][k] for k in ("grpc", "gateway")}
    assert all(url.startswith("http://127.0.0.1:") for url in faces.values()), nodes[4]
    assert f"grpc {faces['grpc']}, gateway {faces['gateway']}" in added.stdout
    etcd = session.supervisor("status", "--etcd-endpoints").stdout.strip().split(",")
    assert len(etcd) == 4 and etcd[3] == faces["grpc"].removeprefix("http://")
    listed = members(session)
    assert sorted(m["id"] for m in listed["members"] if m["role"] == "voter") == [1, 2, 3, 4]
    rows = {m["id"]: m for m in listed["members"]}
    assert {k: rows[4][k] for k in faces} == faces
    assert all(rows[i]["grpc"] == nodes[i]["endpoints"]["grpc"] for i in (1, 2, 3))
    table = session.cli("member", "list", "-w", "table").stdout
    assert "| GRPC " in table and faces["grpc"] in table
    assert session.cli("get", "before", "--print-value-only", "--endpoints",
                       nodes[4]["client"], "--serializable").stdout == "1\n"

    leader = listed["leader_id"]
    removed = session.supervisor("remove", str(leader))
    assert removed.returncode == 0, removed.stdout + removed.stderr
    assert f"node {leader}: stopped and forgotten" in removed.stdout
    assert sorted(status_nodes(session)) == sorted({1, 2, 3, 4} - {leader})
    assert session.cli("put", "after", "2").returncode == 0  # a new leader, among the rest
    after = members(session)
    assert after["leader_id"] not in (0, leader)
    assert sorted(m["id"] for m in after["members"] if m["role"] == "voter") == sorted({1, 2, 3, 4} - {leader})

    # Replace the new leader in one joint step (issue 19): a fresh node 5 joins as a
    # learner, then one change promotes it and removes the leader; the old leader is
    # stopped and forgotten, and the cluster keeps three voters throughout.
    survivors = sorted({1, 2, 3, 4} - {leader})
    second = after["leader_id"]
    replaced = session.supervisor("replace", str(second))
    assert replaced.returncode == 0, replaced.stdout + replaced.stderr
    for step in ("node 5: started as pid", "node 5: added as a learner", f"node {second} replaced by node 5",
                 f"node {second}: stopped and forgotten"):
        assert step in replaced.stdout, replaced.stdout
    survivors = sorted(set(survivors) - {second} | {5})
    assert sorted(status_nodes(session)) == survivors
    assert session.cli("put", "replaced", "3").returncode == 0
    listed = members(session)
    assert sorted(m["id"] for m in listed["members"] if m["role"] == "voter") == survivors
    assert listed["leader_id"] in survivors
    assert session.supervisor("replace", str(second)).returncode == 2  # gone already

    # A second remove of the same id, an unknown id, and --help.
    again = session.supervisor("remove", str(leader))
    assert again.returncode == 2 and "no member" in again.stderr
    assert session.supervisor("add", "--help").returncode == 0
    assert session.supervisor("remove", "--help").returncode == 0

    # The roster survives a full restart: the added member comes back, the removed one does not.
    assert session.supervisor("down").returncode == 0
    up = session.supervisor("up", "--detach")
    assert up.returncode == 0, up.stdout + up.stderr
    assert sorted(status_nodes(session)) == survivors
    assert session.cli("get", "after", "--print-value-only").stdout == "2\n"
    assert session.cli("get", "replaced", "--print-value-only").stdout == "3\n"
    assert session.supervisor("down", "--purge").returncode == 0
