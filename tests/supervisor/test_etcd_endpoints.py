"""Every supervised member has an etcd gRPC, an HTTP gateway and a metrics address: chosen at
`up`, recorded in the state file, shown by `status` (table, --json "endpoints") and
listed by `status --etcd-endpoints` for `etcdctl --endpoints=$(...)`."""
from __future__ import annotations

import json
import re

import pytest

from cluster.spec import load_spec
from tests.supervisor.harness import Session

HOST_PORT = re.compile(r"^127\.0\.0\.1:\d+$")


@pytest.mark.timeout(180)
def test_up_gives_every_member_grpc_and_gateway_endpoints(session: Session) -> None:
    up = session.supervisor("up", "3", "--detach")
    assert up.returncode == 0, up.stdout + up.stderr
    assert "etcd endpoints: 127.0.0.1:" in up.stdout and up.stdout.count(" grpc http://127.0.0.1:") == 3

    state = session.state()
    assert state is not None
    spec = load_spec(session.layout.config)
    for record in state.nodes:
        member = spec.member(record.id)
        assert (record.grpc, record.gateway) == (member.grpc, member.gateway)
        assert record.grpc.startswith("http://127.0.0.1:") and record.gateway.startswith("http://127.0.0.1:")
        assert record.metrics == member.metrics and member.metrics.startswith("http://127.0.0.1:")
    ports = [p for m in spec.members for p in (m.peer, m.client, m.grpc, m.gateway, m.metrics)]
    assert len({p.rsplit(":", 1)[1] for p in ports}) == 15, "every face has its own port"

    status = session.supervisor("status", "--json")
    assert status.returncode == 0, status.stderr
    nodes = {n["id"]: n for n in json.loads(status.stdout)["nodes"]}
    for node_id, node in nodes.items():
        member = spec.member(node_id)
        assert node["endpoints"] == {"client": member.client, "peer": member.peer, "grpc": member.grpc,
                                     "gateway": member.gateway, "metrics": member.metrics}

    etcd = session.supervisor("status", "--etcd-endpoints")
    assert etcd.returncode == 0, etcd.stderr
    listed = etcd.stdout.strip().split(",")
    assert listed == [m.grpc.removeprefix("http://") for m in spec.members]
    assert all(HOST_PORT.match(e) for e in listed)

    table = session.supervisor("status")
    assert "GRPC" in table.stdout and "GATEWAY" in table.stdout
    for member in spec.members:
        assert member.grpc.removeprefix("http://") in table.stdout
        assert member.gateway.removeprefix("http://") in table.stdout

    down = session.supervisor("down")
    assert down.returncode == 0, down.stderr
