"""`up --netns`: every node in a network namespace of its own, on a private bridge.

Why: on 127.0.0.1 every node shares one address, so a bind/advertise mistake that
only shows across hosts goes unseen, and a partition can only be simulated inside
the nodes. Here each node has its own IP and its own network stack; packets
between nodes cross a real (virtual) link that chaos can cut (supervisor/
partitions.py).

The plan (`NetnsPlan`, pure: names and addresses from the data directory's path):

    host:        bridge jgd<tag>, address 10.A.B.1/24   <- the CLI and clients
    node N:      namespace jgd<tag>n<N>, veth jgd<tag>c<N> with 10.A.B.(N+1)/24
                 its peer jgd<tag>h<N> in the host, a port of the bridge

`tag` and 10.A.B come from a hash of the data directory's absolute path, so two
clusters in two directories get different names and (almost surely) different
subnets; `create` refuses a subnet some other interface of the host already has.
The plan is recorded in `<data dir>/netns.json` before anything is created, so
`down` removes exactly what this cluster made (and `up` again re-creates it):
nothing whose name is not in the record is ever touched. Nodes are started as
`ip netns exec NS python -m node ...`: `ip` enters the namespace and execs the
node, so the pid the supervisor holds is the node's own.

Needs Linux, root and iproute2's `ip`; `NetnsUnavailable` names what is missing.
"""
from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from cluster.discovery import Layout

RECORD = "netns.json"
PREFIX = "jgd"
#: Highest node id a /24 holds with .1 for the host and .N+1 for node N.
MAX_ID = 250


class NetnsUnavailable(Exception):
    """Namespaces cannot be made here (not Linux, not root, no `ip`)."""


class NetnsError(Exception):
    """An `ip` command failed; the message has the command and its stderr."""


@dataclass(frozen=True, slots=True)
class NetnsPlan:
    tag: str  # 6 hex digits
    subnet: str  # "10.A.B": the /24 the bridge and nodes share
    ids: tuple[int, ...]

    @property
    def bridge(self) -> str:
        return f"{PREFIX}{self.tag}"

    @property
    def host_address(self) -> str:
        return f"{self.subnet}.1"

    def namespace(self, node_id: int) -> str:
        return f"{PREFIX}{self.tag}n{node_id}"

    def host_veth(self, node_id: int) -> str:
        """The host end of node `node_id`'s link: a port of the bridge."""
        return f"{PREFIX}{self.tag}h{node_id}"

    def node_veth(self, node_id: int) -> str:
        """The end inside the node's namespace, holding its address."""
        return f"{PREFIX}{self.tag}c{node_id}"

    def address(self, node_id: int) -> str:
        return f"{self.subnet}.{node_id + 1}"

    def hosts(self) -> dict[int, str]:
        return {i: self.address(i) for i in self.ids}

    def to_json(self) -> str:
        return json.dumps({"tag": self.tag, "subnet": self.subnet, "ids": list(self.ids),
                           "bridge": self.bridge,
                           "namespaces": [self.namespace(i) for i in self.ids],
                           "links": [self.host_veth(i) for i in self.ids]}, indent=2) + "\n"

    @staticmethod
    def from_json(text: str) -> NetnsPlan:
        raw = json.loads(text)
        return NetnsPlan(str(raw["tag"]), str(raw["subnet"]), tuple(int(i) for i in raw["ids"]))


def plan_for(root: Path, ids: list[int] | tuple[int, ...]) -> NetnsPlan:
    """The names and addresses for a cluster in data directory `root`."""
    bad = [i for i in ids if not 1 <= i <= MAX_ID]
    if bad:
        raise ValueError(f"--netns: node ids must be 1..{MAX_ID}, got {bad}")
    digest = hashlib.sha256(str(root.absolute()).encode()).digest()
    # 10.100.0.0 - 10.227.255.0: clear of the 10.0.x and 10.1.x that labs favour.
    return NetnsPlan(digest[:3].hex(), f"10.{100 + digest[3] % 128}.{digest[4]}", tuple(sorted(ids)))


# -- the commands (pure: tested without root) ------------------------------------------

def bridge_commands(plan: NetnsPlan) -> list[list[str]]:
    br = plan.bridge
    return [["ip", "link", "add", br, "type", "bridge"],
            ["ip", "addr", "add", f"{plan.host_address}/24", "dev", br],
            ["ip", "link", "set", br, "up"]]


def node_commands(plan: NetnsPlan, node_id: int) -> list[list[str]]:
    ns, host, inner = plan.namespace(node_id), plan.host_veth(node_id), plan.node_veth(node_id)
    return [["ip", "netns", "add", ns],
            ["ip", "link", "add", host, "type", "veth", "peer", "name", inner, "netns", ns],
            ["ip", "link", "set", host, "master", plan.bridge],
            ["ip", "link", "set", host, "up"],
            ["ip", "-n", ns, "addr", "add", f"{plan.address(node_id)}/24", "dev", inner],
            ["ip", "-n", ns, "link", "set", inner, "up"],
            ["ip", "-n", ns, "link", "set", "lo", "up"]]


def exec_command(plan: NetnsPlan, node_id: int) -> list[str]:
    """The prefix that runs a command inside node `node_id`'s namespace. `ip netns
    exec` execs it (no fork), so the process keeps the pid it was started with."""
    return [_ip(), "netns", "exec", plan.namespace(node_id)]


# -- the record ----------------------------------------------------------------------

def record_path(layout: Layout) -> Path:
    return layout.root / RECORD


def load(layout: Layout) -> NetnsPlan | None:
    """The plan recorded in this data directory, or None (not a --netns cluster)."""
    path = record_path(layout)
    try:
        return NetnsPlan.from_json(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise NetnsError(f"unreadable {path}: {error}") from None


def save(layout: Layout, plan: NetnsPlan) -> None:
    path = record_path(layout)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(plan.to_json())
    tmp.replace(path)


def node_prefix(layout: Layout, node_id: int) -> list[str]:
    """`ip netns exec NS` for a node of a --netns cluster, [] otherwise."""
    plan = load(layout)
    return exec_command(plan, node_id) if plan is not None and node_id in plan.ids else []


# -- doing it --------------------------------------------------------------------------

def require() -> None:
    """NetnsUnavailable naming what is missing for `--netns`."""
    if not sys.platform.startswith("linux"):
        raise NetnsUnavailable(f"--netns needs Linux network namespaces (this is {sys.platform})")
    if os.geteuid() != 0:
        raise NetnsUnavailable("--netns needs root (creating namespaces, veth links and a bridge "
                               "takes CAP_NET_ADMIN and CAP_SYS_ADMIN)")
    if shutil.which("ip") is None:
        raise NetnsUnavailable("--netns needs iproute2's `ip` command (Debian package iproute2)")
    done = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False)
    if done.returncode:
        raise NetnsUnavailable(f"`ip netns list` failed: {done.stderr.strip()}")


def create(plan: NetnsPlan) -> list[str]:
    """Make whatever of `plan` does not exist yet (idempotent: a second `up`
    re-creates only what `down` or a reboot removed); the names made."""
    made: list[str] = []
    if not link_exists(plan.bridge):
        _refuse_taken_subnet(plan)
        run_all(bridge_commands(plan))
        made.append(plan.bridge)
    existing = namespaces()
    for node_id in plan.ids:
        if plan.namespace(node_id) in existing:
            continue
        if link_exists(plan.host_veth(node_id)):  # half-made before: start that node afresh
            run(["ip", "link", "del", plan.host_veth(node_id)])
        run_all(node_commands(plan, node_id))
        made.append(plan.namespace(node_id))
    return made


def remove(plan: NetnsPlan) -> list[str]:
    """Delete the namespaces, links and bridge of `plan` that exist; the names
    removed."""
    removed: list[str] = []
    existing = namespaces()
    for node_id in plan.ids:
        # The link first: deleting it deletes both ends at once, while a deleted
        # namespace's devices go away later, in the kernel's own time.
        if link_exists(plan.host_veth(node_id)):
            run(["ip", "link", "del", plan.host_veth(node_id)])
            removed.append(plan.host_veth(node_id))
        ns = plan.namespace(node_id)
        if ns in existing:
            run(["ip", "netns", "del", ns])
            removed.append(ns)
    if link_exists(plan.bridge):
        run(["ip", "link", "del", plan.bridge])
        removed.append(plan.bridge)
    return removed


def namespaces() -> set[str]:
    done = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False)
    return {line.split()[0] for line in done.stdout.splitlines() if line.strip()}


def link_exists(name: str) -> bool:
    done = subprocess.run(["ip", "link", "show", "dev", name], capture_output=True, text=True, check=False)
    return done.returncode == 0


def run(argv: list[str]) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode:
        raise NetnsError(f"`{' '.join(argv)}` failed: {done.stderr.strip() or f'status {done.returncode}'}")


def run_all(commands: list[list[str]]) -> None:
    for argv in commands:
        run(argv)


def _refuse_taken_subnet(plan: NetnsPlan) -> None:
    ours = ipaddress.ip_network(f"{plan.subnet}.0/24")
    done = subprocess.run(["ip", "-o", "-4", "addr", "show"], capture_output=True, text=True, check=False)
    for line in done.stdout.splitlines():
        fields = line.split()
        if "inet" in fields:
            address = ipaddress.ip_interface(fields[fields.index("inet") + 1])
            if address.network.overlaps(ours):
                raise NetnsError(f"--netns: subnet {ours} is already used by interface {fields[1]} "
                                 f"({address}); use another --data-dir")


def _ip() -> str:
    return shutil.which("ip") or "ip"
