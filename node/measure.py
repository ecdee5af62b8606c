"""`python -m node.measure [--tries 20] [--nodes 3]`: failover figures on real processes.

Per try, in a fresh temporary directory with free loopback ports:

* start-to-leader: from spawning every `python -m node` process (interpreter
  start-up included) until one node's status says it is leader;
* kill-to-write: from SIGKILL of that leader until a client that knows every
  node's address gets a write acknowledged (by the new leader: a write is
  acknowledged only once committed).

Prints one line per try, then the median and maximum of each.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from node.localcluster import LocalCluster, wait_for


def one_try(root: Path, nodes: int) -> tuple[float, float]:
    with LocalCluster(root, size=nodes) as cluster:
        started = time.monotonic()
        cluster.start_all()
        leader = wait_for(cluster.leader, 60, "a leader", interval=0.005)
        elected = time.monotonic() - started
        client = cluster.client(timeout=60, attempt_timeout=0.2)
        client.put("warm-up", "1")  # opens the session: the timed write is a plain write
        killed = time.monotonic()
        cluster.kill(leader)
        client.put("after-kill", "1")
        return elected, time.monotonic() - killed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m node.measure", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tries", type=int, default=20)
    parser.add_argument("--nodes", type=int, default=3)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    elections: list[float] = []
    failovers: list[float] = []
    for i in range(args.tries):
        with tempfile.TemporaryDirectory(prefix="jangada-measure-") as tmp:
            elected, failover = one_try(Path(tmp), args.nodes)
        elections.append(elected)
        failovers.append(failover)
        print(f"try {i + 1:2d}: start->leader {elected * 1000:7.1f} ms   kill->write {failover * 1000:7.1f} ms",
              flush=True)
    for name, values in (("start -> first leader", elections), ("leader kill -9 -> first write", failovers)):
        print(f"{name:30s} median {statistics.median(values) * 1000:7.1f} ms   "
              f"max {max(values) * 1000:7.1f} ms   (n={len(values)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
