"""Finding a running cluster: the supervisor's data directory and its state file.

`python -m supervisor up N` keeps everything about a local cluster in one directory,
`./jangada-data/` under the working directory it was started from (or the directory
named by `$JANGADA_DATA_DIR`):

    jangada-data/
      cluster.toml      the generated config (reused by the next `up` on this data)
      supervisor.json   the state file: supervisor pid, node pids, endpoints
      supervisor.lock   flock-ed by the live supervisor (a second `up` refuses)
      supervisor.log    the supervisor's own log when detached
      node-N/           node N's data directory (WAL, snapshots)
      node-N.log        node N's stderr

The state file is written only by the supervisor (atomically: tmp file + rename) and
read by everyone else: the supervisor's `status`/`down`/`kill`/`chaos` commands and
the client CLI, which is why its format lives here in `cluster` (the leaf package)
and not in `supervisor`. Its JSON is documented in docs/operations.md.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cluster.client import Client

DATA_DIR_NAME = "jangada-data"
ENV_DATA_DIR = "JANGADA_DATA_DIR"
ENV_ENDPOINTS = "JANGADA_ENDPOINTS"
STATE_VERSION = 1

_HOST_PORT = re.compile(r"^(?:tcp://)?(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.\-]+):(\d{1,5})$")


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


def normalize_endpoint(text: str) -> str:
    """`host:port` or `tcp://host:port` -> `tcp://host:port`; ValueError otherwise."""
    match = _HOST_PORT.match(text.strip())
    if not match or not 0 < int(match.group(2)) < 65536:
        raise ValueError(f"{text!r} is not HOST:PORT")
    return f"tcp://{match.group(1)}:{match.group(2)}"


def parse_endpoints(text: str) -> list[str]:
    endpoints = [normalize_endpoint(part) for part in text.split(",") if part.strip()]
    if not endpoints:
        raise ValueError("no endpoints given")
    return endpoints


def discover_endpoints(explicit: str | None = None, cwd: Path | None = None) -> list[str]:
    """The client endpoints to use: `--endpoints`, else `$JANGADA_ENDPOINTS`, else the
    state file of the cluster the supervisor started here. Raises ValueError for a
    malformed list and DiscoveryError when no cluster is found."""
    text = explicit or os.environ.get(ENV_ENDPOINTS)
    if text:
        return parse_endpoints(text)
    layout = default_layout(cwd)
    state = read_state(layout)
    if state is None or not state.nodes:
        raise DiscoveryError(
            f"no cluster found: {layout.state} does not exist. Start one here with "
            "`python -m supervisor up 3`, or pass --endpoints HOST:PORT,...")
    return state.endpoints()


def connect(endpoints: str | list[str] | None = None, cwd: Path | None = None, **options: Any) -> Client:
    """A `Client` for `endpoints` (a list, or a `HOST:PORT,...` string), else for the
    cluster found as `discover_endpoints` does:

        with connect() as client:      # the cluster `python -m supervisor up` started here
            client.put("greeting", "hello")
    """
    from cluster.client import Client  # here: reading a state file needs no zmq

    found = discover_endpoints(endpoints if isinstance(endpoints, str) else None, cwd) \
        if not isinstance(endpoints, list) else [normalize_endpoint(e) for e in endpoints]
    return Client(found, **options)
