"""The CLI's `alarm` command: etcdctl 3.4's `alarm list` and `alarm disarm`
(etcdctl/ctlv3/command/alarm_command.go), with its output.

    python -m cluster alarm list      # memberID:1 alarm:NOSPACE
    python -m cluster alarm disarm    # disarms every raised alarm, prints each

etcdctl's simple printer prints each alarm member as its protobuf text
(`memberID:N alarm:NAME `, with a trailing space), one a line, and nothing when there is none; `disarm`
prints what it disarmed. `-w json` prints etcdctl's JSON shape: a header with
the revision and the alarms with their numeric type. Alarms are the root user's
while auth is on (docs/operations.md, "Space").
"""
from __future__ import annotations

import argparse
from typing import Any, TextIO

from cluster.client import Client
from cluster.kv.alarms import AlarmMember
from cluster.output import dumps

#: The top-level commands this module parses and runs.
ALARM_COMMANDS = ("alarm",)


def add_parsers(sub: Any, common: argparse.ArgumentParser, parser_class: type[argparse.ArgumentParser]) -> None:
    """The `alarm` command group under the CLI's subparsers."""
    alarm = sub.add_parser("alarm", parents=[common], help="alarm list | disarm")
    actions = alarm.add_subparsers(dest="action", metavar="list|disarm", parser_class=parser_class)
    actions.required = True
    actions.add_parser("list", parents=[common], help="list all alarms")
    actions.add_parser("disarm", parents=[common], help="disarm all alarms")


def alarm_line(alarm: AlarmMember) -> str:
    """etcdctl's `%+v` of an AlarmMember: its protobuf text, trailing space
    included (compared with etcd's in tests/etcd/test_maintenance.py)."""
    return f"memberID:{alarm.member_id} alarm:{alarm.alarm.name} "


def run(client: Client, args: argparse.Namespace, out: TextIO) -> int:
    alarms = client.alarm_list() if args.action == "list" else client.alarm_disarm()
    if getattr(args, "write_out", "simple") == "json":
        print(dumps({"alarms": [{"memberID": a.member_id, "alarm": int(a.alarm)} for a in alarms]}), file=out)
    else:
        for alarm in alarms:
            print(alarm_line(alarm), file=out)
    return 0
