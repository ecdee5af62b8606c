"""`python -m cluster COMMAND`: an etcdctl-like command line for a jangada cluster.

    python -m cluster put greeting hello
    python -m cluster get greeting [-w json]
    python -m cluster get app/ --prefix --keys-only
    python -m cluster del app/ --prefix
    python -m cluster txn < ops.txt             # the format: cluster/txnsyntax.py
    python -m cluster compact 42
    python -m cluster alarm list | alarm disarm     # etcdctl's (NOSPACE: docs/operations.md)
    python -m cluster lease grant 10            # then: put --lease ID KEY VALUE
    python -m cluster lease keepalive ID [--once] | lease revoke ID | lease timetolive ID [--keys] | lease list
    python -m cluster lock [--ttl S] [--wait S] NAME [-- COMMAND ...]    # a distributed lock
    python -m cluster elect [--ttl S] NAME [PROPOSAL]    # campaign (with PROPOSAL) or observe
    python -m cluster watch app/ --prefix [--rev R] [--prev-kv] [--max-events N] [--timeout S]
    python -m cluster endpoint status | endpoint health | endpoint hashkv [--rev R] [--cluster]
    python -m cluster version
    python -m cluster member list | member add ID --peer HOST:PORT [--client HOST:PORT]
        [--grpc HOST:PORT] [--gateway HOST:PORT] [--voter]
    python -m cluster member promote ID | member remove ID
    python -m cluster move-leader ID
    python -m cluster snapshot save FILE | snapshot status FILE | snapshot restore FILE --config NEW --id N
    python -m cluster auth enable|disable|status
    python -m cluster user add NAME[:PASSWORD] | user get NAME [--detail] | user list | user delete NAME
        | user passwd NAME | user grant-role NAME ROLE | user revoke-role NAME ROLE
    python -m cluster role add ROLE | role get ROLE | role list | role delete ROLE
        | role grant-permission [--prefix|--from-key] ROLE read|write|readwrite KEY [ENDKEY]
        | role revoke-permission [--prefix|--from-key] ROLE KEY [ENDKEY]

Authentication (etcdctl's): `--user NAME[:PASSWORD]` (asks for the password when
it is not given there or with `--password`).

Endpoints: `--endpoints HOST:PORT,...`, else `$JANGADA_ENDPOINTS`, else the cluster
that `python -m supervisor up` started in this directory (its state file).
Keys and values are bytes: arguments and stdin are taken byte for byte (UTF-8 or
not) and `-w simple` prints them raw, as etcdctl does.

Exit status (etcdctl 3.4's codes): 0 ok; 1 the operation failed (the message names
the error; auth errors print etcd's message, e.g. "Error: etcdserver: permission
denied"; a request the cluster refuses as invalid, e.g. over a size limit);
2 bad connection (no endpoint accepts a connection, no cluster found); 3 invalid
input (a txn that does not parse); 4 a flag value we do not support (e.g. -w table
where there is no table, --sort-by SIZE); 5 interrupted (Ctrl-C); 6 a local file
cannot be read (txn --file); 128 bad arguments (a bad flag, an empty key).
"""
from __future__ import annotations

import argparse
import getpass
import importlib.metadata
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from cluster.client import (
    Client, ClientError, ClientTimeout, CompactedError, InvalidRequestError, LeaseNotFoundError, RefusedError,
    SessionExpiredError,
    UnexpectedReply,
)
from cluster import cli_alarm, cli_auth, cli_hashkv, cli_member_change, cli_snapshot, kvflags, txnsyntax
from cluster.dial import DIAL_TIMEOUT, BadConnection, dial
from cluster.kvflags import lease_id as _lease_id, nonnegative as _nonnegative
from cluster.concurrency import Election, LockTimeout, Mutex, Session, SessionLost, observe
from cluster.kv import Response
from cluster.kv.errors import AlarmError, AuthError
from cluster.discovery import (
    DiscoveryError, discover_endpoints, normalize_endpoint,
)
from cluster.output import (
    FORMATS, dumps, format_table, kv_json, lease_json, lease_simple, lease_table, response_json,
    response_simple, response_table, write_lines,
)
from cluster.txnsyntax import TxnSyntaxError, parse_txn, span
from cluster.usage import BadFeatureError, ExitCode, InvalidInputError, LocalIOError, UsageError

EPILOG = """\
exit status (etcdctl's): 0 ok, 1 the operation failed, 2 bad connection, 3 invalid txn input,
4 unsupported flag value, 5 interrupted, 6 local I/O error, 128 bad arguments.
output (-w): simple (etcdctl's), table, json (stable: documented in docs/operations.md).
"""

#: What `version` prints as the API version: the etcd API jangada follows.
API_VERSION = "3.4"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}")


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 < value <= 3600:
        raise argparse.ArgumentTypeError(f"must be in (0, 3600], got {text}")
    return value


def _ttl(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of seconds") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1 second, got {value}")
    return value


DEFAULT_TIMEOUT_HELP = "give up after S seconds (default 10); a write that times out has an unknown outcome"
#: watch has no default timeout: it streams until Ctrl-C (run_watch: timeout_given).
WATCH_TIMEOUT_HELP = "stop watching after S seconds (default: never, until Ctrl-C or --max-events)"


def _common_options(timeout_help: str = DEFAULT_TIMEOUT_HELP) -> _Parser:
    """The global options. They work before or after the command (SUPPRESS: a
    subcommand's unset copy does not overwrite the value given before it)."""
    common = _Parser(add_help=False)
    common.add_argument("--endpoints", default=argparse.SUPPRESS, metavar="HOST:PORT,...",
                        help="client endpoints (default: $JANGADA_ENDPOINTS, else the supervisor's cluster here)")
    common.add_argument("-w", "--write-out", choices=FORMATS, default=argparse.SUPPRESS,
                        help="output format (default simple)")
    common.add_argument("--timeout", type=_seconds, default=argparse.SUPPRESS, metavar="S", help=timeout_help)
    common.add_argument("--attempt-timeout", type=_seconds, default=argparse.SUPPRESS, metavar="S",
                        help="try the next endpoint after S seconds without an answer (default 1)")
    common.add_argument("--user", default=argparse.SUPPRESS, metavar="NAME[:PASSWORD]",
                        help="authenticate as NAME (asks for the password unless given here or with --password)")
    common.add_argument("--password", default=argparse.SUPPRESS, metavar="PASSWORD",
                        help="the password of --user (then NAME is taken whole, colons included)")
    return common


def build_parser() -> argparse.ArgumentParser:
    common = _common_options()
    parser = _Parser(prog="python -m cluster", description=__doc__, epilog=EPILOG, parents=[common],
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    kvflags.add_put_args(sub.add_parser("put", parents=[common], help="put KEY VALUE (VALUE from stdin if omitted)"))

    get = sub.add_parser("get", parents=[common], help="get KEY [RANGE_END]")
    kvflags.add_get_args(get)
    get.add_argument("--serializable", action="store_true",
                     help="serve from whichever node answers, without ReadIndex: fast, maybe stale")

    kvflags.add_del_args(sub.add_parser("del", parents=[common], help="del KEY [RANGE_END]"))

    txn = sub.add_parser("txn", parents=[common], help="a transaction read from stdin or --file",
                         description=txnsyntax.__doc__,
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    txn.add_argument("--file", "-f", type=Path, metavar="FILE", help="read the transaction from FILE")

    compact = sub.add_parser("compact", parents=[common], help="compact history before revision REV")
    compact.add_argument("revision", type=_nonnegative, metavar="REV")

    endpoint = sub.add_parser("endpoint", parents=[common], help="endpoint status | endpoint health | endpoint hashkv")
    endpoint.add_argument("what", choices=["status", "health", "hashkv"])
    cli_hashkv.add_arguments(endpoint)

    sub.add_parser("version", parents=[common], help="print the version of jangada and of the etcd API it follows")

    member = sub.add_parser("member", parents=[common], help="member list | add | promote | remove")
    members = member.add_subparsers(dest="what", metavar="list|add|promote|remove|replace|change",
                                    parser_class=_Parser)
    members.required = True
    members.add_parser("list", parents=[common], help="members: id, addresses, voter or learner (and its lag)")
    add = members.add_parser("add", parents=[common], help="add a new member as a learner (or --voter)")
    add.add_argument("member_id", type=_node_id, metavar="ID")
    add.add_argument("--peer", required=True, type=_address, metavar="HOST:PORT", help="its peer address")
    add.add_argument("--client", type=_address, metavar="HOST:PORT",
                     help="its client address (default: none)")
    add.add_argument("--grpc", type=_url, metavar="HOST:PORT", help="its etcd gRPC address (default: none)")
    add.add_argument("--gateway", type=_url, metavar="HOST:PORT",
                     help="its etcd HTTP gateway address (default: none)")
    add.add_argument("--voter", action="store_true",
                     help="add it straight as a voter (as etcdctl member add without --learner): the quorum grows "
                          "at once, so start the member promptly")
    promote = members.add_parser("promote", parents=[common], help="make a caught-up learner a voter")
    promote.add_argument("member_id", type=_node_id, metavar="ID")
    remove = members.add_parser("remove", parents=[common], help="remove a member (the leader too)")
    remove.add_argument("member_id", type=_node_id, metavar="ID")
    cli_member_change.add_parsers(members, common, _node_id, _address, _url)

    move = sub.add_parser("move-leader", parents=[common],
                          help="transfer leadership to voter ID and wait until it leads")
    move.add_argument("member_id", type=_node_id, metavar="ID")

    lease = sub.add_parser("lease", parents=[common], help="lease grant|keepalive|revoke|timetolive|list")
    actions = lease.add_subparsers(dest="action", metavar="ACTION", parser_class=_Parser)
    actions.required = True
    grant = actions.add_parser("grant", parents=[common], help="grant TTL: a new lease of TTL seconds")
    grant.add_argument("ttl", type=_ttl, metavar="TTL")
    grant.add_argument("--id", type=_lease_id, default=0, metavar="ID", help="ask for this id (hex)")
    keepalive = actions.add_parser("keepalive", parents=[common],
                                   help="keepalive ID: renew every TTL/3 until Ctrl-C (or once)")
    keepalive.add_argument("id", type=_lease_id, metavar="ID")
    keepalive.add_argument("--once", action="store_true", help="renew once and exit")
    revoke = actions.add_parser("revoke", parents=[common], help="revoke ID: delete the lease and its keys")
    revoke.add_argument("id", type=_lease_id, metavar="ID")
    timetolive = actions.add_parser("timetolive", parents=[common], help="timetolive ID: granted and remaining TTL")
    timetolive.add_argument("id", type=_lease_id, metavar="ID")
    timetolive.add_argument("--keys", action="store_true", help="also list the attached keys")
    actions.add_parser("list", parents=[common], help="every lease id")

    lock = sub.add_parser("lock", parents=[common], help="lock NAME [-- COMMAND ...]: a distributed lock",
                          description="Acquire lock NAME, print its key, run COMMAND holding it and exit with "
                                      "its status (without COMMAND: hold until Ctrl-C). Options go before NAME.")
    lock.add_argument("--ttl", type=_ttl, default=10, metavar="S",
                      help="session lease TTL: a dead holder releases the lock after S seconds (default 10)")
    lock.add_argument("--wait", type=_seconds, default=None, metavar="S", help="give up acquiring after S seconds")
    lock.add_argument("name", metavar="NAME")
    lock.add_argument("cmd", nargs=argparse.REMAINDER, metavar="COMMAND")

    elect = sub.add_parser("elect", parents=[common], help="elect NAME [PROPOSAL]: campaign, or observe leaders",
                           description="With PROPOSAL: campaign, print the leader key and value once elected, "
                                       "hold leadership until Ctrl-C (or --hold S). Without: print each leader.")
    elect.add_argument("--ttl", type=_ttl, default=10, metavar="S", help="session lease TTL (default 10)")
    elect.add_argument("--wait", type=_seconds, default=None, metavar="S", help="give up campaigning after S seconds")
    elect.add_argument("--hold", type=_seconds, default=None, metavar="S", help="resign after S seconds as leader")
    elect.add_argument("--count", type=_nonnegative, default=0, metavar="N",
                       help="observing: exit after N leaders (0: until Ctrl-C)")
    elect.add_argument("name", metavar="NAME")
    elect.add_argument("proposal", metavar="PROPOSAL", nargs="?")
    _watch_parser(sub, _common_options(WATCH_TIMEOUT_HELP))
    cli_auth.add_parsers(sub, common, _Parser)
    cli_snapshot.add_parsers(sub, common, _Parser)
    cli_alarm.add_parsers(sub, common, _Parser)
    return parser


def credentials(args: argparse.Namespace, ask: cli_auth.Ask) -> dict[str, str]:
    """etcdctl's authCfgFromCmd: `--user NAME:PASSWORD`, `--user NAME --password P`,
    or `--user NAME` and a prompt; none without --user. The Client keywords."""
    user = getattr(args, "user", "")
    password = getattr(args, "password", "")
    if not user:
        if password:
            raise UsageError("--password needs --user")
        return {}
    if not password:
        name, colon, password = user.partition(":")
        user = name
        if not colon:
            password = ask("Password: ")
    if not user:
        raise UsageError("--user: empty user name")
    return {"user": user, "password": password}


def _node_id(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a node id") from None
    if not 1 <= value < 2**63:
        raise argparse.ArgumentTypeError(f"node ids are >= 1, got {value}")
    return value


def _address(text: str) -> str:
    try:
        return normalize_endpoint(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _url(text: str) -> str:
    """HOST:PORT or http://HOST:PORT -> http://HOST:PORT (an etcd face's URL)."""
    try:
        return "http://" + normalize_endpoint(text.removeprefix("http://")).removeprefix("tcp://")
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


# -- commands ----------------------------------------------------------------------------


def _range_span(args: argparse.Namespace) -> tuple[bytes, bytes]:
    if args.prefix + args.from_key + bool(args.range_end) > 1:
        raise UsageError("use only one of RANGE_END, --prefix, --from-key")
    key = kvflags.raw(args.key)
    if not key and not (args.prefix or args.from_key):
        raise UsageError("the key must not be empty (use --prefix '' or --from-key '' for every key)")
    return span(key, kvflags.raw(args.range_end), args.prefix, args.from_key)


Call = Callable[[Client], Response]


def prepare_put(args: argparse.Namespace) -> Call:
    if not args.key:
        raise UsageError("the key must not be empty")
    if args.ignore_value and args.value is not None:  # etcdctl's rule
        raise UsageError("put command needs only 1 argument when 'ignore-value' is set")
    if args.ignore_value:
        value = b""
    elif args.value is not None:
        value = kvflags.raw(args.value)
    else:
        value = sys.stdin.buffer.read()  # bytes: a value need not be UTF-8
    key = kvflags.raw(args.key)
    return lambda client: client.put(key, value, lease=args.lease, prev_kv=args.prev_kv,
                                     ignore_value=args.ignore_value, ignore_lease=args.ignore_lease)


def prepare_get(args: argparse.Namespace) -> Call:
    key, end = _range_span(args)
    try:
        sort_target, sort_order = kvflags.sort_options(args.sort_by, args.order)
    except ValueError as error:
        raise BadFeatureError(str(error)) from None
    return lambda client: client.range(key, end, revision=args.rev, limit=args.limit, keys_only=args.keys_only,
                                       count_only=args.count_only, sort_target=sort_target,
                                       sort_order=sort_order, serializable=args.serializable)


def prepare_del(args: argparse.Namespace) -> Call:
    key, end = _range_span(args)
    return lambda client: client.delete(key, end, prev_kv=args.prev_kv)


def prepare_txn(args: argparse.Namespace) -> Call:
    try:  # bytes: keys and values need not be UTF-8
        text = args.file.read_bytes() if args.file else sys.stdin.buffer.read()
    except OSError as error:
        raise LocalIOError(f"cannot read {args.file}: {error.strerror}") from None
    try:
        compares, success, failure = parse_txn(text)
    except TxnSyntaxError as error:
        raise InvalidInputError(str(error)) from None
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
        write_lines(out, response_simple(response, keys_only, count_only, getattr(args, "print_value_only", False)))


# -- leases ------------------------------------------------------------------------------


def print_lease(response: Response, args: argparse.Namespace, out: TextIO) -> None:
    lease_id = getattr(args, "id", 0)
    if args.write_out == "json":
        print(dumps(lease_json(response)), file=out)
    elif args.write_out == "table":
        print(lease_table(response, lease_id), file=out)
    else:
        print("\n".join(lease_simple(response, lease_id)), file=out)
    out.flush()


def cmd_lease(client: Client, args: argparse.Namespace, out: TextIO) -> int:
    if args.action == "grant":
        print_lease(client.lease_grant(args.ttl, args.id), args, out)
    elif args.action == "revoke":
        print_lease(client.lease_revoke(args.id), args, out)
    elif args.action == "timetolive":
        print_lease(client.lease_time_to_live(args.id, args.keys), args, out)
    elif args.action == "list":
        print_lease(client.lease_list(), args, out)
    else:
        while True:  # keepalive: until Ctrl-C, or the lease is gone (exit 1)
            renewed = client.lease_keepalive(args.id)
            print_lease(renewed, args, out)
            if args.once:
                break
            time.sleep(max(renewed.ttl / 3, 0.1))
    return 0


# -- lock / elect ------------------------------------------------------------------------


def _print_holder(key: bytes, value: bytes | None, revision: int, args: argparse.Namespace, out: TextIO) -> None:
    if args.write_out == "json":
        print(dumps({"key": key.decode(errors="replace"), "revision": revision,
                     **({} if value is None else {"value": value.decode(errors="replace")})}), file=out)
    elif args.write_out == "table":
        print(format_table(["KEY", "VALUE", "REVISION"], [[key.decode(errors="replace"),
                                                          (value or b"").decode(errors="replace"), str(revision)]]),
              file=out)
    else:
        print(key.decode(errors="replace"), file=out)
        if value is not None:
            print(value.decode(errors="replace"), file=out)
    out.flush()


def _sigterm_as_interrupt() -> None:
    """SIGTERM releases what we hold, like Ctrl-C (main thread only)."""
    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, interrupt)


def _hold(session: Session, seconds: float | None) -> int:
    """Until Ctrl-C/SIGTERM, `seconds`, or the session's end (exit 1)."""
    end = None if seconds is None else time.monotonic() + seconds
    try:
        while not session.lost:
            if end is not None and time.monotonic() >= end:
                return 0
            time.sleep(0.05)
    except KeyboardInterrupt:
        return 0
    print("Error: the session's lease ended: no longer holding", file=sys.stderr)
    return 1


def _run_holding(command: list[str], key: bytes, revision: int, session: Session) -> int:
    env = {**os.environ, "JANGADA_LOCK_KEY": key.decode(errors="replace"), "JANGADA_LOCK_REV": str(revision)}
    try:
        child = subprocess.Popen(command, env=env)
    except OSError as error:
        print(f"Error: cannot run {command[0]}: {error.strerror}", file=sys.stderr)
        return 127
    try:
        while True:
            try:
                status = child.wait(timeout=0.05)
                return status if status >= 0 else 128 - status
            except subprocess.TimeoutExpired:
                pass
            if session.lost:
                child.terminate()
                child.wait()
                print("Error: the lock's lease ended while COMMAND ran: it was terminated", file=sys.stderr)
                return 1
    except KeyboardInterrupt:
        child.terminate()
        child.wait()
        return 130


def cmd_lock(client: Client, args: argparse.Namespace, out: TextIO) -> int:
    command = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    _sigterm_as_interrupt()
    with Session(client, args.ttl) as session:
        mutex = Mutex(client, session, args.name)
        mutex.lock(timeout=args.wait)
        try:
            _print_holder(mutex.key, None, mutex.revision, args, out)
            if command:
                return _run_holding(command, mutex.key, mutex.revision, session)
            return _hold(session, None)
        finally:
            mutex.unlock()


def cmd_elect(client: Client, args: argparse.Namespace, out: TextIO) -> int:
    _sigterm_as_interrupt()
    if args.proposal is None:
        seen = 0
        try:
            for leader in observe(client, args.name):
                _print_holder(leader.key, leader.value, leader.create_revision, args, out)
                seen += 1
                if args.count and seen >= args.count:
                    break
        except KeyboardInterrupt:
            pass
        return 0
    with Session(client, args.ttl) as session:
        election = Election(client, session, args.name)
        election.campaign(args.proposal, timeout=args.wait)
        try:
            _print_holder(election.key, args.proposal.encode(), election.revision, args, out)
            return _hold(session, args.hold)
        finally:
            election.resign()


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
    elif args.what == "health" and fmt == "table":
        print(format_table(*endpoint_health_table(rows)), file=out)
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


def endpoint_health_table(rows: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """etcdctl's `endpoint health -w table`: ENDPOINT | HEALTH | TOOK | ERROR."""
    cells = []
    for row in rows:
        took = f"{row['took_ms']}ms" if "took_ms" in row else ""
        why = "" if row["healthy"] else row.get("error") or "no leader known"
        cells.append([row["endpoint"].removeprefix("tcp://"), str(row["healthy"]).lower(), took, why])
    return ["ENDPOINT", "HEALTH", "TOOK", "ERROR"], cells


def cmd_member(client: Client, args: argparse.Namespace, endpoints: list[str], out: TextIO) -> int:
    """`member list` from the leader's membership (voters, learners, addresses, the
    learners' lag); add / promote / remove through the leader, printed once applied."""
    if args.what in cli_member_change.WHAT:
        return cli_member_change.run(client, args, out)
    if args.what == "add":
        members = client.member_add(args.member_id, args.peer, args.client or "", grpc=args.grpc or "",
                                    gateway=args.gateway or "", voter=args.voter)
        done = f"added node {args.member_id} as a {'voter' if args.voter else 'learner'}"
    elif args.what == "promote":
        members = client.member_promote(args.member_id)
        done = f"promoted node {args.member_id} to voter"
    elif args.what == "remove":
        members = client.member_remove(args.member_id)
        done = f"removed node {args.member_id}"
    else:
        members = client.members()
        done = ""
    rows = member_rows(members, client, args.attempt_timeout)
    if args.write_out == "json":
        print(dumps({"members": rows, "leader_id": members.get("leader_id"), "term": members.get("term"),
                     **({"done": done} if done else {})}), file=out)
        return 0
    if done:
        print(done, file=out)
    cells = [[str(m["id"]), m["status"], m["role"], m["peer"] or "-", m["client"] or "-", m["grpc"] or "-",
              str(m["is_leader"]).lower(), "-" if m["lag"] is None else str(m["lag"])] for m in rows]
    if args.write_out == "table":
        print(format_table(["ID", "STATUS", "ROLE", "PEER", "CLIENT", "GRPC", "IS_LEADER", "LAG"], cells), file=out)
    else:
        for c in cells:
            print(", ".join(c), file=out)
    return 0


def member_rows(members: dict[str, Any], client: Client, timeout: float) -> list[dict[str, Any]]:
    """One row per member; `status` says whether it answers a status request."""
    rows = []
    leader = members.get("leader_id")
    for m in members.get("members", []):
        started = False
        if m.get("client"):
            try:
                client.status(m["client"], timeout=timeout)
                started = True
            except ClientError:
                started = False
        rows.append({"id": m["id"], "status": "started" if started else "unreachable",
                     "role": "voter" if m.get("voter") else "learner", "peer": m.get("peer", ""),
                     "client": m.get("client", ""), "grpc": m.get("grpc", ""), "gateway": m.get("gateway", ""),
                     "is_leader": m["id"] == leader, "lag": m.get("lag")})
    return rows


def cmd_move_leader(client: Client, args: argparse.Namespace, out: TextIO) -> int:
    members = client.move_leader(args.member_id)
    if args.write_out == "json":
        print(dumps({"leader_id": members.get("leader_id"), "term": members.get("term")}), file=out)
    else:
        print(f"leadership moved to node {members.get('leader_id')} (term {members.get('term')})", file=out)
    return 0


# -- entry point -------------------------------------------------------------------------


def _errors(error: ClientError) -> tuple[int, str]:
    """Exit status and message for a typed client error."""
    if isinstance(error, InvalidRequestError):  # etcdctl: a server's refusal is ExitError
        return 1, f"invalid request: {error}"
    if isinstance(error, ClientTimeout):
        return 1, f"timeout: {error} (for a write: the outcome is unknown)"
    if isinstance(error, CompactedError):
        return 1, f"compacted: {error}"
    if isinstance(error, LeaseNotFoundError):
        return 1, f"lease not found: {error}"
    if isinstance(error, LockTimeout):
        return 1, f"timeout: {error}"
    if isinstance(error, SessionLost):
        return 1, f"session lost: {error}"
    if isinstance(error, SessionExpiredError):
        return 1, f"session expired: {error} (the outcome of the write is unknown)"
    if isinstance(error, UnexpectedReply):
        return 1, f"unexpected reply: {error}"
    if isinstance(error, RefusedError):
        return 1, f"refused: {error}"
    return 1, f"{type(error).__name__}: {error}"


def run(args: argparse.Namespace, out: TextIO, ask: cli_auth.Ask = getpass.getpass) -> int:
    if args.command == "version":
        return cmd_version(out)
    call = KV_COMMANDS[args.command](args) if args.command in KV_COMMANDS else None
    watch_span = prepare_watch(args) if args.command == "watch" else None
    auth_call = cli_auth.prepare(args, ask) if args.command in cli_auth.AUTH_COMMANDS else None
    if args.command == "snapshot":
        if cli_snapshot.is_offline(args):
            return cli_snapshot.run_offline(args, out)
        args.timeout = cli_snapshot.save_timeout(args)
    explicit = getattr(args, "endpoints", None)
    try:
        endpoints = discover_endpoints(explicit)
    except ValueError as error:
        raise UsageError(f"--endpoints: {error}") from None
    args.explicit = explicit is not None
    args.credentials = credentials(args, ask)
    dial(endpoints, min(DIAL_TIMEOUT, args.timeout))  # fail fast when nothing listens (etcdctl's dial)
    if watch_span is not None:
        return run_watch(args, watch_span, endpoints, out)
    with Client(endpoints, timeout=args.timeout, attempt_timeout=min(args.attempt_timeout, args.timeout),
                **args.credentials) as client:
        if auth_call is not None:
            return auth_call(client, cli_auth.Printer(out, args.write_out == "json"))
        if args.command == "endpoint" and args.what == "hashkv":
            return cli_hashkv.cmd_hashkv(client, args, endpoints, out)
        if args.command == "endpoint":
            return cmd_endpoint(client, args, endpoints, out)
        if args.command == "member":
            return cmd_member(client, args, endpoints, out)
        if args.command == "snapshot":
            return cli_snapshot.run_save(client, args, out)
        if args.command == "move-leader":
            return cmd_move_leader(client, args, out)
        if args.command == "lease":
            return cmd_lease(client, args, out)
        if args.command in cli_alarm.ALARM_COMMANDS:
            return cli_alarm.run(client, args, out)
        if args.command == "lock":
            return cmd_lock(client, args, out)
        if args.command == "elect":
            return cmd_elect(client, args, out)
        assert call is not None
        response = call(client)
        print_response(response, args, out)
        return 0


NOT_RUNNING_HINT = " -- is the cluster running? see `python -m supervisor status`"


def cmd_version(out: TextIO) -> int:
    """etcdctl's two lines: this program's version and the etcd API it follows."""
    try:
        version = importlib.metadata.version("jangada")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree that is not installed
        version = "unknown"
    print(f"jangada version: {version}", file=out)
    print(f"API version: {API_VERSION}", file=out)
    return 0


def _quiet_broken_pipe(out: TextIO) -> int:
    """The reader of our output went away (`... | head`): exit quietly, as etcdctl
    (killed by SIGPIPE) does. As the Python documentation advises (signal module,
    "Note on SIGPIPE"), point stdout at /dev/null so that the interpreter's final
    flush does not fail again; the status is the shell's for a death by SIGPIPE."""
    if out is sys.stdout:
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)
        except (OSError, ValueError):  # no real file descriptor (a test's capture)
            pass
    return 128 + signal.SIGPIPE


def main(argv: list[str] | None = None, out: TextIO | None = None, ask: cli_auth.Ask = getpass.getpass) -> int:
    out = out or sys.stdout
    try:
        return _main(argv, out, ask)
    except BrokenPipeError:
        return _quiet_broken_pipe(out)


def _main(argv: list[str] | None, out: TextIO, ask: cli_auth.Ask) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(sys.argv[1:] if argv is None else argv)
        args.timeout_given = hasattr(args, "timeout")  # watch: no timeout unless asked for
        for name, default in (("write_out", "simple"), ("timeout", 10.0), ("attempt_timeout", 1.0)):
            if not hasattr(args, name):
                setattr(args, name, default)
        return run(args, out, ask)
    except UsageError as error:
        print(f"Error: {error}", file=sys.stderr)
        return error.code
    except SystemExit as exit_:  # --help
        return int(exit_.code or 0)
    except DiscoveryError as error:
        print(f"Error: {error}", file=sys.stderr)
        return ExitCode.BAD_CONNECTION
    except BadConnection as error:  # etcdctl: "Error: dial tcp 127.0.0.1:2379: connect: connection refused"
        hint = "" if getattr(args, "explicit", True) else NOT_RUNNING_HINT
        print(f"Error: {error}{hint}", file=sys.stderr)
        return ExitCode.BAD_CONNECTION
    except ClientError as error:
        status, message = _errors(error)
        if isinstance(error, ClientTimeout) and not getattr(args, "explicit", True):
            message += NOT_RUNNING_HINT
        print(f"Error: {message}", file=sys.stderr)
        return status
    except (AuthError, AlarmError) as error:  # etcdctl's form: "Error: etcdserver: permission denied"
        print(f"Error: {error}", file=sys.stderr)
        return ExitCode.ERROR
    except KeyboardInterrupt:
        return ExitCode.INTERRUPTED


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
    kvflags.add_range_args(watch)
    watch.add_argument("--rev", type=_nonnegative, default=0, metavar="R",
                       help="start at revision R (0: from now); R <= the compact revision fails")
    watch.add_argument("--prev-kv", action="store_true", help="also print each key's previous version")
    watch.add_argument("--max-events", type=_positive, metavar="N", help="exit 0 after N events")
    watch.add_argument("--progress", action="store_true",
                       help="also print progress notifications (simple: PROGRESS REV)")
    watch.add_argument("--progress-interval", type=_seconds, default=1.0, metavar="S",
                       help="the node confirms an idle watch every S seconds (default 1)")


def watch_event_lines(event: Any, prev_kv: bool) -> list[bytes]:
    """etcdctl's simple form, raw bytes: the type, then (with --prev-kv) the
    previous key and value, then the key and value (empty for a DELETE)."""
    lines = [event.type_name.encode()]
    if prev_kv and event.prev_kv is not None:
        lines += [event.prev_kv.key, event.prev_kv.value]
    return lines + [event.kv.key, event.kv.value]


def watch_event_json(event: Any) -> dict[str, Any]:
    return {"type": event.type_name, "revision": event.kv.mod_revision, "kv": kv_json(event.kv),
            "prev_kv": kv_json(event.prev_kv) if event.prev_kv is not None else None}


def prepare_watch(args: argparse.Namespace) -> tuple[bytes, bytes]:
    """Check a watch command line before any connection; the span to watch."""
    if args.write_out == "table":  # etcdctl: ExitBadFeature
        raise BadFeatureError("watch prints simple or json (-w table is not supported)")
    return _range_span(args)


def run_watch(args: argparse.Namespace, span: tuple[bytes, bytes], endpoints: list[str], out: TextIO) -> int:
    key, end = span
    deadline = time.monotonic() + args.timeout if args.timeout_given else None
    wanted = args.max_events
    seen = 0
    with Client(endpoints, timeout=args.timeout, attempt_timeout=min(args.attempt_timeout, args.timeout),
                **args.credentials) as client:
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
                        write_lines(out, watch_event_lines(event, args.prev_kv))
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
