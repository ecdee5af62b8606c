"""`python -m supervisor COMMAND`: run a local jangada cluster, look at it, break it.

Thin: parse, dispatch, turn errors into one line and an exit status (0 ok, 1 the
operation failed, 2 usage). The work is in launch/supervise/control/chaos/status.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

from cluster.curve_keys import KeyFileError
from cluster.cluster_state import ENV_LOG_FORMAT
from cluster.discovery import ENV_DATA_DIR, Layout, default_layout
from cluster.spec import SpecError, load_spec
from cluster.output import format_table
from supervisor import chaos as chaos_mod
from supervisor import chaoscheck, control, launch, member_changes, member_replace, netns, security
from supervisor.display import security_line
from supervisor.statefile import supervisor_process
from supervisor.status import HEADERS, alarm_lines, collect, leader_of, table_rows

DESCRIPTION = """\
Run a jangada cluster on this machine: N `python -m node` processes on 127.0.0.1,
supervised (a node that dies is restarted, with backoff), with their data and logs
in ./jangada-data (or --data-dir, or $JANGADA_DATA_DIR). `python -m cluster` and
the commands below find the running cluster there with no flags.
"""

EPILOG = """\
examples:
  python -m supervisor up 5                 # foreground: live status table, Ctrl-C stops it
  python -m supervisor up 3 --detach        # background: returns once a leader exists
  python -m supervisor up 3 --secure        # CURVE on the native ports, TLS on the etcd faces (docs/security.md)
  python -m supervisor keys --config my.toml  # keys and certificates for a hand-written (multi-host) config
  python -m supervisor status [--json]
  etcdctl --endpoints=$(python -m supervisor status --etcd-endpoints) member list
  kill -9 $(python -m supervisor status --leader-pid)
  python -m supervisor kill leader          # SIGKILL; the supervisor restarts it
  python -m supervisor up 3 --detach --from-snapshot backup.snap   # a new cluster from a backup
  python -m supervisor up 3 --detach --fault-injection   # let chaos --drop/--check isolate nodes
  python -m supervisor up 3 --detach --netns   # (root) each node in its own network namespace
  python -m supervisor chaos --partition --duration 60   # (--netns) cut real links, split with nft rules
  python -m supervisor chaos --duration 30 --interval 2 --pause --drop
  python -m supervisor chaos --check --duration 60   # workload + faults, then linearizable? lost? converged?
  python -m supervisor logs 2 -f
  python -m supervisor add                  # a new member: learner, catch up, voter
  python -m supervisor remove 2             # take node 2 out of the cluster, then stop it
  python -m supervisor down [--purge]
  kill -9 <supervisor pid>; python -m supervisor up -d   # nodes keep serving; the new supervisor adopts them

exit status: 0 ok, 1 the operation failed, 2 usage error.
"""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        raise SystemExit(2)


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    common = _Parser(add_help=False)
    common.add_argument("--data-dir", type=Path, default=argparse.SUPPRESS, metavar="DIR",
                        help="the cluster's data directory (default ./jangada-data or $JANGADA_DATA_DIR)")
    parser = _Parser(prog="python -m supervisor", description=DESCRIPTION, epilog=EPILOG,
                     formatter_class=argparse.RawDescriptionHelpFormatter, parents=[common])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    up = sub.add_parser("up", parents=[common], help="start a cluster of N nodes (default 3)")
    up.add_argument("size", nargs="?", type=int, metavar="N",
                    help="number of nodes (1-99; default 3, or the size of the cluster already in --data-dir)")
    up.add_argument("--detach", "-d", action="store_true", help="run in the background; return once a leader exists")
    up.add_argument("--base-port", type=int, metavar="P",
                    help="fixed ports: peer P+id, client P+100+id, etcd gRPC P+200+id, etcd gateway P+300+id, "
                         "metrics P+400+id "
                         "(default: free ports chosen at the first up)")
    up.add_argument("--config", metavar="FILE", help="use this cluster config instead of generating one")
    up.add_argument("--fault-injection", action="store_true",
                    help="allow the drop-traffic fault (chaos --drop, chaos --check): writes "
                         "[faults] injection = true into the cluster's config")
    up.add_argument("--timeout", type=_positive, default=30.0, metavar="S",
                    help="give up if no leader is elected within S seconds (default 30)")
    up.add_argument("--grace", type=_positive, default=5.0, metavar="S",
                    help="on stop, SIGKILL nodes still running S seconds after SIGTERM (default 5)")
    up.add_argument("--secure", action="store_true",
                    help="a new cluster gets CURVE keys and TLS certificates (in DIR/keys): encrypted, "
                         "authenticated native and peer ports, https:// etcd faces (see docs/security.md)")
    up.add_argument("--log-format", choices=("text", "json"), default=None,
                    help="the nodes' log lines (node-N.log): text (default) or json, one object per line")
    up.add_argument("--from-snapshot", metavar="FILE",
                    help="a NEW cluster starting from this snapshot file (python -m cluster snapshot save): "
                         "every member's data directory is restored from it first")
    up.add_argument("--netns", action="store_true",
                    help="Linux, root: each node in its own network namespace with its own address on a private "
                         "bridge (removed by `down`), for real multi-host addressing and real partitions "
                         "(chaos --partition); see supervisor/netns.py")
    up.add_argument("--supervise", action="store_true", help=argparse.SUPPRESS)  # the detached child

    keys = sub.add_parser("keys", help="create CURVE key files and TLS certificates for a config's members",
                          description="Create each member's CURVE key file (mode 0600, in a 0700 directory), a TLS "
                                      "CA, each member's server certificate and root's client certificate, then "
                                      "print the lines to add to the config (public keys only: no secret is ever "
                                      "printed). Existing files are kept. Copy member N's files to member N's "
                                      "host only.")
    keys.add_argument("--config", required=True, metavar="FILE", help="the cluster config (TOML)")
    keys.add_argument("--out", type=Path, metavar="DIR",
                      help="where to write them (default: keys/ next to the config)")

    status = sub.add_parser("status", parents=[common], help="every node: pid, role, term, indexes, WAL, RSS")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.add_argument("--leader-pid", action="store_true",
                        help="print only the leader's pid (exit 1 if no leader): kill -9 $(... --leader-pid)")
    status.add_argument("--etcd-endpoints", action="store_true",
                        help="print only the nodes' etcd gRPC HOST:PORT list, comma-separated (exit 1 if no node "
                             "has one): etcdctl --endpoints=$(... --etcd-endpoints)")

    down = sub.add_parser("down", parents=[common], help="stop the cluster (SIGTERM, then SIGKILL)")
    down.add_argument("--purge", action="store_true", help="also remove the data directory")
    down.add_argument("--grace", type=_positive, default=5.0, metavar="S")

    kill = sub.add_parser("kill", parents=[common], help="signal one node (SIGKILL by default); it is restarted")
    kill.add_argument("node", metavar="ID", help="node id, or `leader`")
    kill.add_argument("--signal", "-s", default="KILL", metavar="SIG", help="KILL (default), TERM, INT, STOP, CONT")

    restart = sub.add_parser("restart", parents=[common], help="stop one node gracefully and wait for its restart")
    restart.add_argument("node", metavar="ID", help="node id, or `leader`")
    restart.add_argument("--grace", type=_positive, default=5.0, metavar="S")
    restart.add_argument("--timeout", type=_positive, default=30.0, metavar="S")

    logs = sub.add_parser("logs", parents=[common], help="show a node's log")
    logs.add_argument("node", metavar="ID")
    logs.add_argument("-f", "--follow", action="store_true", help="keep printing what is appended (Ctrl-C ends)")
    logs.add_argument("-n", "--lines", type=int, metavar="N", help="only the last N lines")

    add = sub.add_parser("add", parents=[common], help="add a member: start it, add as learner, promote",
                         description=member_changes.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add.add_argument("--timeout", type=_positive, default=120.0, metavar="S",
                     help="give up if the new member is not a voter within S seconds (default 120)")
    remove = sub.add_parser("remove", parents=[common], help="remove member ID from the cluster, then stop it",
                            description=member_changes.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    remove.add_argument("node", metavar="ID")
    remove.add_argument("--timeout", type=_positive, default=60.0, metavar="S")
    rep = sub.add_parser("replace", parents=[common], help="replace member ID by a new one in one joint step",
                         description=member_replace.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    rep.add_argument("node", metavar="ID")
    rep.add_argument("--timeout", type=_positive, default=120.0, metavar="S")

    ch = sub.add_parser("chaos", parents=[common], help="kill and pause random nodes for a while",
                        description=chaos_mod.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ch.add_argument("--duration", type=_positive, default=30.0, metavar="S", help="seconds in all (<= 3600)")
    ch.add_argument("--interval", type=_positive, default=2.0, metavar="S", help="seconds between events (0.1-60)")
    ch.add_argument("--no-kill", dest="kill", action="store_false", help="do not SIGKILL nodes")
    ch.add_argument("--pause", action="store_true", help="also SIGSTOP nodes, SIGCONT after --pause-for")
    ch.add_argument("--pause-for", type=_positive, default=1.0, metavar="S")
    ch.add_argument("--drop", action="store_true",
                    help="also isolate nodes: the node drops all peer traffic for --drop-for seconds")
    ch.add_argument("--partition", action="store_true",
                    help="(an `up --netns` cluster) isolations and splits are real: a node's link goes down, or "
                         "nft rules drop all packets between a minority and the rest (the default with --check "
                         "on a --netns cluster)")
    ch.add_argument("--drop-for", type=_positive, default=1.0, metavar="S")
    ch.add_argument("--leader", action="store_true", help="aim at the current leader")
    ch.add_argument("--supervisor", action="store_true",
                    help="also SIGKILL the supervisor; chaos starts a new one, which adopts the running nodes")
    ch.add_argument("--max-faulty", type=int, metavar="K",
                    help="at most K nodes dead or paused at once (default: a minority)")
    ch.add_argument("--seed", type=int, help="random seed (events are then reproducible given the same status)")
    ch.add_argument("--check", action="store_true",
                    help="run a recorded workload during the chaos (all fault kinds on), heal, then check "
                         "linearizability, lost writes and convergence; exit 1 unless all hold")
    ch.add_argument("--clients", type=int, default=4, metavar="K", help="--check: workload client threads")
    ch.add_argument("--keys", type=int, default=5, metavar="N", help="--check: size of the key set")
    ch.add_argument("--via", choices=("native", "grpc"), default="native",
                    help="--check: the workload's protocol: jangada's native client, or etcd's v3 API "
                         "through the members' gRPC faces (default native)")
    ch.add_argument("--max-ops", type=int, default=1_000_000, metavar="N",
                    help="--check: the workload stops after N operations in all (default 1000000)")
    ch.add_argument("--heal-timeout", type=_positive, default=60.0, metavar="S",
                    help="--check: wait at most S s for every node to be back (default 60)")
    ch.add_argument("--converge-timeout", type=_positive, default=30.0, metavar="S",
                    help="--check: wait at most S s for identical replicas (default 30)")
    return parser


def _layout(args: argparse.Namespace) -> Layout:
    data_dir: Path | None = getattr(args, "data_dir", None)
    return Layout(data_dir.absolute()) if data_dir else default_layout()


def cmd_up(args: argparse.Namespace, layout: Layout) -> int:
    if args.size is not None and not 1 <= args.size <= 99:
        raise control.ControlError(f"N must be 1..99, got {args.size}", 2)
    if not args.supervise:
        launch.check_free(layout, sys.stdout)
    if args.log_format:
        # Inherited by every node this supervisor spawns (and by its detached self):
        # `python -m node` takes its --log-format default from it.
        os.environ[ENV_LOG_FORMAT] = args.log_format
    spec = launch.prepare(layout, args.size, args.base_port, args.config, args.fault_injection, args.secure,
                          netns_wanted=args.netns)
    if args.from_snapshot and not args.supervise:
        launch.restore_members(layout, spec, args.from_snapshot, sys.stdout)
    if args.detach and not args.supervise:
        return launch.up_detached(layout, spec, args.timeout, args.grace, sys.stdout)
    return launch.up_foreground(layout, spec, args.timeout, args.grace)


def cmd_status(args: argparse.Namespace, layout: Layout) -> int:
    state = control.load_state(layout)
    if args.etcd_endpoints:  # from the state file alone: no node is asked anything
        if not state.etcd_endpoints():
            raise control.ControlError("no node of this cluster has an etcd gRPC endpoint (its config has no `grpc`)")
        print(",".join(state.etcd_endpoints()))
        return 0
    statuses = collect(state)
    supervisor = supervisor_process(state) is not None
    if args.leader_pid:
        leader = leader_of(statuses)
        if leader is None:
            raise control.ControlError("no node claims to be the leader right now")
        print(leader.pid)
        return 0
    if args.json:
        print(json.dumps({"cluster_id": state.cluster_id, "config": state.config, "data_dir": state.data_dir,
                          "supervisor_pid": state.supervisor_pid, "supervisor_alive": supervisor,
                          "nodes": [s.to_dict() for s in statuses]}, indent=2))
        return 0
    print(f"cluster {state.cluster_id}  supervisor pid {state.supervisor_pid}"
          f"{'' if supervisor else ' (NOT RUNNING: nodes still alive keep serving; `up` adopts them, `down` stops them)'}"
          f"  data {state.data_dir}")
    print(security_line(state))
    print(format_table(HEADERS, table_rows(statuses)))
    for line in alarm_lines(statuses):
        print(line)
    for s in statuses:
        if s.last_exit:
            print(f"node {s.id} last exit: {s.last_exit}")
    return 0


def cmd_kill(args: argparse.Namespace, layout: Layout) -> int:
    name = args.signal.upper().removeprefix("SIG")
    if name not in ("KILL", "TERM", "INT", "STOP", "CONT"):
        raise control.ControlError(f"--signal {args.signal}: use KILL, TERM, INT, STOP or CONT", 2)
    return control.kill(layout, args.node, signal.Signals[f"SIG{name}"], sys.stdout)


def cmd_chaos(args: argparse.Namespace, layout: Layout) -> int:
    options = chaos_mod.ChaosOptions(duration=args.duration, interval=args.interval, kill=args.kill,
                                     pause=args.pause or args.check, drop=args.drop or args.check, drop_for=args.drop_for,
                                     leader=args.leader, pause_for=args.pause_for,
                                     max_faulty=args.max_faulty, seed=args.seed, supervisor=args.supervisor,
                                     partition=args.partition or (args.check and netns.load(layout) is not None))
    if args.partition:
        options = replace(options, drop=True, split=True)
    try:
        options.check()
    except ValueError as error:
        raise control.ControlError(str(error), 2) from None
    if args.check:
        check = chaoscheck.CheckOptions(clients=args.clients, keys=args.keys, max_ops=args.max_ops, via=args.via,
                                        heal_timeout=args.heal_timeout, converge_timeout=args.converge_timeout)
        return chaoscheck.run(layout, options, sys.stdout, check)
    return chaos_mod.Chaos(layout, options, sys.stdout).run()


def cmd_keys(args: argparse.Namespace) -> int:
    try:
        spec = load_spec(args.config)
    except SpecError as error:
        raise control.ControlError(str(error), 2) from None
    out: Path = (args.out or Path(args.config).absolute().parent / "keys").absolute()
    files = security.SecurityFiles(out)
    try:
        publics = security.create(spec, files)
    except (OSError, KeyFileError) as error:
        raise control.ControlError(str(error)) from None
    print(f"# keys and certificates of {len(spec.members)} members in {out} (secret files mode 0600; "
          f"copy member N's files to member N's host only)")
    print(f"# add to {args.config}:")
    print("\n".join(security.config_lines(spec, publics, files)))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    layout = _layout(args)
    with _clients_find(layout):
        return _dispatch(parser, args, layout)


@contextlib.contextmanager
def _clients_find(layout: Layout) -> Iterator[None]:
    """For the command's length, clients made in this process (status, chaos, the
    check's workload) find this cluster's state file, and with it a secure
    cluster's CURVE keys (cluster/curve_keys.py), even with --data-dir."""
    before = os.environ.get(ENV_DATA_DIR)
    os.environ[ENV_DATA_DIR] = str(layout.root)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(ENV_DATA_DIR, None)
        else:
            os.environ[ENV_DATA_DIR] = before


def _dispatch(parser: argparse.ArgumentParser, args: argparse.Namespace, layout: Layout) -> int:
    try:
        match args.command:
            case "up":
                return cmd_up(args, layout)
            case "keys":
                return cmd_keys(args)
            case "status":
                return cmd_status(args, layout)
            case "down":
                return control.down(layout, args.purge, args.grace, sys.stdout)
            case "kill":
                return cmd_kill(args, layout)
            case "restart":
                return control.restart(layout, args.node, args.grace, args.timeout, sys.stdout)
            case "logs":
                return control.logs(layout, args.node, args.follow, args.lines)
            case "chaos":
                return cmd_chaos(args, layout)
            case "add":
                return member_changes.add(layout, args.timeout, sys.stdout)
            case "remove":
                return member_changes.remove(layout, args.node, args.timeout, sys.stdout)
            case "replace":
                return member_replace.replace(layout, args.node, args.timeout, sys.stdout)
    except control.ControlError as error:
        print(f"jangada supervisor: {error}", file=sys.stderr)
        return error.status
    except KeyboardInterrupt:
        return 130
    parser.error(f"unknown command {args.command}")
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
