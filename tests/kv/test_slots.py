"""cluster/slots.py: a slot constructor builds what the class's __init__ builds."""
from __future__ import annotations

from dataclasses import dataclass

import pytest

from cluster.kv import Command, Put, Range
from cluster.kv.enums import SortOrder, SortTarget
from cluster.protocol import KvReply, KvRequest
from cluster.slots import slot_constructor


@pytest.mark.parametrize("obj", [
    Put(b"k", b"v", 7, True, False, True),
    Range(b"a", b"z", 5, 10, True, False, SortTarget.MOD, SortOrder.DESCEND),
    Command(Put(b"k", b"v"), 3, 4, "alice"),
    KvRequest(1, b"cmd", True, "token"),
    KvReply(2, 3, b"result", False),
])
def test_a_slot_constructor_builds_an_equal_frozen_object(obj: object) -> None:
    cls = type(obj)
    names = list(cls.__dataclass_fields__)  # type: ignore[attr-defined]
    built = slot_constructor(cls)(*(getattr(obj, name) for name in names))
    assert type(built) is cls and built == obj and hash(built) == hash(obj)
    with pytest.raises(AttributeError):  # still frozen (FrozenInstanceError)
        setattr(built, names[0], None)


def test_every_field_is_required_and_classes_without_slots_are_refused() -> None:
    with pytest.raises(TypeError):
        slot_constructor(KvReply)(1, 2, b"r")  # serializable missing: no defaults

    @dataclass(frozen=True)
    class Plain:
        x: int

    with pytest.raises(TypeError, match="not a slotted dataclass"):
        slot_constructor(Plain)
