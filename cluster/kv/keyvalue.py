"""One version of one key, as etcd's mvccpb.KeyValue.

`KeyValue` is a NamedTuple rather than the frozen dataclass the style guide
prefers for values, on purpose: one is built for every write on the apply hot
path (a frozen dataclass costs ~3x more to construct), and a tuple packs to
msgpack as-is, which keeps snapshots and result encoding free of conversion.
"""
from __future__ import annotations

from typing import NamedTuple


class KeyValue(NamedTuple):
    """A key at one revision.

    Invariants: a live version has `version >= 1` and
    `create_revision <= mod_revision`; a *tombstone* (the record of a delete,
    kept in history only, never returned by reads) has `version == 0`,
    `create_revision == 0`, an empty value and `mod_revision` = the delete's
    revision. `lease` 0 means no lease.
    """

    key: bytes
    value: bytes
    create_revision: int
    mod_revision: int
    version: int
    lease: int = 0

    @property
    def is_tombstone(self) -> bool:
        return self.version == 0


def tombstone(key: bytes, revision: int) -> KeyValue:
    """The history record of deleting `key` at `revision`."""
    return KeyValue(key, b"", 0, revision, 0, 0)
