"""`member replace OLD NEW` and `member change --add ... --remove ...`: several voters
in one step, through joint consensus (a jangada extension: etcd's API changes one
member per call; docs/raft-core.md, "Joint consensus").

How: each new member is added as a learner (one change each, as `member add`),
waits until it has caught up -- the leader refuses to promote a lagging learner, so
the joint step is retried until it is accepted -- then ONE joint change promotes the
new members and removes the old ones; the leader leaves the joint configuration by
itself once that commits. While joint, every commit and election needs a majority
of the old voters and one of the new, so the cluster never passes through a
configuration weaker than either. The members to add must already be running
(started with --join), as for `member add`.
"""
from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

from cluster.client import Client
from cluster.errors import ClientError, InvalidRequestError, RefusedError
from cluster.protocol import ConfChangeRequest

WHAT = ("replace", "change")


@dataclass(frozen=True, slots=True)
class NewMember:
    id: int
    peer: str
    client: str = ""
    grpc: str = ""
    gateway: str = ""


def add_parsers(members: Any, common: argparse.ArgumentParser, node_id: Callable[[str], int],
                address: Callable[[str], str], url: Callable[[str], str]) -> None:
    """Register `member replace` and `member change` (cluster/cli.py passes its
    argument types, so both read ids and addresses exactly as `member add`)."""
    replace = members.add_parser("replace", parents=[common], description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 help="replace voter OLD by a new member NEW in one joint step")
    replace.add_argument("old_id", type=node_id, metavar="OLD")
    replace.add_argument("member_id", type=node_id, metavar="NEW")
    replace.add_argument("--peer", "--peer-urls", required=True, type=address, metavar="HOST:PORT",
                         help="the new member's peer address")
    replace.add_argument("--client", "--client-urls", type=address, metavar="HOST:PORT",
                         help="its client address (default: none)")
    replace.add_argument("--grpc", type=url, metavar="HOST:PORT", help="its etcd gRPC address (default: none)")
    replace.add_argument("--gateway", type=url, metavar="HOST:PORT",
                         help="its etcd HTTP gateway address (default: none)")
    change = members.add_parser("change", parents=[common], description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                help="add and remove several voters in one joint step")
    change.add_argument("--add", action="append", default=[], metavar="ID=PEER[,CLIENT]",
                        type=_new_member(node_id, address),
                        help="a new voter: id, peer HOST:PORT and optional client HOST:PORT (repeatable)")
    change.add_argument("--remove", action="append", default=[], type=node_id, metavar="ID",
                        help="a voter to remove (repeatable; the leader too)")


def _new_member(node_id: Callable[[str], int], address: Callable[[str], str]) -> Callable[[str], NewMember]:
    def parse(text: str) -> NewMember:
        ident, sep, rest = text.partition("=")
        if not sep or not rest:
            raise argparse.ArgumentTypeError(f"--add wants ID=PEER[,CLIENT], got {text!r}")
        peer, _, client = rest.partition(",")
        return NewMember(node_id(ident), address(peer), address(client) if client else "")
    return parse


def run(client: Client, args: argparse.Namespace, out: TextIO) -> int:
    if args.what == "replace":
        adds = [NewMember(args.member_id, args.peer, args.client or "", args.grpc or "", args.gateway or "")]
        removes = [args.old_id]
    else:
        adds, removes = list(args.add), list(args.remove)
    if not adds and not removes:
        raise argparse.ArgumentTypeError("member change needs at least one --add or --remove")
    members = change_voters(client, adds, removes, time.monotonic() + args.timeout,
                            lambda line: print(line, file=out, flush=True))
    print(f"voters now {members.get('voters')}, learners {members.get('learners')}", file=out)
    return 0


class ChangeFailed(ClientError):
    """The joint change could not be made (the reason says which step)."""


def change_voters(client: Client, adds: list[NewMember], removes: list[int], deadline: float,
                  say: Callable[[str], None], poll: float = 0.2) -> dict[str, Any]:
    """Add `adds` as learners, wait for them, then one joint step promoting them and
    removing `removes`; returns the membership once the joint configuration is left.
    Safe to run again after an interruption: members already added are not re-added."""
    members = client.members()
    voters, learners = set(members.get("voters", [])), set(members.get("learners", []))
    for gone in removes:
        if gone not in voters:
            raise ChangeFailed(f"node {gone} is not a voter (voters {sorted(voters)})")
    for new in adds:
        if new.id in voters:
            raise ChangeFailed(f"node {new.id} is already a voter")
        if new.id not in learners:
            client.member_add(new.id, new.peer, new.client, grpc=new.grpc, gateway=new.gateway)
            say(f"added node {new.id} as a learner")
    changes = ([ConfChangeRequest(0, "promote", new.id) for new in adds]
               + [ConfChangeRequest(0, "remove", gone) for gone in removes])
    target = (voters | {new.id for new in adds}) - set(removes)
    last = ""
    while True:
        try:
            client.member_joint_change(changes)
            say(f"entered the joint configuration: old voters {sorted(voters)}, new {sorted(target)}")
            break
        except RefusedError as error:  # a learner is still catching up
            last = str(error)
        except InvalidRequestError as error:
            if set(client.members().get("voters", [])) == target:
                break  # an earlier attempt whose answer was lost did it
            raise ChangeFailed(f"the cluster refused the joint change: {error}") from None
        if time.monotonic() >= deadline:
            raise ChangeFailed(f"the new members did not catch up in time ({last}); they stay learners")
        time.sleep(poll)
    while True:  # the leader leaves the joint configuration once entering it commits
        try:
            members = client.members()
            if not members.get("voters_outgoing") and set(members.get("voters", [])) == target:
                say("left the joint configuration")
                return members
        except ClientError as error:
            last = f"{type(error).__name__}: {error}"
        if time.monotonic() >= deadline:
            raise ChangeFailed(f"the joint configuration was not left in time ({last})")
        time.sleep(poll)
