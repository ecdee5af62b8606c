"""`python -m cluster COMMAND`: an etcdctl-like command line for a jangada cluster.

    python -m cluster put greeting hello
    python -m cluster get greeting [-w json]
    python -m cluster get app/ --prefix --keys-only
    python -m cluster del app/ --prefix
    python -m cluster txn < ops.txt             # the format: cluster/txnsyntax.py
    python -m cluster compact 42
    python -m cluster watch app/ --prefix [--rev R] [--prev-kv] [--max-events N] [--timeout S]
    python -m cluster endpoint status | endpoint health | member list

Endpoints: `--endpoints HOST:PORT,...`, else `$JANGADA_ENDPOINTS`, else the cluster
that `python -m supervisor up` started in this directory (its state file).
Exit status: 0 ok; 1 the operation failed (the message names the error type);
2 usage: a bad flag, an empty key, a request the cluster refuses as invalid (e.g.
over a size limit).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from cluster.client import (
    Client, ClientError, ClientTimeout, CompactedError, InvalidRequestError, SessionExpiredError, UnexpectedReply,
)
from cluster import txnsyntax
from cluster.commands import Response
from cluster.discovery import DiscoveryError, default_layout, discover_endpoints, read_state
from cluster.output import (
    FORMATS, dumps, format_table, kv_json, response_json, response_simple, response_table, show_bytes,
)
from cluster.txnsyntax import TxnSyntaxError, parse_txn, span


class UsageError(Exception):
    """A bad command line: exit 2 with one line."""


EPILOG = """\
exit status: 0 ok, 1 the operation failed, 2 usage error (bad flag, empty key, invalid request).
output (-w): simple (etcdctl's), table, json (stable: documented in docs/operations.md).
"""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}")


def _nonnegative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 < value <= 3600:
        raise argparse.ArgumentTypeError(f"must be in (0, 3600], got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    # Global options work before or after the command (SUPPRESS: a subcommand's
    # unset copy does not overwrite the value given before it).
    common = _Parser(add_help=False)
    common.add_argument("--endpoints", default=argparse.SUPPRESS, metavar="HOST:PORT,...",
                        help="client endpoints (default: $JANGADA_ENDPOINTS, else the supervisor's cluster here)")
    common.add_argument("-w", "--write-out", choices=FORMATS, default=argparse.SUPPRESS,
                        help="output format (default simple)")
    common.add_argument("--timeout", type=_seconds, default=argparse.SUPPRESS, metavar="S",
                        help="give up after S seconds (default 10); a write that times out has an unknown outcome")
    common.add_argument("--attempt-timeout", type=_seconds, default=argparse.SUPPRESS, metavar="S",
                        help="try the next endpoint after S seconds without an answer (default 1)")
    parser = _Parser(prog="python -m cluster", description=__doc__, epilog=EPILOG, parents=[common],
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    put = sub.add_parser("put", parents=[common], help="put KEY VALUE (VALUE from stdin if omitted)")
    put.add_argument("key", metavar="KEY")
    put.add_argument("value", metavar="VALUE", nargs="?")
    put.add_argument("--prev-kv", action="store_true", help="also print the previous key-value")

    get = sub.add_parser("get", parents=[common], help="get KEY [RANGE_END]")
    _range_args(get)
    get.add_argument("--limit", type=_nonnegative, default=0, metavar="N", help="at most N keys (0: no limit)")
    get.add_argument("--rev", type=_nonnegative, default=0, metavar="R", help="read at revision R (0: latest)")
    get.add_argument("--keys-only", action="store_true")
    get.add_argument("--count-only", action="store_true")
    get.add_argument("--print-value-only", action="store_true", help="simple output: values only")
    get.add_argument("--serializable", action="store_true",
                     help="serve from whichever node answers, without ReadIndex: fast, maybe stale")

    delete = sub.add_parser("del", parents=[common], help="del KEY [RANGE_END]")
    _range_args(delete)
    delete.add_argument("--prev-kv", action="store_true", help="also print the deleted key-values")

    txn = sub.add_parser("txn", parents=[common], help="a transaction read from stdin or --file",
                         description=txnsyntax.__doc__,
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    txn.add_argument("--file", "-f", type=Path, metavar="FILE", help="read the transaction from FILE")

    compact = sub.add_parser("compact", parents=[common], help="compact history before revision REV")
    compact.add_argument("revision", type=_nonnegative, metavar="REV")

    endpoint = sub.add_parser("endpoint", parents=[common], help="endpoint status | endpoint health")
    endpoint.add_argument("what", choices=["status", "health"])

    member = sub.add_parser("member", parents=[common], help="member list")
    member.add_argument("what", choices=["list"])
    _watch_parser(sub, common)
    return parser


def _range_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("key", metavar="KEY")
    parser.add_argument("range_end", metavar="RANGE_END", nargs="?", default="",
                        help="end of the range [KEY, RANGE_END)")
    parser.add_argument("--prefix", action="store_true", help="every key starting with KEY")
    parser.add_argument("--from-key", action="store_true", help="every key >= KEY")


# -- commands ----------------------------------------------------------------------------


def _range_span(args: argparse.Namespace) -> tuple[bytes, bytes]:
    if args.prefix + args.from_key + bool(args.range_end) > 1:
        raise UsageError("use only one of RANGE_END, --prefix, --from-key")
    key = args.key.encode()
    if not key and not (args.prefix or args.from_key):
        raise UsageError("the key must not be empty (use --prefix '' or --from-key '' for every key)")
    return span(key, args.range_end.encode(), args.prefix, args.from_key)


Call = Callable[[Client], Response]


def prepare_put(args: argparse.Namespace) -> Call:
    if not args.key:
        raise UsageError("the key must not be empty")
    value = args.value if args.value is not None else sys.stdin.read()
    return lambda client: client.put(args.key, value, prev_kv=args.prev_kv)


def prepare_get(args: argparse.Namespace) -> Call:
    key, end = _range_span(args)
    return lambda client: client.range(key, end, revision=args.rev, limit=args.limit, keys_only=args.keys_only,
                                       count_only=args.count_only, serializable=args.serializable)


def prepare_del(args: argparse.Namespace) -> Call:
    key, end = _range_span(args)
    return lambda client: client.delete(key, end, prev_kv=args.prev_kv)


def prepare_txn(args: argparse.Namespace) -> Call:
    try:
        text = args.file.read_text() if args.file else sys.stdin.read()
    except OSError as error:
        raise UsageError(f"cannot read {args.file}: {error.strerror}") from None
    try:
        compares, success, failure = parse_txn(text)
    except TxnSyntaxError as error:
        raise UsageError(str(error)) from None
    return lambda client: client.txn(compares, success, failure)


def prepare_compact(args: argparse.Namespace) -> Call:
    return lambda client: client.compact(args.revision)


#: Each validates its arguments (UsageError) before any connection is made.
KV_COMMANDS: dict[str, Callable[[argparse.Namespace], Call]] = {
    "put": prepare_put, "get": prepare_get, "del": prepare_del, "txn": prepare_txn, "compact": prepare_compact,
}


def print_response(response: Response, args: argparse.Namespace, out: TextIO) -> None:
    fmt = getattr(args, "write_out", "simple")
    keys_only = getattr(args, "keys_only", False)
    count_only = getattr(args, "count_only", False)
    if fmt == "json":
        print(dumps(response_json(response, keys_only)), file=out)
    elif fmt == "table":
        print(response_table(response, keys_only, count_only), file=out)
    else:
        lines = response_simple(response, keys_only, count_only, getattr(args, "print_value_only", False))
        if lines:
            print("\n".join(lines), file=out)


# -- endpoint / member -------------------------------------------------------------------


def endpoint_statuses(client: Client, endpoints: list[str], timeout: float) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for endpoint in endpoints:
        started = time.monotonic()
        try:
            status = client.status(endpoint, timeout=timeout)
            rows.append({"endpoint": endpoint, "status": status, "took_ms": round((time.monotonic() - started) * 1000, 1)})
        except ClientError as error:
            rows.append({"endpoint": endpoint, "error": f"{type(error).__name__}: {error}"})
    return rows


def cmd_endpoint(client: Client, args: argparse.Namespace, endpoints: list[str], out: TextIO) -> int:
    rows = endpoint_statuses(client, endpoints, args.attempt_timeout)
    fmt = args.write_out
    if args.what == "health":
        for row in rows:
            row["healthy"] = "status" in row and bool(row["status"].get("leader_id"))
    if fmt == "json":
        print(dumps(rows), file=out)
    elif args.what == "health":
        for row in rows:
            name = row["endpoint"].removeprefix("tcp://")
            if row["healthy"]:
                print(f"{name} is healthy: took {row['took_ms']} ms", file=out)
            else:
                why = row.get("error") or "no leader known"
                print(f"{name} is unhealthy: {why}", file=out)
    else:
        headers = ["ENDPOINT", "ID", "ROLE", "TERM", "LEADER", "COMMIT", "APPLIED", "REVISION", "WAL_BYTES", "ERROR"]
        table = []
        for row in rows:
            st = row.get("status", {})
            table.append([row["endpoint"].removeprefix("tcp://")] +
                         [str(st.get(k, "-")) for k in ("node_id", "role", "term", "leader_id", "commit_index",
                                                        "applied_index", "revision", "wal_bytes")] +
                         [row.get("error", "")])
        if fmt == "table":
            print(format_table(headers, table), file=out)
        else:
            for cells in table:
                print(", ".join(c for c in cells if c), file=out)
    ok = all(row.get("healthy", "status" in row) for row in rows)
    return 0 if ok else 1


def cmd_member(client: Client, args: argparse.Namespace, endpoints: list[str], out: TextIO) -> int:
    peers: dict[str, str] = {}
    state = read_state(default_layout()) if not args.explicit else None
    if state is not None:
        peers = {n.client: n.peer for n in state.nodes}
    rows = endpoint_statuses(client, endpoints, args.attempt_timeout)
    leader_ids = {r["status"].get("leader_id") for r in rows if "status" in r}
    members = []
    for row in rows:
        st = row.get("status", {})
        node_id = st.get("node_id")
        members.append({"id": node_id, "status": "started" if st else "unreachable",
                        "peer": peers.get(row["endpoint"], ""), "client": row["endpoint"],
                        "is_leader": node_id is not None and node_id in leader_ids})
    if args.write_out == "json":
        print(dumps({"members": members}), file=out)
    else:
        cells = [[str(m["id"] if m["id"] is not None else "-"), m["status"], m["peer"] or "-", m["client"],
                  str(m["is_leader"]).lower()] for m in members]
        if args.write_out == "table":
            print(format_table(["ID", "STATUS", "PEER", "CLIENT", "IS_LEADER"], cells), file=out)
        else:
            for c in cells:
                print(", ".join(c), file=out)
    return 0


# -- entry point -------------------------------------------------------------------------


def _errors(error: ClientError) -> tuple[int, str]:
    """Exit status and message for a typed client error."""
    if isinstance(error, InvalidRequestError):
        return 2, f"invalid request: {error}"
    if isinstance(error, ClientTimeout):
        return 1, f"timeout: {error} (for a write: the outcome is unknown)"
    if isinstance(error, CompactedError):
        return 1, f"compacted: {error}"
    if isinstance(error, SessionExpiredError):
        return 1, f"session expired: {error} (the outcome of the write is unknown)"
    if isinstance(error, UnexpectedReply):
        return 1, f"unexpected reply: {error}"
    return 1, f"{type(error).__name__}: {error}"


def run(args: argparse.Namespace, out: TextIO) -> int:
    call = KV_COMMANDS[args.command](args) if args.command in KV_COMMANDS else None
    watch_span = prepare_watch(args) if args.command == "watch" else None
    explicit = getattr(args, "endpoints", None)
    try:
        endpoints = discover_endpoints(explicit)
    except ValueError as error:
        raise UsageError(f"--endpoints: {error}") from None
    args.explicit = explicit is not None
    if watch_span is not None:
        return run_watch(args, watch_span, endpoints, out)
    with Client(endpoints, timeout=args.timeout, attempt_timeout=min(args.attempt_timeout, args.timeout)) as client:
        if args.command == "endpoint":
            return cmd_endpoint(client, args, endpoints, out)
        if args.command == "member":
            return cmd_member(client, args, endpoints, out)
        assert call is not None
        response = call(client)
        print_response(response, args, out)
        return 0


def main(argv: list[str] | None = None, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    parser = build_parser()
    try:
        args = parser.parse_args(sys.argv[1:] if argv is None else argv)
        args.timeout_given = hasattr(args, "timeout")  # watch: no timeout unless asked for
        for name, default in (("write_out", "simple"), ("timeout", 10.0), ("attempt_timeout", 1.0)):
            if not hasattr(args, name):
                setattr(args, name, default)
        return run(args, out)
    except UsageError as error:
        print(f"Error: {error}", file=sys.stderr)
        return 2
    except SystemExit as exit_:  # --help
        return int(exit_.code or 0)
    except DiscoveryError as error:
        print(f"Error: {error}", file=sys.stderr)
        return 1
    except ClientError as error:
        status, message = _errors(error)
        if isinstance(error, ClientTimeout) and not getattr(args, "explicit", True):
            message += " -- is the cluster running? see `python -m supervisor status`"
        print(f"Error: {message}", file=sys.stderr)
        return status
    except KeyboardInterrupt:
        return 130


# -- watch -------------------------------------------------------------------------------


def _positive(text: str) -> int:
    value = _nonnegative(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must be >= 1")
    return value


def _watch_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    watch = sub.add_parser(
        "watch", parents=[common], help="watch KEY [RANGE_END]: stream events until Ctrl-C",
        description="Stream the events of a key, a prefix or a range, in revision order, each once, "
                    "across node failures (docs/watch.md). simple output: PUT|DELETE, [prev key, prev value,] "
                    "key, value lines per event; json: one object per line. Exit 0 on Ctrl-C, after "
                    "--max-events, or at --timeout (1 if --max-events were not all seen by then).")
    _range_args(watch)
    watch.add_argument("--rev", type=_nonnegative, default=0, metavar="R",
                       help="start at revision R (0: from now); R <= the compact revision fails")
    watch.add_argument("--prev-kv", action="store_true", help="also print each key's previous version")
    watch.add_argument("--max-events", type=_positive, metavar="N", help="exit 0 after N events")
    watch.add_argument("--progress", action="store_true",
                       help="also print progress notifications (simple: PROGRESS REV)")
    watch.add_argument("--progress-interval", type=_seconds, default=1.0, metavar="S",
                       help="the node confirms an idle watch every S seconds (default 1)")


def watch_event_lines(event: Any, prev_kv: bool) -> list[str]:
    """etcdctl's simple form: the type, then (with --prev-kv) the previous key and
    value, then the key and value (empty for a DELETE)."""
    lines = [event.type_name]
    if prev_kv and event.prev_kv is not None:
        lines += [show_bytes(event.prev_kv.key), show_bytes(event.prev_kv.value)]
    return lines + [show_bytes(event.kv.key), show_bytes(event.kv.value)]


def watch_event_json(event: Any) -> dict[str, Any]:
    return {"type": event.type_name, "revision": event.kv.mod_revision, "kv": kv_json(event.kv),
            "prev_kv": kv_json(event.prev_kv) if event.prev_kv is not None else None}


def prepare_watch(args: argparse.Namespace) -> tuple[bytes, bytes]:
    """Check a watch command line before any connection; the span to watch."""
    if args.write_out == "table":
        raise UsageError("watch prints simple or json (-w table is not supported)")
    return _range_span(args)


def run_watch(args: argparse.Namespace, span: tuple[bytes, bytes], endpoints: list[str], out: TextIO) -> int:
    key, end = span
    deadline = time.monotonic() + args.timeout if args.timeout_given else None
    wanted = args.max_events
    seen = 0
    with Client(endpoints, timeout=args.timeout, attempt_timeout=min(args.attempt_timeout, args.timeout)) as client:
        watch = client.watch(key, end, start_revision=args.rev or None, prev_kv=args.prev_kv,
                             progress_notify=args.progress, progress_interval=args.progress_interval)
        try:
            while wanted is None or seen < wanted:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    break
                response = watch.get(timeout=left)
                if response is None:
                    continue
                for event in response.events[:None if wanted is None else wanted - seen]:
                    if args.write_out == "json":
                        print(json.dumps(watch_event_json(event)), file=out)  # one object per line
                    else:
                        print("\n".join(watch_event_lines(event, args.prev_kv)), file=out)
                    seen += 1
                if response.progress:
                    print(json.dumps({"progress": True, "revision": response.revision}) if args.write_out == "json"
                          else f"PROGRESS {response.revision}", file=out)
                out.flush()
        except KeyboardInterrupt:
            return 0
        finally:
            watch.close()
    if wanted is not None and seen < wanted:
        print(f"Error: timeout: {seen} of {wanted} events within {args.timeout:g} s", file=sys.stderr)
        return 1
    return 0
