"""A node joining a running cluster asks an existing member who is in it.

Before its log holds anything, a new member only knows the config's initial
members; the leader that will replicate to it may be a member added later. So a
node started with `--join` and an empty data directory first asks any member it
can reach (client protocol `members`, any node's view) for every member's
addresses, retrying until `timeout`. After that the log and snapshots keep its
address book current (node/address_book.py).
"""
from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from cluster.client import Client, ClientError
from node.address_book import Address


class JoinFailed(Exception):
    """No member answered in time."""


def fetch_addresses(endpoints: Sequence[str], cluster_id: str, timeout: float,
                    log: logging.Logger) -> dict[int, Address]:
    deadline = time.monotonic() + timeout
    last = "no endpoint to ask"
    while True:
        for endpoint in endpoints:
            client = Client([endpoint], timeout=1.0, attempt_timeout=1.0)
            try:
                if client.status().get("cluster_id") != cluster_id:
                    last = f"{endpoint} belongs to another cluster"
                    continue
                members = client.members(leader=False)
            except ClientError as error:
                last = f"{endpoint}: {error}"
                continue
            finally:
                client.close()
            book = {int(row["id"]): Address(str(row["peer"]), str(row["client"]))
                    for row in members.get("members", []) if row.get("peer") and row.get("client")}
            if book:
                log.info("joining: node %s told us the addresses of members %s", members.get("node_id"),
                         sorted(book))
                return book
            last = f"{endpoint} knows no member addresses"
        if time.monotonic() >= deadline:
            raise JoinFailed(f"no member answered within {timeout:g} s (last: {last})")
        time.sleep(0.2)
