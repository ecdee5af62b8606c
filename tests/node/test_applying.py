"""Applier.apply (node/applying.py): the leader applies its own proposal with the
command its router decoded, and decodes anything else from the entry's bytes."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

from cluster.kv import Put, decode_command, encode_command
from node.applying import Applier
from node.raft import Entry
from node.requests import PendingRequests, Waiter
from node.statemachine.machine import StateMachine


class RecordingMachine(StateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.given: list[Any] = []

    def apply(self, index: int, data: bytes, decoded: Any = None) -> Any:
        self.given.append(decoded)
        return super().apply(index, data, decoded)


@dataclass
class Replica:
    sm: RecordingMachine = field(default_factory=RecordingMachine)


@dataclass
class Router:
    requests: PendingRequests = field(default_factory=lambda: PendingRequests(100))
    answered: list[tuple[int, Any]] = field(default_factory=list)

    def answer_write(self, entry: Entry, result: Any) -> None:
        self.requests.write_applied(entry.index, entry.term)
        self.answered.append((entry.index, result))


def test_the_leaders_own_proposal_applies_with_the_decoded_command_and_others_decode() -> None:
    replica, router = Replica(), Router()
    applier = Applier(1, cast(Any, replica), cast(Any, None), cast(Any, router), cast(Any, None),
                      cast(Any, None), cast(Any, None), 1024, cast(Any, None), cast(Any, None))
    mine = encode_command(Put(b"a", b"1"))
    decoded = decode_command(mine)
    router.requests.add_write(1, 2, Waiter(b"c", 1, mine, 9.0, decoded=decoded))
    # Index 2 was proposed by this node in an earlier term and overwritten by another
    # leader's entry: other bytes, so the waiter's decoded command must not be used.
    stale = encode_command(Put(b"b", b"old"))
    router.requests.add_write(2, 1, Waiter(b"c", 2, stale, 9.0, decoded=decode_command(stale)))
    theirs = encode_command(Put(b"b", b"new"))
    applier.apply(Entry(2, 1, mine))
    applier.apply(Entry(2, 2, theirs))
    applier.apply(Entry(2, 3, encode_command(Put(b"c", b"3"))))  # nobody waits here
    assert replica.sm.given == [decoded, None, None]
    assert [kv.value for kv in (replica.sm.get(b"a"), replica.sm.get(b"b"), replica.sm.get(b"c"))] == \
        [b"1", b"new", b"3"]
    assert [index for index, _ in router.answered] == [1, 2]
