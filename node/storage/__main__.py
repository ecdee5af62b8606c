"""Operator commands for a node's data directory.

    python -m node.storage check  DATA_DIR --cluster-id ID --node-id N
    python -m node.storage repair DATA_DIR --cluster-id ID --node-id N

``check`` recovers the directory read-mostly (it truncates a torn tail, as any start
would) and prints what a node would start from, or the error that would stop it.
``repair`` cuts the WAL at its first bad record: see node/storage/repair.py for why
that is an operator's decision and never automatic.
"""
from __future__ import annotations

import argparse
import sys
from typing import Sequence

from .datadir import DataDir
from .errors import StorageError
from .repair import repair


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m node.storage")
    parser.add_argument("command", choices=["check", "repair"])
    parser.add_argument("data_dir")
    parser.add_argument("--cluster-id", required=True)
    parser.add_argument("--node-id", type=int, required=True)
    args = parser.parse_args(argv)
    try:
        if args.command == "repair":
            print(repair(args.data_dir, args.cluster_id, args.node_id).describe())
            return 0
        storage, state = DataDir.open(args.data_dir, args.cluster_id, args.node_id)
        storage.close()
    except StorageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    snapshot = state.snapshot.meta if state.snapshot else None
    print(f"hard state: {state.hard_state}\nsnapshot: {snapshot}\n"
          f"entries: {state.first_index}..{state.last_index} ({len(state.entries)})")
    if state.torn_tail:
        print(state.torn_tail.describe())
    return 0


if __name__ == "__main__":
    sys.exit(main())
