"""`python -m node --config FILE --id N [--data-dir DIR]`: run one cluster member.

`python -m node --config FILE --id N --join [HOST:PORT,...] --peer ADDR --client ADDR
[--grpc URL] [--gateway URL]`:
run a member that is not in the config's initial `[[members]]` (added later with
`python -m cluster member add`, or by `python -m supervisor add`). It boots with an
empty membership and learns it from the leader's log or snapshot; with an empty data
directory it first asks an existing member (the --join endpoints, else the config's
members) for everyone's addresses, so it can answer the leader at once.

Exit status: 0 after a graceful shutdown (SIGTERM or SIGINT), 2 for a bad command
line or config (the message names the bad field), 1 for a fail-stop (storage or
state-machine failure, a broken invariant): restart it and recovery reads the disk.
"""
from __future__ import annotations

import argparse
import logging
import os
import re
import signal
import sys
from pathlib import Path
from types import FrameType

from cluster.cluster_state import ENV_LOG_FORMAT
from cluster.spec import ClusterSpec, SpecError, load_spec
from node import unsafe
from node.eventlog import LOG_FORMATS, LOGGER_NAME, configure

DESCRIPTION = """\
Run one member of a jangada cluster: a Raft-replicated, etcd-style key-value store.

The node binds its peer and client addresses from the cluster config, connects to
every other member, recovers its state from its data directory (write-ahead log +
snapshots) and serves clients until SIGTERM or SIGINT. Logs go to stderr, one line
per event, each with node id, term and index.
"""

EPILOG = """\
examples:
  python -m node --config cluster-3 --id 1                 # a shipped config, by name
  python -m node --config my-cluster.toml --id 2 --data-dir /var/lib/jangada/2
  python -m node --config my-cluster.toml --id 4 --join 127.0.0.1:7201 --peer tcp://127.0.0.1:7104 \\
      --client tcp://127.0.0.1:7204        # a new member (then: python -m cluster member add ...)

shipped configs (package `configs`): cluster-1, cluster-3, cluster-5 (127.0.0.1).
exit status: 0 graceful stop, 1 fail-stop (storage/state-machine failure), 2 bad config.
"""


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m node", description=DESCRIPTION, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, metavar="FILE",
                        help="cluster config: a TOML file, or the name of a shipped config (e.g. cluster-3)")
    parser.add_argument("--id", required=True, type=int, metavar="N",
                        help="this node's id: one of the config's [[members]] ids")
    parser.add_argument("--data-dir", type=Path, metavar="DIR",
                        help="data directory (default: the config's cluster.data_dir template with {id} "
                             "and {cluster} filled in)")
    parser.add_argument("--join", nargs="?", const="", default=None, metavar="HOST:PORT,...",
                        help="this node is not an initial member: it joins the running cluster (client "
                             "endpoints of existing members to ask for addresses; default the config's)")
    parser.add_argument("--peer", metavar="tcp://HOST:PORT", help="--join: this node's peer address")
    parser.add_argument("--client", metavar="tcp://HOST:PORT", help="--join: this node's client address")
    parser.add_argument("--grpc", default="", metavar="http://HOST:PORT",
                        help="--join: this node's etcd gRPC URL (default: none, that face is off)")
    parser.add_argument("--gateway", default="", metavar="http://HOST:PORT",
                        help="--join: this node's etcd HTTP gateway URL (default: none, that face is off)")
    parser.add_argument("--join-timeout", type=float, default=60.0, metavar="S",
                        help="--join with an empty data directory: give up after S s without an answer")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                        help="stderr log level (default INFO)")
    parser.add_argument("--log-format", default=os.environ.get(ENV_LOG_FORMAT) or "text", choices=LOG_FORMATS,
                        help="stderr log lines: text, or json (one object per line: ts, level, node, term, "
                             f"commit, applied, msg); default text, or ${ENV_LOG_FORMAT} (which "
                             "`python -m supervisor up --log-format` sets)")
    return parser.parse_args(argv)


def load(args: argparse.Namespace) -> tuple[ClusterSpec, Path]:
    spec = load_spec(args.config)
    if args.join is None:
        if args.peer or args.client or args.grpc or args.gateway:
            raise SpecError(spec.source, "--peer/--client/--grpc/--gateway", "only with --join (initial members' "
                            "addresses come from the config)")
        spec.member(args.id)  # raises SpecError naming --id
    else:
        if args.id < 1:
            raise SpecError(spec.source, "--id", f"must be >= 1, got {args.id}")
        if args.id in spec.ids:
            raise SpecError(spec.source, "--join", f"node {args.id} is an initial member of the config; "
                            "--join is for new members")
        for name in ("peer", "client"):
            value = getattr(args, name)
            if not value or not _TCP.match(value):
                raise SpecError(spec.source, f"--{name}", f"--join needs --{name} tcp://HOST:PORT, got {value!r}")
        for name in ("grpc", "gateway"):
            value = getattr(args, name)
            if value and not _HTTP.match(value):
                raise SpecError(spec.source, f"--{name}", f"{value!r} is not an http://HOST:PORT URL")
    return spec, args.data_dir or spec.data_dir_for(args.id)


#: How long a restarted --join node asks for addresses before relying on its log.
RESTART_ASK_SECONDS = 3.0
_TCP = re.compile(r"^tcp://[^\s:]+:\d{1,5}$")
_HTTP = re.compile(r"^http://[^\s/]+:\d{1,5}$")


def join_endpoints(args: argparse.Namespace, spec: ClusterSpec) -> list[str]:
    """Where a joining node asks for addresses: --join's endpoints, then the config's."""
    found = [f"tcp://{e}" if not e.startswith("tcp://") else e for e in (args.join or "").split(",") if e.strip()]
    return found + [a for a in spec.client_addresses() if a not in found]


def is_fresh(data_dir: Path) -> bool:
    return not data_dir.exists() or not any(data_dir.iterdir())


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    configure(args.log_level, args.log_format)
    log = logging.getLogger(LOGGER_NAME)
    try:
        spec, data_dir = load(args)
    except SpecError as error:
        print(f"jangada node: bad config: {error}", file=sys.stderr)
        return 2
    try:  # test-only broken builds (node/unsafe.py): refused unless confirmed
        unsafe_mode = unsafe.requested(os.environ)
    except unsafe.UnsafeRefused as error:
        print(f"jangada node {args.id}: {error}", file=sys.stderr)
        return 2
    if unsafe_mode is not None:
        unsafe.install(unsafe_mode, log)
    # Imported here so that `--help` and config errors stay fast and need no zmq.
    import zmq

    from node.actor import NodeActor
    from node.collector_policy import CollectorPolicy
    from node.storage import DataDirLocked
    from node.address_book import Address
    join: Address | None = None
    fetched: dict[int, Address] = {}
    if args.join is not None:
        join = Address(args.peer, args.client, args.grpc, args.gateway)
        from node.joining import JoinFailed, fetch_addresses
        fresh = is_fresh(data_dir)
        try:
            # A fresh node cannot answer a leader it has no address for: it must ask.
            # A restarted one has its log (and snapshot); asking is only a courtesy,
            # kept short so a whole-cluster restart does not wait on it.
            fetched = fetch_addresses(join_endpoints(args, spec), spec.cluster_id,
                                      args.join_timeout if fresh else RESTART_ASK_SECONDS, log)
        except JoinFailed as error:
            if fresh:
                print(f"jangada node {args.id}: cannot join: {error}", file=sys.stderr)
                return 1
            log.info("node=%d restarting without asking for addresses: %s", args.id, error)
    collector = CollectorPolicy()
    collector.pause_for_recovery()  # node/collector_policy.py: recovery only builds what it keeps
    try:
        actor = NodeActor(spec, args.id, data_dir, join=join, fetched=fetched)
    except DataDirLocked as error:
        print(f"jangada node {args.id}: {error}", file=sys.stderr)
        return 2
    except SpecError as error:  # e.g. [curve]: a missing or world-readable key file
        print(f"jangada node {args.id}: bad config: {error}", file=sys.stderr)
        return 2
    except (OSError, zmq.ZMQError) as error:
        # e.g. an address already in use, or an unwritable data directory
        print(f"jangada node {args.id}: cannot start: {error}", file=sys.stderr)
        return 1

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("node=%d received %s: stopping", args.id, signal.Signals(signum).name)
        actor.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    actor.collector = collector
    collector.install()
    try:
        actor.run()
    except Exception as error:  # fail-stop: log why, exit non-zero, recovery reads the disk
        log.critical("node=%d fail-stop: %s", args.id, error, exc_info=True)
        return 1
    log.info("node=%d stopped", args.id)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
