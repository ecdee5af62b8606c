"""This member's copy of the replicated state machine.

One object holds it because a snapshot install replaces the state machine whole:
everyone who reads it (client routing, leases, status, snapshots) holds the
`Replica` and reads `replica.sm` at the time of use.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cluster.kv.limits import Limits
from cluster.spec import LimitsSpec
from node.address_book import Address, Membership, split_members
from node.raft import ConfState
from node.snapshot_transfer import unframe_chunks
from node.statemachine import StateMachine
from node.storage import SnapshotRef


@dataclass(frozen=True, slots=True)
class PreparedState:
    """A received snapshot's state machine, built before the core was told the
    snapshot arrived (node/snapshot_install.py), and the members frame that leads
    the file `path`: Ready step 3 swaps it in instead of restoring the file."""

    path: Path
    machine: StateMachine
    members: tuple[ConfState, dict[int, Address]] | None


class Replica:
    def __init__(self, sm: StateMachine) -> None:
        self.sm = sm
        #: the state machine of a snapshot about to be installed, already built
        self.prepared: PreparedState | None = None
        #: state machines an install replaced, emptied a step at a time (node/snapshot_install.py)
        self.retired: list[Iterator[None]] = []

    def replace(self, sm: StateMachine, teardown_step: int) -> None:
        """Take `sm` as this member's state; the old one is torn down over later
        loop turns, `teardown_step` keys at a time (freeing it at once would stall)."""
        old, self.sm = self.sm, sm
        self.retired.append(old.teardown_steps(teardown_step))

    def take_prepared(self, ref: SnapshotRef) -> PreparedState | None:
        """The prepared state of the file `ref`, if it is the one prepared (and
        forget it either way: a snapshot is installed once)."""
        prepared, self.prepared = self.prepared, None
        return prepared if prepared is not None and prepared.path == ref.path else None


#: etcd's --max-request-bytes default, under which a value keeps Limits' own bound.
DEFAULT_MAX_REQUEST_BYTES = LimitsSpec().max_request_bytes


def state_machine_limits(spec: LimitsSpec) -> Limits:
    """The state machine's Limits from the config's [limits] (every member has
    the same config, so every replica checks the same rules): etcd's
    --max-txn-ops as is; --max-request-bytes bounds a value too (a value must fit
    in a request): below its default it lowers the 1 MiB value bound, above it
    raises the value bound to it."""
    default = Limits()
    request_bytes = spec.max_request_bytes
    value_bytes = (min(default.max_value_bytes, request_bytes) if request_bytes <= DEFAULT_MAX_REQUEST_BYTES
                   else request_bytes)
    return Limits(max_txn_ops=spec.max_txn_ops, max_value_bytes=value_bytes)


def restore_state(ref: SnapshotRef, chunk_bytes: int, membership: Membership,
                  limits: Limits = Limits()) -> StateMachine:
    """The state machine from a snapshot file, and the members frame that leads it
    (node/address_book.py) into the address book."""
    members, chunks = split_members(unframe_chunks(ref.iter_data(chunk_bytes)))
    restore_members(ref, members, membership)
    return StateMachine.restore(chunks, limits)


def restore_members(ref: SnapshotRef, members: tuple[ConfState, dict[int, Address]] | None,
                    membership: Membership) -> None:
    """The address book takes the snapshot's members frame (older files have none:
    then the configuration of its metadata, without addresses)."""
    if members is not None:
        membership.restore(*members)
    elif ref.meta.conf.voters or ref.meta.conf.learners:
        membership.restore(ref.meta.conf, {})
