"""`python -m node.backup`: the offline half of `python -m cluster snapshot`.

    python -m node.backup status FILE [-w simple|table|json]
    python -m node.backup restore FILE --config CONFIG --id N [--data-dir DIR]
    python -m node.backup save FILE --from-data-dir DIR --config OLD_CONFIG --id N

`status` prints etcdctl 3.4's `snapshot status` (HASH, REVISION, TOTAL KEYS,
TOTAL SIZE); `restore` writes member N's data directory of the new cluster that
CONFIG describes (node/backup/restore.py); `save --from-data-dir` writes the
snapshot file of a stopped member's data directory, snapshot and whole WAL
(node/backup/survivor.py). Exit status 0 ok, 1 failed (a bad file, a refused
restore), 2 usage.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from cluster.kv.errors import SnapshotCorrupt as ContentCorrupt
from cluster.output import format_table
from cluster.spec import SpecError, load_spec
from node.backup.backup_file import BackupStatus, load_backup
from node.backup.restore import RestoreRefused, restore_member
from node.backup.survivor import save_survivor, survivor_state
from node.storage import StorageError


def humanize_bytes(size: int) -> str:
    """go-humanize's Bytes, as etcdctl prints TOTAL SIZE: SI units, e.g. "2.1 MB"."""
    if size < 10:
        return f"{size} B"
    exponent = min(int(math.floor(math.log(size, 1000))), 6)
    value = math.floor(size / 1000**exponent * 10 + 0.5) / 10
    unit = ("B", "kB", "MB", "GB", "TB", "PB", "EB")[exponent]
    return f"{value:.0f} {unit}" if value >= 10 else f"{value:.1f} {unit}"


def status_text(status: BackupStatus, write_out: str) -> str:
    """etcdctl's three forms of `snapshot status`."""
    cells = [f"{status.hash:x}", str(status.revision), str(status.total_keys), humanize_bytes(status.total_size)]
    if write_out == "json":
        return json.dumps(status.etcd_json(), separators=(",", ":"))
    if write_out == "table":
        return format_table(["HASH", "REVISION", "TOTAL KEYS", "TOTAL SIZE"], [cells])
    return ", ".join(cells)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m node.backup", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    status = sub.add_parser("status", help="a snapshot file's hash, revision, keys and size")
    status.add_argument("file", type=Path)
    status.add_argument("-w", "--write-out", choices=("simple", "table", "json"), default="simple")
    restore = sub.add_parser("restore", help="one member's data directory of a new cluster")
    restore.add_argument("file", type=Path)
    restore.add_argument("--config", required=True, help="the NEW cluster's config (a new [cluster] id)")
    restore.add_argument("--id", type=int, required=True, help="the member to write")
    restore.add_argument("--data-dir", type=Path, help="where (default: the config's data_dir for the member)")
    save = sub.add_parser("save", help="the snapshot file of a stopped member's data directory")
    save.add_argument("file", type=Path)
    save.add_argument("--from-data-dir", type=Path, required=True)
    save.add_argument("--config", required=True, help="the member's (old) cluster config")
    save.add_argument("--id", type=int, required=True, help="the member's id")
    return parser


def run(args: argparse.Namespace, out: TextIO) -> int:
    if args.command == "status":
        print(status_text(load_backup(args.file).status(), args.write_out), file=out)
    elif args.command == "restore":
        spec = load_spec(args.config)
        ref = restore_member(args.file, spec, args.id, args.data_dir)
        print(f"restored member {args.id} of cluster {spec.cluster_id} in {ref.path.parent.parent} "
              f"(log index {ref.meta.index}, term {ref.meta.term})", file=out)
    else:
        spec = load_spec(args.config)
        if args.file.exists():
            raise RestoreRefused(f"{args.file} exists")
        state = survivor_state(args.from_data_dir, spec.cluster_id, args.id)
        ref = save_survivor(state, spec.cluster_id, args.file, spec.snapshot.chunk_bytes)
        print(f"saved {args.file}: node {args.id}'s state at log index {state.index} (snapshot "
              f"{state.snapshot_index}, then {state.index - state.snapshot_index} WAL entries, "
              f"{state.beyond_commit} past its recorded commit index {state.commit_index}), revision "
              f"{state.machine.revision}, {ref.file_size} bytes", file=out)
    return 0


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    try:
        return run(args, out)
    except (RestoreRefused, StorageError, ContentCorrupt, SpecError, OSError) as error:
        print(f"Error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
