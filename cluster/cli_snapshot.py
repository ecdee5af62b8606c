"""`python -m cluster snapshot save|status|restore`: etcdctl's backup commands.

    python -m cluster snapshot save FILE              # from the first endpoint, over the network
    python -m cluster snapshot save FILE --from-data-dir DIR --config OLD.toml --id N   # offline
    python -m cluster snapshot status FILE [-w simple|table|json]
    python -m cluster snapshot restore FILE --config NEW.toml --id N [--data-dir DIR]

`save` copies ONE member's snapshot file (the first endpoint's, as etcdctl's):
the member writes one covering everything it applied before the call if its
newest does not, and the copy is checked against the file's SHA-256 before it
is renamed into place (FILE.part, fsync, rename, fsync the directory). The
other commands, and `save --from-data-dir` (a stopped member's data directory:
recovery from one survivor), work on files only; they run `python -m
node.backup`, since this package does not import the node's (see that module
and docs/operations.md, "Backup and disaster recovery").
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, TextIO

from cluster.client import Client
from cluster.snapshot_download import SnapshotSaved
from cluster.usage import ExitCode, UsageError

SNAPSHOT_COMMANDS = ("snapshot",)
#: `save`'s deadline when --timeout is not given: a large store takes a while to
#: write and copy (etcdctl's snapshot save has no deadline of its own either).
SAVE_TIMEOUT_S = 600.0


def add_parsers(sub: Any, common: argparse.ArgumentParser, parser_class: type[argparse.ArgumentParser]) -> None:
    snapshot = sub.add_parser("snapshot", parents=[common], help="snapshot save|status|restore: backups")
    actions = snapshot.add_subparsers(dest="action", metavar="ACTION", parser_class=parser_class)
    actions.required = True
    save = actions.add_parser("save", parents=[common],
                              help="save FILE: a snapshot of the whole store, from the first endpoint")
    save.add_argument("file", metavar="FILE")
    save.add_argument("--from-data-dir", metavar="DIR",
                      help="instead: the state in a STOPPED member's data directory (its snapshot and whole WAL)")
    save.add_argument("--config", metavar="FILE", help="--from-data-dir: the member's cluster config")
    save.add_argument("--id", type=int, metavar="N", help="--from-data-dir: the member's id")
    status = actions.add_parser("status", parents=[common], help="status FILE: hash, revision, total keys, size")
    status.add_argument("file", metavar="FILE")
    restore = actions.add_parser("restore", parents=[common],
                                 help="restore FILE: one member's data directory of a NEW cluster")
    restore.add_argument("file", metavar="FILE")
    restore.add_argument("--config", required=True, metavar="FILE",
                         help="the new cluster's config (its [cluster] id must differ from the snapshot's)")
    restore.add_argument("--id", type=int, required=True, metavar="N", help="the member whose directory to write")
    restore.add_argument("--data-dir", metavar="DIR", help="where (default: the config's data_dir for member N)")


def is_offline(args: argparse.Namespace) -> bool:
    """Whether the command reads files only (no endpoints, no client)."""
    return args.action in ("status", "restore") or bool(args.from_data_dir)


def run_offline(args: argparse.Namespace, out: TextIO) -> int:
    """`python -m node.backup` with the same request; its output is ours."""
    if args.action == "status":
        command = ["status", args.file, "-w", args.write_out]
    elif args.action == "restore":
        command = ["restore", args.file, "--config", args.config, "--id", str(args.id)]
        command += ["--data-dir", args.data_dir] if args.data_dir else []
    else:
        if not args.config or args.id is None:
            raise UsageError("snapshot save --from-data-dir needs --config and --id (the member's)")
        command = ["save", args.file, "--from-data-dir", args.from_data_dir, "--config", args.config,
                   "--id", str(args.id)]
    done = subprocess.run([sys.executable, "-m", "node.backup", *command], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, check=False)
    out.write(done.stdout)
    sys.stderr.write(done.stderr)
    # node.backup's 2 is a usage error (etcdctl's code for that is 128; our 2 is a bad connection)
    return ExitCode.BAD_ARGS if done.returncode == 2 else done.returncode


def save_timeout(args: argparse.Namespace) -> float:
    return float(args.timeout) if args.timeout_given else SAVE_TIMEOUT_S


def run_save(client: Client, args: argparse.Namespace, out: TextIO) -> int:
    """etcdctl's snapshot save: FILE.part, checked, fsynced, renamed."""
    final = Path(args.file)
    part = final.with_name(final.name + ".part")
    try:
        with part.open("w+b") as sink:
            saved = client.snapshot(sink)
            sink.flush()
            os.fsync(sink.fileno())
        os.replace(part, final)
        _sync_dir(final.absolute().parent)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    print(_saved_line(saved, final), file=out)
    return 0


def _saved_line(saved: SnapshotSaved, path: Path) -> str:
    return (f"Snapshot saved at {path} (node {saved.node_id}, log index {saved.index}, term {saved.term}, "
            f"{saved.size} bytes, sha256 {saved.checksum[:16]}...)")


def _sync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
