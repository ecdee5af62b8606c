"""The supervisor's data directory and its state file: their layout and format.

Everything about a cluster `python -m supervisor up` runs lives in one directory
(cluster/discovery.py says where and what is in it). The state file is written
only by the supervisor and read by everyone else, which is why its format lives
here in `cluster` (the leaf package); its JSON is documented in
docs/operations.md. This module needs neither zmq nor the client: the client
reads a secure cluster's keys through it (cluster/curve_keys.py).
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

DATA_DIR_NAME = "jangada-data"
ENV_DATA_DIR = "JANGADA_DATA_DIR"
#: The nodes' --log-format default (`python -m node`): the supervisor sets it for the
#: nodes it spawns with `up --log-format`.
ENV_LOG_FORMAT = "JANGADA_LOG_FORMAT"
STATE_VERSION = 1


class DiscoveryError(Exception):
    """No cluster could be found, or its state file is unreadable."""


@dataclass(frozen=True, slots=True)
class Layout:
    """Where everything of one supervised cluster lives."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / "cluster.toml"

    @property
    def state(self) -> Path:
        return self.root / "supervisor.json"

    @property
    def lock(self) -> Path:
        return self.root / "supervisor.lock"

    @property
    def supervisor_log(self) -> Path:
        return self.root / "supervisor.log"

    def node_dir(self, node_id: int) -> Path:
        return self.root / f"node-{node_id}"

    def node_log(self, node_id: int) -> Path:
        return self.root / f"node-{node_id}.log"


def default_layout(cwd: Path | None = None) -> Layout:
    """`$JANGADA_DATA_DIR`, else `./jangada-data` (absolute, so it survives a chdir)."""
    env = os.environ.get(ENV_DATA_DIR)
    root = Path(env) if env else (cwd or Path.cwd()) / DATA_DIR_NAME
    return Layout(root.absolute())


@dataclass(slots=True)
class NodeRecord:
    """One node as the supervisor last saw it. `pid` 0 = not running; `create_time`
    (psutil) tells our process from a later one that reused the pid."""

    id: int
    client: str
    peer: str
    pid: int = 0
    create_time: float = 0.0
    restarts: int = 0
    state: str = "starting"  # starting | running | backoff | stopped
    last_exit: str = ""  # how it last died, e.g. "killed by SIGKILL after 3.2 s"
    grpc: str = ""  # the etcd v3 gRPC URL, http://HOST:PORT ("" = off; state files before it lack it)
    gateway: str = ""  # the etcd HTTP JSON gateway URL, likewise
    curve_public: str = ""  # the node's CURVE public key (Z85) in a `--secure` cluster, else ""
    metrics: str = ""  # the metrics and health endpoint, http://HOST:PORT ("" = off; older state files lack it)


@dataclass(slots=True)
class ClusterState:
    cluster_id: str
    config: str
    data_dir: str
    supervisor_pid: int
    supervisor_create_time: float
    nodes: list[NodeRecord] = field(default_factory=list)
    ready: bool = False  # a leader was elected after start-up (`up --detach` waits on it)
    started_at: float = 0.0
    #: a `--secure` cluster: the CA certificate its faces' TLS certificates chain
    #: to (clients verify with it: etcdctl --cacert), and root's client certificate
    #: and key; "" for a plaintext cluster
    ca: str = ""
    client_cert: str = ""
    client_key: str = ""
    version: int = STATE_VERSION

    @property
    def secure(self) -> bool:
        """Whether the cluster runs CURVE on its native ports (`up --secure`)."""
        return any(n.curve_public for n in self.nodes)

    def node(self, node_id: int) -> NodeRecord:
        for record in self.nodes:
            if record.id == node_id:
                return record
        raise KeyError(node_id)

    def endpoints(self) -> list[str]:
        return [n.client for n in self.nodes]

    def etcd_endpoints(self) -> list[str]:
        """HOST:PORT of every node's etcd gRPC face (what `etcdctl --endpoints` takes)."""
        return [n.grpc.split("://", 1)[-1] for n in self.nodes if n.grpc]

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str, source: str = "state file") -> ClusterState:
        try:
            doc = json.loads(text)
            if doc.get("version") != STATE_VERSION:
                raise DiscoveryError(f"{source}: unsupported version {doc.get('version')!r}")
            nodes = [NodeRecord(**n) for n in doc.pop("nodes")]
            return cls(nodes=nodes, **doc)
        except (ValueError, TypeError, KeyError, AttributeError) as error:
            raise DiscoveryError(f"{source}: unreadable ({error})") from None


def read_state(layout: Layout) -> ClusterState | None:
    """The state file's contents, or None if there is none."""
    try:
        text = layout.state.read_text()
    except FileNotFoundError:
        return None
    except OSError as error:
        raise DiscoveryError(f"{layout.state}: {error}") from None
    return ClusterState.from_json(text, str(layout.state))
