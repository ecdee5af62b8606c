"""`endpoint hashkv` (cluster/cli_hashkv.py): etcdctl 3.4's outputs, `--cluster`
from the member list, and a member that does not answer named on stderr."""
from __future__ import annotations

import argparse
import io
import json
from typing import Any

import pytest

from cluster.cli_hashkv import cmd_hashkv
from cluster.client import ClientTimeout


class FakeClient:
    """Members 1 and 2 answer; tcp://127.0.0.1:3 is down."""

    def members(self, leader: bool = True) -> dict[str, Any]:
        return {"members": [{"id": i, "client": f"tcp://127.0.0.1:{i}"} for i in (1, 2, 3)]}

    def hash_kv(self, revision: int = 0, endpoint: str | None = None, timeout: float | None = None) -> dict[str, Any]:
        assert endpoint is not None
        member = int(endpoint.rsplit(":", 1)[1])
        if member == 3:
            raise ClientTimeout(f"no answer from {endpoint} to hashkv")
        return {"hash": 1000 + revision, "revision": 50, "compact_revision": 4, "member_id": member}


def run(*flags: str, fmt: str = "simple", endpoints: tuple[str, ...] = ("tcp://127.0.0.1:1",)) -> tuple[int, str]:
    args = argparse.Namespace(rev=0, cluster=False, write_out=fmt, attempt_timeout=1.0)
    if "--cluster" in flags:
        args.cluster = True
    if "--rev" in flags:
        args.rev = int(flags[flags.index("--rev") + 1])
    out = io.StringIO()
    return cmd_hashkv(FakeClient(), args, list(endpoints), out), out.getvalue()  # type: ignore[arg-type]


def test_simple_lines_are_endpoint_and_hash_as_etcdctl() -> None:
    assert run("--rev", "7") == (0, "127.0.0.1:1, 1007\n")


def test_the_table_has_etcdctls_columns() -> None:
    status, out = run(fmt="table", endpoints=("tcp://127.0.0.1:1", "tcp://127.0.0.1:2"))
    assert status == 0 and out.splitlines()[1] == "| ENDPOINT    | HASH |"
    assert "| 127.0.0.1:2 | 1000 |" in out


def test_json_is_etcdctls_shape() -> None:
    status, out = run(fmt="json")
    assert status == 0 and json.loads(out) == [{"Endpoint": "127.0.0.1:1", "HashKV": {
        "header": {"member_id": 1, "revision": 50}, "hash": 1000, "compact_revision": 4}}]


def test_cluster_asks_every_member_and_names_the_silent_one_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    status, out = run("--cluster")
    assert status == 1 and out == "127.0.0.1:1, 1000\n127.0.0.1:2, 1000\n"
    assert capsys.readouterr().err.startswith("Failed to get the hash of endpoint 127.0.0.1:3 (no answer")
