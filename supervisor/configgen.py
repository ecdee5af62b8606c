"""A cluster config for N nodes on this machine, and its reuse across `up`s.

Ports: by default the kernel hands out free loopback ports at the first `up`; with
`--base-port P` they are fixed, peer P+id, client P+100+id, etcd gRPC P+200+id,
etcd HTTP gateway P+300+id and metrics P+400+id (the shipped configs' scheme with P = 7100). Either way the generated config is written to the data
directory and the next `up` on the same data reuses it unchanged, so a restarted
cluster keeps its cluster id (which is in every WAL segment and snapshot) and its
addresses. Timing, storage and limits come from the shipped `cluster-3` config.

`up --fault-injection` writes `[faults] injection = true` into the config (the
generated one, a `--config` copy, or the one already in the data directory): the
drop-traffic request `chaos --drop` and `chaos --check` use is refused by nodes
whose config does not say so. An `up` without the flag leaves the setting as the
config has it.
"""
from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import NamedTuple

from cluster.discovery import Layout
from cluster.ports import free_ports
from cluster.spec import ClusterSpec, MemberSpec, SpecError, load_spec
from supervisor import security

MAX_NODES = 99  # --base-port leaves room for 99 ports of each kind
HOST = "127.0.0.1"
#: `up --netns`: every member has its own address, so the fixed scheme always fits.
NETNS_BASE_PORT = 7100
#: Ports of a member `supervisor add` adds: peer, client, etcd gRPC, etcd gateway.
FACES = 4
#: Ports per initial member: those and the metrics endpoint.
PORTS = FACES + 1


class MemberPorts(NamedTuple):
    peer: int
    client: int
    grpc: int
    gateway: int
    metrics: int


class ConfigConflict(Exception):
    """The data directory holds a cluster that does not match what was asked for."""


def member_ports(size: int, base_port: int | None) -> list[MemberPorts]:
    """The ports of each member, ids 1..size."""
    if not 1 <= size <= MAX_NODES:
        raise ValueError(f"cluster size must be 1..{MAX_NODES}, got {size}")
    if base_port is None:
        ports = free_ports(PORTS * size)
        return [MemberPorts(*ports[PORTS * i:PORTS * (i + 1)]) for i in range(size)]
    top = 65535 - 100 * (PORTS - 1) - size
    if not 1024 <= base_port <= top:
        raise ValueError(f"--base-port {base_port}: need 1024 <= P <= {top}")
    return [MemberPorts(*(base_port + 100 * face + i for face in range(PORTS))) for i in range(1, size + 1)]


def member_spec(node_id: int, ports: MemberPorts, host: str = HOST) -> MemberSpec:
    return MemberSpec(node_id, f"tcp://{host}:{ports.peer}", f"tcp://{host}:{ports.client}",
                      grpc=f"http://{host}:{ports.grpc}", gateway=f"http://{host}:{ports.gateway}",
                      metrics=f"http://{host}:{ports.metrics}")


def generate_spec(size: int, base_port: int | None = None, cluster_id: str | None = None,
                  base: str = "cluster-3", hosts: Mapping[int, str] | None = None) -> ClusterSpec:
    """A spec for `size` members on 127.0.0.1 (or member N on `hosts[N]`: `up
    --netns`, each in its own namespace); data dirs `node-{id}` relative to the
    data directory (the supervisor runs every node there)."""
    members = tuple(member_spec(i, ports, (hosts or {}).get(i, HOST))
                    for i, ports in enumerate(member_ports(size, base_port), start=1))
    return replace(load_spec(base), cluster_id=cluster_id or f"jangada-{secrets.token_hex(4)}",
                   members=members, data_dir="node-{id}", source="<generated>")


def prepare_config(layout: Layout, size: int | None, base_port: int | None = None,
                   config: str | None = None, fault_injection: bool = False,
                   secure: bool = False, hosts: Mapping[int, str] | None = None) -> ClusterSpec:
    """The spec `up` runs, written to `layout.config`.

    * `config` given: that file (or shipped name) is copied in; its members' data
      dirs still live in the data directory.
    * a config already in the data directory: reused, if `size` agrees with it (a
      3-node data directory cannot be brought up as 5 nodes).
    * otherwise a new one is generated.
    `fault_injection`: turn on `[faults] injection` in it (see above).
    `secure` (`up --secure`): a new config gets CURVE keys, TLS certificates
    (supervisor/security.py, in `<data dir>/keys`), [curve], [tls] and https://
    face URLs; a secure config already there is reused as it is.
    `hosts` (`up --netns`): a new config puts member N on `hosts[N]` (ports as with
    --base-port, 7100 by default: each member has an address of its own); an
    existing config must already use those addresses.
    Raises SpecError, ValueError or ConfigConflict with a message for the operator."""
    existing = load_spec(layout.config) if layout.config.is_file() else None
    if config is not None:
        spec = replace(load_spec(config), data_dir="node-{id}")
        if existing is not None and existing.cluster_id != spec.cluster_id:
            raise ConfigConflict(f"{layout.root} holds cluster {existing.cluster_id!r}, not {spec.cluster_id!r} "
                                 "from --config; run `python -m supervisor down --purge` first")
    elif existing is not None:
        if size is not None and size != len(existing.members):
            raise ConfigConflict(
                f"{layout.root} holds a {len(existing.members)}-node cluster ({existing.cluster_id}); "
                f"run `python -m supervisor up {len(existing.members)}` to restart it, or "
                "`python -m supervisor down --purge` to remove it first")
        if base_port is not None and not _uses_base_port(existing, base_port):
            raise ConfigConflict(f"{layout.root} holds a cluster on other ports; "
                                 "`down --purge` first to change ports")
        spec = existing
    else:
        spec = generate_spec(size or 3, base_port if base_port or not hosts else NETNS_BASE_PORT, hosts=hosts)
    if hosts is not None and any(_host_of(m.peer) != hosts.get(m.id) for m in spec.members):
        raise ConfigConflict(f"--netns: the config in {layout.root} does not put its members on the namespace "
                             "addresses; `python -m supervisor down --purge` first")
    if size is not None and len(spec.members) != size:
        raise ConfigConflict(f"--config has {len(spec.members)} members but `up {size}` was asked for")
    layout.root.mkdir(parents=True, exist_ok=True)
    if secure and not spec.curve.enabled:
        if spec is existing:
            raise ConfigConflict(f"{layout.root} holds a plaintext cluster ({spec.cluster_id}); "
                                 "`python -m supervisor down --purge` first to start it --secure")
        files = security.SecurityFiles(layout.root / "keys")
        spec = security.secure_spec(spec, security.create(spec, files), files, layout.root)
    if fault_injection:
        spec = replace(spec, faults=replace(spec.faults, injection=True))
    if existing != spec:
        _write_atomically(layout.config, spec.to_toml())
    return load_spec(layout.config)


def _host_of(url: str) -> str:
    return url.split("://", 1)[-1].rsplit(":", 1)[0]


def _uses_base_port(spec: ClusterSpec, base_port: int) -> bool:
    # Peer and client only: a config written before the etcd faces still matches.
    expected = [(f"tcp://{HOST}:{p.peer}", f"tcp://{HOST}:{p.client}")
                for p in member_ports(len(spec.members), base_port)]
    return [(m.peer, m.client) for m in spec.members] == expected


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


__all__ = ["ConfigConflict", "MemberPorts", "SpecError", "generate_spec", "member_ports", "member_spec",
           "prepare_config", "free_ports"]
