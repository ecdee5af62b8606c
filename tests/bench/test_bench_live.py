"""One tiny real run: `python -m cluster.bench` with no flags finds the one-node
cluster the supervisor started in its working directory, does exactly the ops it
was asked for, and reports the cluster's fsync setting from its config. Nothing
here asserts on speed."""
from __future__ import annotations

import json

from cluster.bench.report import SUMMARY_KEYS
from tests.supervisor.harness import Session


def test_a_tiny_run_against_a_one_node_cluster(session: Session) -> None:
    up = session.supervisor("up", "1", "--detach", timeout=60)
    assert up.returncode == 0, up.stdout + up.stderr

    put = session.run("cluster.bench", "put", "--ops", "200", "--processes", "2", "--json", timeout=60)
    assert put.returncode == 0, put.stderr
    summary = json.loads(put.stdout)
    assert tuple(summary) == SUMMARY_KEYS
    assert summary["ops"] == {"total": 200, "ok": 200, "failed": 0} and summary["errors"] == {}
    assert summary["cluster"]["fsync"] == "always" and summary["cluster"]["leader"]
    assert summary["options"]["processes"] == 2 and summary["kinds"] == {"put": 200}

    get = session.run("cluster.bench", "get", "--serializable", "--ops", "50", "--keys", "20",
                      "--in-flight", "2", "--quiet", timeout=60)
    assert get.returncode == 0, get.stderr
    assert "get (serializable)" in get.stdout and "50 ok, 0 failed" in get.stdout
    assert "fsync always" in get.stdout and "p99.9" in get.stdout

    piped = session.run("cluster.bench", "put", "--pipeline", "--ops", "100", "--in-flight", "4", "--json",
                        "--quiet", timeout=60)
    assert piped.returncode == 0, piped.stderr
    assert json.loads(piped.stdout)["ops"] == {"total": 100, "ok": 100, "failed": 0}

    down = session.supervisor("down", "--purge", timeout=60)
    assert down.returncode == 0, down.stderr
    assert not session.alive()
