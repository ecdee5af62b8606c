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
the client CLI, which is why its format lives in `cluster` (the leaf package, in
cluster/cluster_state.py, re-exported here) and not in `supervisor`. Its JSON is
documented in docs/operations.md.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cluster.cluster_state import (  # noqa: F401  (re-exported: the state file's readers import them from here)
    DATA_DIR_NAME, ENV_DATA_DIR, STATE_VERSION, ClusterState, DiscoveryError, Layout, NodeRecord, default_layout,
    read_state)

if TYPE_CHECKING:
    from cluster.client import Client

ENV_ENDPOINTS = "JANGADA_ENDPOINTS"

_HOST_PORT = re.compile(r"^(?:tcp://)?(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.\-]+):(\d{1,5})$")


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
