"""A hand-driven fabric for scenario tests: real cores, a message queue that the test
delivers (or drops) explicitly, and a 'disk' per node that survives crashes."""
from __future__ import annotations

import random
from collections.abc import Callable, Sequence

from node.raft import (
    Config, ConfState, Entry, HardState, Message, RaftCore, ReadState, Role, Snapshot,
)
from node.ready_handler import ReadyPorts, handle_ready

#: Decides the fate of one message: True delivers it, False drops it, and a message
#: delivers that replacement instead (e.g. the same AppendEntries with fewer entries).
Filter = Callable[[Message], "bool | Message"]


def entries_for_terms(terms: Sequence[int]) -> list[Entry]:
    """A log whose entry i has term terms[i-1]; the payload names (index, term), so two
    logs agree on an entry exactly when they agree on its index and term."""
    return [Entry(t, i, b"%d-%d" % (i, t)) for i, t in enumerate(terms, start=1)]


class FabricPorts:
    """`handle_ready`'s ports for one fabric node: its disk is a (hard state, log)
    pair in `Fabric.disk`; messages join the shared queue."""

    def __init__(self, fabric: Fabric, node: int) -> None:
        self.fabric = fabric
        self.node = node
        self.send = fabric.queue.append
        self.apply = fabric.applied[node].append

    def update_members(self, appended: list[Entry], conf: ConfState | None) -> None:
        pass

    def install_snapshot(self, snapshot: Snapshot) -> None:
        raise AssertionError("the fabric's scenarios never send snapshots")

    def append(self, entries: list[Entry], hard_state: HardState | None, sync: bool) -> None:
        hs, log = self.fabric.disk[self.node]
        if entries:
            cut = entries[0].index - 1
            log = log[:cut] + list(entries)
        self.fabric.disk[self.node] = (hard_state or hs, log)

    def restore(self, snapshot: Snapshot) -> None:
        pass

    def applied(self, committed: list[Entry], read_states: list[ReadState]) -> None:
        pass

    def maybe_start(self) -> None:
        pass


class Fabric:
    def __init__(self, n: int, *, seed: int = 1, **config: object) -> None:
        self.voters = tuple(range(1, n + 1))
        self.config = config
        self.rng = random.Random(seed)
        self.disk: dict[int, tuple[HardState, list[Entry]]] = {
            i: (HardState(), []) for i in self.voters}
        self.cores: dict[int, RaftCore] = {}
        self.queue: list[Message] = []
        self.applied: dict[int, list[Entry]] = {i: [] for i in self.voters}
        for i in self.voters:
            self.restart(i)

    # -- setting the stage -----------------------------------------------------
    def load(self, node: int, terms: Sequence[int], term: int, vote: int = 0,
             commit: int = 0) -> None:
        """Give `node` this persisted log and hard state, and restart it."""
        self.disk[node] = (HardState(term, vote, commit), entries_for_terms(terms))
        self.restart(node)

    def restart(self, node: int) -> None:
        hs, entries = self.disk[node]
        cfg = Config(id=node, rng=random.Random(self.rng.getrandbits(32)), **self.config)  # type: ignore[arg-type]
        self.cores[node] = RaftCore(cfg, ConfState(self.voters), hard_state=hs,
                                    entries=list(entries))
        self.applied[node] = []
        self.flush(node)

    def crash(self, node: int) -> None:
        del self.cores[node]

    # -- running -----------------------------------------------------------------
    def flush(self, node: int) -> None:
        core = self.cores.get(node)
        if core is None:
            return
        fake = FabricPorts(self, node)
        ports = ReadyPorts(lambda soft_state: None, peers=fake, disk=fake, apply=fake, snapshots=fake)
        while core.has_ready():
            handle_ready(core, core.ready(), ports)

    def deliver(self, keep: Filter | None = None, limit: int = 10_000) -> int:
        """Deliver queued messages (and what they cause) until quiet. Messages to
        crashed nodes, or rejected by `keep`, are dropped. Returns how many arrived."""
        delivered = 0
        while self.queue and delivered < limit:
            m = self.queue.pop(0)
            core = self.cores.get(m.dst)
            verdict = True if keep is None else keep(m)
            if core is None or verdict is False:
                continue
            if verdict is not True:
                m = verdict  # type: ignore[assignment]
            core.step(m)
            delivered += 1
            self.flush(m.dst)
        assert delivered < limit, "messages never quiesced"
        return delivered

    def tick(self, ticks: int = 1, keep: Filter | None = None) -> None:
        for _ in range(ticks):
            for node in list(self.cores):
                self.cores[node].tick()
                self.flush(node)
            self.deliver(keep)

    def campaign(self, node: int, keep: Filter | None = None) -> None:
        self.cores[node].campaign()
        self.flush(node)
        self.deliver(keep)

    def propose(self, node: int, data: bytes, keep: Filter | None = None) -> int:
        index = self.cores[node].propose(data)
        self.flush(node)
        self.deliver(keep)
        return index

    # -- looking -----------------------------------------------------------------
    def leaders(self) -> list[int]:
        return [i for i, c in self.cores.items() if c.role is Role.LEADER]

    def terms(self, node: int) -> list[int]:
        return [e.term for e in self.cores[node].log.entries]


def isolate(node: int) -> Filter:
    return lambda m: m.src != node and m.dst != node
