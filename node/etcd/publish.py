"""etcd's "publish": a member makes its own client URLs known to the cluster.

etcd's MemberAdd knows a new member's peer URLs only; when the member starts, it
publishes its name and client URLs through the log, and only then does MemberList
show them (and `etcdctl --cluster` reach it). jangada's address book is the same
kind of replicated state (node/address_book.py), so a face does the same: once
its node is a member, it compares the book's entry for itself with its own
addresses and, if the book lacks or differs in any, proposes an `update` with
them (through the leader, as any membership change). A member added by the
supervisor or from the config is already right: that costs one members read.
"""
from __future__ import annotations

import asyncio
import logging

from cluster.spec import MemberSpec
from node.etcd import errors
from node.etcd.link import NodeLink

log = logging.getLogger("jangada.etcd")

FIRST_DELAY, MAX_DELAY = 0.1, 5.0


def wanted(member: MemberSpec) -> dict[str, str]:
    """The addresses this member advertises, as the address book holds them."""
    return {"peer": member.peer, "client": member.client, "grpc": member.grpc, "gateway": member.gateway}


async def publish(link: NodeLink, member: MemberSpec) -> None:
    """Until the book holds this member's addresses: read the membership and, when
    this node is a member whose entry differs, propose the update. Returns once
    the entry matches (a node that is never made a member keeps checking, with
    backoff up to MAX_DELAY)."""
    want = wanted(member)
    delay = FIRST_DELAY
    while True:
        try:
            view = await link.members()
            mine = next((row for row in view.get("members", ()) if row.get("id") == member.id), None)
            if mine is not None:
                if all(mine.get(key, "") == value for key, value in want.items()):
                    return
                await link.conf_change("update", member.id, **want)
                log.info("node=%d published its addresses to the cluster", member.id)
                continue  # read back: done when the book shows them
        except errors.EtcdError as error:
            log.debug("node=%d publish: %s", member.id, error.message)
        await asyncio.sleep(delay)
        delay = min(delay * 2, MAX_DELAY)
