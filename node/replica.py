"""This member's copy of the replicated state machine.

One object holds it because a snapshot install replaces the state machine whole:
everyone who reads it (client routing, leases, status, snapshots) holds the
`Replica` and reads `replica.sm` at the time of use.
"""
from __future__ import annotations

from node.address_book import Membership, split_members
from node.snapshot_transfer import unframe_chunks
from node.statemachine import StateMachine
from node.storage import SnapshotRef


class Replica:
    def __init__(self, sm: StateMachine) -> None:
        self.sm = sm


def restore_state(ref: SnapshotRef, chunk_bytes: int, membership: Membership) -> StateMachine:
    """The state machine from a snapshot file, and the members frame that leads it
    (node/address_book.py) into the address book."""
    members, chunks = split_members(unframe_chunks(ref.iter_data(chunk_bytes)))
    if members is not None:
        membership.restore(*members)
    elif ref.meta.conf.voters or ref.meta.conf.learners:
        membership.restore(ref.meta.conf, {})
    return StateMachine.restore(chunks)
