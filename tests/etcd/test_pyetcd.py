"""A Python etcd client from PyPI, unchanged, against jangada's etcd face:
`pyetcd` (etcd-sdk-python, a maintained fork of python-etcd3).

pyetcd cannot be imported in this process: its generated modules and ours
(cluster.etcdpb) register the same proto names in protobuf's default pool
("duplicate symbol 'mvccpb.KeyValue'" whichever comes first). So each part of a
client session runs in a subprocess (tests/etcd/pyetcd_session.py) that prints
what the client returned as JSON. The expected answers are what the same script
prints against etcd 3.4 (checked against a real etcd when its binary is here),
so jangada must answer pyetcd exactly as etcd does.
"""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from node.localcluster import LocalCluster
from tests.etcd.conftest import TIMING
from tests.etcd.reference_etcd import reference_etcd

pytestmark = [
    pytest.mark.timeout(180),
    pytest.mark.skipif(importlib.util.find_spec("pyetcd") is None,
                       reason="pyetcd is not installed (etcd-sdk-python, in the test extra)"),
]

SESSION = Path(__file__).with_name("pyetcd_session.py")
SIZE = 3

#: each part's answer from etcd 3.4 (members: `count` is the cluster's size)
EXPECTED: dict[str, dict[str, Any]] = {
    "kv": {"prev_kv": "1", "get": ["2", {"has_lease": False, "key": "p/a", "mod_minus_create": 1, "version": 2}],
           "get_missing": [None, None], "get_prefix": [["p/a", "32"], ["p/b", "0062696e"], ["p/c", "33"]],
           "get_prefix_desc": ["p/c", "p/b", "p/a"], "get_range": ["p/a", "p/b"], "delete": True,
           "delete_missing": False, "delete_prev": ["p/b"], "delete_prefix": 1, "after": []},
    "txn": {"first": [True, [["v2", 2]]], "second": [False, [["v2", 2]], 0], "third": True,
            "nested": [True, False, ["response_range"]], "replace": [True, False], "put_if_not_exists": [False, True],
            "final": [["p/fresh", "x"], ["p/k", "v4"], ["p/new", "n"]]},
    "watch": {"callback_done": True, "callback": [["PutEvent", "p/w", "1"], ["DeleteEvent", "p/w", ""]],
              "iterator": ["PutEvent", "p/it", "x"]},
    "lease": {"granted_ttl": 30, "ttl_in_range": True, "keys": ["p/l"], "refresh_ttl": 30, "remaining_in_range": True,
              "held": ["v", {"has_lease": True, "key": "p/l", "mod_minus_create": 0, "version": 1}],
              "after_revoke": [None, None]},
    "lock": {"first": True, "second_while_held": False, "held": True, "after_release": False,
             "second_after_release": True},
    "members": {"count": None, "named": True, "peer_urls": True, "client_urls": True},
    "status": {"version_3_4": True, "leader_known": True, "raft_term_positive": True, "raft_index_positive": True},
}


def session(endpoint: str, part: str, prefix: str) -> dict[str, Any]:
    done = subprocess.run([sys.executable, str(SESSION), endpoint, part, prefix], capture_output=True, text=True,
                          timeout=90)
    assert done.returncode == 0, done.stderr[-3000:]
    answer: dict[str, Any] = json.loads(done.stdout)
    return answer


def expected(part: str, size: int, prefix: str) -> dict[str, Any]:
    text = json.dumps(EXPECTED[part]).replace('"p/', f'"{prefix}')
    answer: dict[str, Any] = json.loads(text)
    if part == "members":
        answer["count"] = size
    return answer


@pytest.fixture(scope="module")
def jangada(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    with LocalCluster(tmp_path_factory.mktemp("pyetcd"), size=SIZE, etcd=True, timing=TIMING) as cluster:
        cluster.start_all()
        cluster.wait_for_leader()
        yield cluster


def _endpoint(cluster: LocalCluster, role: str) -> str:
    leader = cluster.wait_for_leader()
    if role == "leader":
        return cluster.grpc_endpoint(leader)
    return cluster.grpc_endpoint(next(i for i in cluster.ids if i != leader))


def _params() -> list[Any]:
    out = []
    for part in EXPECTED:
        for role in ("leader", "follower"):
            out.append(pytest.param(part, role, id=f"{part}-{role}"))
    return out


@pytest.mark.parametrize(("part", "role"), _params())
def test_pyetcd_against_jangada(jangada: LocalCluster, part: str, role: str) -> None:
    prefix = f"{role}/{part}/"
    assert session(_endpoint(jangada, role), part, prefix) == expected(part, SIZE, prefix)


@pytest.mark.parametrize("part", list(EXPECTED))
def test_the_expected_answers_are_etcds(tmp_path: Path, part: str) -> None:
    with reference_etcd(tmp_path) as etcd:
        assert session(etcd.endpoint, part, "p/") == expected(part, 1, "p/")
