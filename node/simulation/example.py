"""The worked example of docs/raft-core.md: one election and one commit in a
three-node cluster, every Ready printed in its canonical form. Run it with
`python -m node.simulation.example`; a test checks that the doc shows exactly this."""
from __future__ import annotations

import random

from node.raft import Config, Message, RaftCore, boot
from node.raft.describe import describe_message, describe_ready


def transcript() -> str:
    cores = {i: boot(Config(id=i, rng=random.Random(i)), [1, 2, 3]) for i in (1, 2, 3)}
    out: list[str] = []

    def handle(core: RaftCore) -> list[Message]:
        sent: list[Message] = []
        while core.has_ready():
            rd = core.ready()
            out.append(f"--- node {core.id} Ready\n{describe_ready(rd)}")
            sent += rd.messages + rd.messages_after_persist  # (persist happens in between)
            core.advance(rd)
        return sent

    def deliver(queue: list[Message]) -> None:
        while queue:
            m = queue.pop(0)
            out.append(f">>> deliver {describe_message(m)}")
            cores[m.dst].step(m)
            queue += handle(cores[m.dst])

    out.append("=== node 1's election timeout fires (campaign)")
    cores[1].campaign()
    deliver(handle(cores[1]))
    out.append("=== propose b'x=1' on the leader, node 1")
    cores[1].propose(b"x=1")
    deliver(handle(cores[1]))
    return "\n".join(out)


if __name__ == "__main__":
    print(transcript())
