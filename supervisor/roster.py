"""Which members a supervised cluster has now, across `up`s: the roster.

`cluster.toml` names the *initial* members and never changes (every node boots
from it: its members are the voters before any membership change). Members added
with `python -m supervisor add` and removed with `remove` are recorded in
`DATA/members.json`, written atomically by those commands (the supervisor itself
only reads it, when it starts and when `add`/`remove` signal it with SIGUSR1):

    {"version": 1, "added": [{"id": 4, "peer": "tcp://...", "client": "tcp://...",
                              "join": ["tcp://...", ...], "grpc": "http://...",
                              "gateway": "http://..."}], "removed": [2]}

(`grpc`/`gateway`, the etcd faces, may be absent: rosters written before them.)

The members now are the config's minus `removed`, plus `added` minus `removed`.
Ids are never reused: the next id is one more than any id the roster or the config
ever named, so a removed member's id cannot come back with someone else's data.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field

from cluster.discovery import Layout
from cluster.spec import ClusterSpec

ROSTER_VERSION = 1
ROSTER_FILE = "members.json"


class RosterError(Exception):
    """An unreadable roster file."""


@dataclass(frozen=True, slots=True)
class Member:
    """A member the supervisor runs. `join` is None for the config's initial members;
    for added ones, the client endpoints its first start asks for addresses."""

    id: int
    peer: str
    client: str
    join: tuple[str, ...] | None = None
    grpc: str = ""
    gateway: str = ""


@dataclass(slots=True)
class Roster:
    added: list[Member] = field(default_factory=list)
    removed: list[int] = field(default_factory=list)

    def current(self, spec: ClusterSpec) -> list[Member]:
        gone = set(self.removed)
        initial = [Member(m.id, m.peer, m.client, grpc=m.grpc, gateway=m.gateway)
                   for m in spec.members if m.id not in gone]
        return initial + [m for m in self.added if m.id not in gone]

    def next_id(self, spec: ClusterSpec) -> int:
        return max([*spec.ids, *(m.id for m in self.added), *self.removed]) + 1

    def add(self, member: Member) -> None:
        self.added.append(member)

    def forget_added(self, node_id: int) -> None:
        """Undo an `add` that did not reach the cluster."""
        self.added = [m for m in self.added if m.id != node_id]

    def remove(self, node_id: int) -> None:
        if node_id not in self.removed:
            self.removed.append(node_id)

    def to_json(self) -> str:
        added = [{**asdict(m), "join": list(m.join or ())} for m in self.added]
        return json.dumps({"version": ROSTER_VERSION, "added": added, "removed": self.removed}, indent=2) + "\n"


def load_roster(layout: Layout) -> Roster:
    path = layout.root / ROSTER_FILE
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        return Roster()
    except (OSError, ValueError) as error:
        raise RosterError(f"{path}: unreadable ({error})") from None
    try:
        if doc.get("version") != ROSTER_VERSION:
            raise RosterError(f"{path}: unsupported version {doc.get('version')!r}")
        added = [Member(int(m["id"]), str(m["peer"]), str(m["client"]), tuple(str(e) for e in m["join"]),
                        str(m.get("grpc", "")), str(m.get("gateway", "")))
                 for m in doc["added"]]
        return Roster(added, [int(i) for i in doc["removed"]])
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise RosterError(f"{path}: unreadable ({error!r})") from None


def save_roster(layout: Layout, roster: Roster) -> None:
    """Atomically replace the roster (tmp file + rename)."""
    path = layout.root / ROSTER_FILE
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(roster.to_json())
    tmp.replace(path)
