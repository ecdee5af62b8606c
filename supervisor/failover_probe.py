"""`python -m supervisor.failover_probe [--data-dir DIR] [--hold S]`: how a --netns
cluster rides out its leader's link going down (a measurement, not a test).

Writes once, takes the leader's link down (supervisor/partitions.py), times the
next acknowledged write (client failover + election), keeps the link down for
`--hold` seconds while writing, brings it back and times until the old leader
follows the new one with the same applied index as everyone (its transport
reconnected and it caught up). Prints both figures; exit 1 if either did not
happen within 60 s. Timing figures: repeat them on a quiet machine.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from cluster.client import Client, ClientError
from cluster.discovery import Layout, default_layout, read_state
from supervisor import netns
from supervisor.partitions import NetworkFaults

LIMIT = 60.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m supervisor.failover_probe", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path)
    parser.add_argument("--hold", type=float, default=20.0, metavar="S", help="seconds the link stays down")
    args = parser.parse_args(argv)
    layout = Layout(args.data_dir.absolute()) if args.data_dir else default_layout()
    plan, state = netns.load(layout), read_state(layout)
    if plan is None or state is None:
        print("no running --netns cluster there (python -m supervisor up 3 --netns --detach)", file=sys.stderr)
        return 2
    with Client([n.client for n in state.nodes], timeout=LIMIT, attempt_timeout=2.0) as client:
        def statuses() -> dict[int, dict[str, Any]]:
            out = {}
            for node in state.nodes:
                try:
                    out[node.id] = client.status(node.client, timeout=0.3)
                except ClientError:
                    pass
            return out
        client.put(b"failover-probe", b"0")
        old = next(i for i, s in statuses().items() if s["role"] == "leader")
        faults = NetworkFaults(plan)
        faults.cut(old)
        try:
            cut_at = time.monotonic()
            client.put(b"failover-probe", b"1")
            print(f"leader {old}'s link down: the next write was acknowledged after {time.monotonic() - cut_at:.2f} s")
            while time.monotonic() - cut_at < args.hold:
                client.put(b"failover-probe", b"2")
                time.sleep(0.1)
        finally:
            faults.heal_all()
        healed_at = time.monotonic()
        while time.monotonic() - healed_at < LIMIT:
            now = statuses()
            if (len(now) == len(state.nodes) and now[old]["role"] == "follower"
                    and len({s["applied_index"] for s in now.values()}) == 1):
                print(f"link back: node {old} followed node {now[old]['leader_id']} with the same applied index "
                      f"after {time.monotonic() - healed_at:.2f} s")
                return 0
            time.sleep(0.05)
    print(f"node {old} had not caught up {LIMIT:.0f} s after the link returned", file=sys.stderr)
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
