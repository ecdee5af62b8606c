"""Where a restarted member's CPU goes, by phase: `python -m node.restart_bench ROOT`.

ROOT is a stopped cluster's directory (cluster.toml and node-N/, e.g. what
`python -m cluster.bench scale --root DIR --no-restart` leaves under DIR/jangada).
Each run copies the member's data dir to a scratch dir and measures, in this
process and with the collector off (as recovery runs): the WAL scan, decode and
replay (`DataDir.open`), the snapshot read, verify and restore, and the apply of
the replayed entries up to the recovered commit index. It prints the minimum CPU
of each phase over the runs: on a shared machine the minimum is the figure that
means something (docs/performance.md, "Restart").
"""
from __future__ import annotations

import argparse
import gc
import shutil
import tempfile
import time
from pathlib import Path

from cluster.spec import load_spec
from node.address_book import Membership
from node.raft import ConfState, EntryKind
from node.replica import restore_state
from node.statemachine import StateMachine
from node.storage import DataDir, StorageOptions


def measure(root: Path, member: int) -> tuple[dict[str, float], dict[str, int]]:
    """One start of `member` from a scratch copy: CPU seconds per phase, and sizes."""
    spec = load_spec(root / "cluster.toml")
    source = spec.data_dir_for(member)
    source = source if source.is_absolute() else root / source
    with tempfile.TemporaryDirectory(prefix="jangada-restart-") as scratch:
        data = Path(scratch) / "data"
        shutil.copytree(source, data)
        cpu: dict[str, float] = {}
        started = time.process_time()
        storage, recovered = DataDir.open(data, spec.cluster_id, member, StorageOptions())
        try:
            cpu["wal"] = time.process_time() - started
            started = time.process_time()
            ref = recovered.snapshot_ref
            sm = restore_state(ref, spec.snapshot.chunk_bytes, Membership(member, {}, ConfState())) \
                if ref else StateMachine()
            cpu["snapshot"] = time.process_time() - started
            todo = [e for e in recovered.entries if sm.applied_index < e.index <= recovered.hard_state.commit]
            started = time.process_time()
            for entry in todo:
                if entry.kind is EntryKind.NORMAL:
                    sm.apply(entry.index, entry.data)
                else:
                    sm.apply_empty(entry.index)
            cpu["apply"] = time.process_time() - started
        finally:
            storage.close()
        sizes = {"snapshot_index": ref.meta.index if ref else 0, "wal_entries": len(recovered.entries),
                 "replayed": len(todo)}
    return cpu, sizes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m node.restart_bench", description=__doc__.split("\n")[0])
    parser.add_argument("root", type=Path, help="a stopped cluster's directory (cluster.toml, node-N/)")
    parser.add_argument("--member", type=int, default=1)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    best: dict[str, float] = {}
    sizes: dict[str, int] = {}
    gc.disable()  # as node/collector_policy.py runs recovery
    try:
        for _ in range(max(1, args.runs)):
            cpu, sizes = measure(args.root, args.member)
            for phase, seconds in cpu.items():
                best[phase] = min(best.get(phase, seconds), seconds)
            gc.collect()
    finally:
        gc.enable()
    print(f"member {args.member}: snapshot index {sizes['snapshot_index']}, {sizes['wal_entries']} WAL entries "
          f"after it, {sizes['replayed']} applied; minimum CPU of {args.runs} runs:")
    for phase, label in (("wal", "WAL scan + decode + replay"), ("snapshot", "snapshot read + verify + restore"),
                         ("apply", "apply of the replayed entries")):
        print(f"  {label:34s} {best[phase]:6.3f} s")
    print(f"  {'total':34s} {sum(best.values()):6.3f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
