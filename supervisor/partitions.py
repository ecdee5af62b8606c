"""Real network faults in a --netns cluster (`chaos --partition`).

Two kinds, both silent - packets vanish, nobody is told, connections hang rather
than fail, as in a real partition (the drop-traffic request only simulates one
inside the nodes):

* `cut`: the node's link goes down (`ip link set <host end> down`). The node
  loses everyone: its peers and the clients on the host. Frames it sends are
  dropped by its veth, whose peer end is down.
* `isolate`: a group of nodes keeps talking among itself (and to the host's
  clients) but not to the rest: an nftables table `jangada_partition` in each
  group member's namespace drops every packet to or from the others' addresses,
  in and out, so both directions are cut from one side.

`heal` undoes either; `heal_all` everything this object did (chaos calls it
however it ends). Only links and namespaces of the cluster's recorded plan
(supervisor/netns.py) are touched; the nft table lives inside those namespaces.
Needs `ip`, and `nft` (Debian package nftables) for `isolate`.
"""
from __future__ import annotations

import shutil
import subprocess

from supervisor.netns import NetnsError, NetnsPlan, NetnsUnavailable, run

TABLE = "jangada_partition"


def isolate_script(others: list[str]) -> str:
    """The nft script that drops all traffic with `others` (IPv4 addresses)."""
    peers = ", ".join(others)
    return (f"table inet {TABLE} {{\n"
            f"  chain input {{ type filter hook input priority 0; policy accept; ip saddr {{ {peers} }} drop; }}\n"
            f"  chain output {{ type filter hook output priority 0; policy accept; ip daddr {{ {peers} }} drop; }}\n"
            "}\n")


def cut_command(plan: NetnsPlan, node_id: int, down: bool) -> list[str]:
    return ["ip", "link", "set", plan.host_veth(node_id), "down" if down else "up"]


def require_nft() -> None:
    if shutil.which("nft") is None:
        raise NetnsUnavailable("splitting a --netns cluster needs `nft` (Debian package nftables)")


class NetworkFaults:
    def __init__(self, plan: NetnsPlan) -> None:
        self.plan = plan
        self.cut_nodes: set[int] = set()
        self.isolated: set[int] = set()

    def cut(self, node_id: int) -> None:
        run(cut_command(self.plan, node_id, down=True))
        self.cut_nodes.add(node_id)

    def isolate(self, group: list[int], rest: list[int]) -> None:
        """Every node of `group` drops all packets to and from the nodes of `rest`."""
        require_nft()
        script = isolate_script([self.plan.address(i) for i in rest])
        for node_id in group:
            self._nft(node_id, ["-f", "-"], script)
            self.isolated.add(node_id)

    def heal(self, node_id: int) -> None:
        if node_id in self.cut_nodes:
            run(cut_command(self.plan, node_id, down=False))
            self.cut_nodes.discard(node_id)
        if node_id in self.isolated:
            self._nft(node_id, ["delete", "table", "inet", TABLE])
            self.isolated.discard(node_id)

    def heal_all(self) -> list[int]:
        """Heal every fault still in force; the nodes healed."""
        nodes = sorted(self.cut_nodes | self.isolated)
        for node_id in nodes:
            self.heal(node_id)
        return nodes

    def _nft(self, node_id: int, args: list[str], script: str | None = None) -> None:
        argv = ["ip", "netns", "exec", self.plan.namespace(node_id), "nft", *args]
        done = subprocess.run(argv, input=script, capture_output=True, text=True, check=False)
        if done.returncode:
            raise NetnsError(f"`{' '.join(argv)}` failed: {done.stderr.strip()}")
