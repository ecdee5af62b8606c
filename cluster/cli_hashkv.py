"""The CLI's `endpoint hashkv`: etcdctl 3.4's (etcdctl/ctlv3/command/ep_command.go,
printer_simple.go / printer_table.go / printer_json.go).

    python -m cluster endpoint hashkv                  # each --endpoints member's hash
    python -m cluster endpoint hashkv --cluster        # every member of the member list
    python -m cluster endpoint hashkv --rev 42 -w table

Each member answers with its HashKV: a hash of its key-value history up to the
revision (its current one by default; node/statemachine/digest.py). Members that
applied a revision and kept the same history agree on its hash: compare them at
one `--rev` (docs/operations.md, "Consistency checks"). Output as etcdctl's:
simple `ENDPOINT, HASH` lines, a table of ENDPOINT and HASH, or (-w json) a list
of {"Endpoint", "HashKV": {"header", "hash", "compact_revision"}}. A member that
does not answer is named on stderr ("Failed to get the hash of endpoint ...")
and the exit status is then 1, as etcdctl's.
"""
from __future__ import annotations

import argparse
import sys
from typing import Any, TextIO

from cluster.usage import UsageError
from cluster.client import Client, ClientError
from cluster.kv.errors import AuthError
from cluster.output import dumps, format_table


def add_arguments(endpoint: argparse.ArgumentParser) -> None:
    """`endpoint hashkv`'s flags, on the `endpoint` command's parser."""
    endpoint.add_argument("--rev", type=int, default=0, metavar="REV",
                          help="hashkv: the revision to hash up to (default 0: each member's current one)")
    endpoint.add_argument("--cluster", action="store_true",
                          help="ask every member of the member list, not only --endpoints")


def cluster_endpoints(client: Client) -> list[str]:
    """Every member's client address, from the member list (etcdctl's --cluster)."""
    members = client.members(leader=False)
    return [m["client"] for m in members.get("members", []) if m.get("client")]


def hashes(client: Client, endpoints: list[str], revision: int,
           timeout: float) -> tuple[list[dict[str, Any]], list[str]]:
    """(etcdctl's JSON rows of the members that answered, the failures' messages)."""
    rows: list[dict[str, Any]] = []
    failures: list[str] = []
    for endpoint in endpoints:
        name = endpoint.removeprefix("tcp://")
        try:
            found = client.hash_kv(revision, endpoint, timeout=timeout)
        except (ClientError, AuthError) as error:
            failures.append(f"Failed to get the hash of endpoint {name} ({error})")
            continue
        rows.append({"Endpoint": name, "HashKV": {
            "header": {"member_id": found["member_id"], "revision": found["revision"]},
            "hash": found["hash"], "compact_revision": found["compact_revision"]}})
    return rows, failures


def cmd_hashkv(client: Client, args: argparse.Namespace, endpoints: list[str], out: TextIO) -> int:
    if args.rev < 0:
        raise UsageError("--rev must be >= 0")
    targets = cluster_endpoints(client) if args.cluster else endpoints
    rows, failures = hashes(client, targets, args.rev, args.attempt_timeout)
    for failure in failures:
        print(failure, file=sys.stderr)
    if args.write_out == "json":
        print(dumps(rows), file=out)
    elif args.write_out == "table":
        print(format_table(["ENDPOINT", "HASH"], [[r["Endpoint"], str(r["HashKV"]["hash"])] for r in rows]),
              file=out)
    else:
        for row in rows:
            print(f"{row['Endpoint']}, {row['HashKV']['hash']}", file=out)
    return 1 if failures else 0
