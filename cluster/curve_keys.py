"""ZeroMQ CURVE keys: a member's key file, and a client's side of a secure connection.

With `[curve] enabled` every member has a key pair. Its public key is in the config
(`curve_public`, so peers and clients know whom they talk to); the pair lives in a
file only the member's user may read (`[curve] secret_key`, mode 0600, in a 0700
directory), written by `python -m supervisor keys` or `up --secure`:

    # jangada member 2: CURVE key pair (keep secret: mode 0600)
    public = "<40 Z85 characters>"
    secret = "<40 Z85 characters>"

A client needs no key file: it makes an ephemeral pair per process and checks the
server's public key (`CurveClient`), so the connection is encrypted and the client
knows it reached a member; who the client *is* is the business of auth tokens.
"""
from __future__ import annotations

import os
import stat
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import zmq
import zmq.utils.z85

from cluster.cluster_state import DiscoveryError, default_layout, read_state
from cluster.spec import ClusterSpec, SpecError

Z85_KEY_CHARS = 40


class KeyFileError(Exception):
    """A member's key file is missing, unsafe or malformed."""


def new_key_pair() -> tuple[str, str]:
    """A fresh (public, secret) CURVE key pair, both Z85."""
    public, secret = zmq.curve_keypair()
    return public.decode("ascii"), secret.decode("ascii")


def write_key_file(path: Path, node_id: int, public: str, secret: str) -> None:
    """Write the pair readable by its owner only (0600; parent directory 0700),
    atomically: a crash never leaves a half-written or world-readable key."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(f"# jangada member {node_id}: CURVE key pair (keep secret: mode 0600)\n"
                  f'public = "{public}"\nsecret = "{secret}"\n')
    os.chmod(tmp, 0o600)
    tmp.replace(path)


def read_key_file(path: Path) -> tuple[str, str]:
    """(public, secret) from a member's key file; KeyFileError if it is missing,
    readable or writable by anyone but its owner, or malformed."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise KeyFileError(f"{path}: no such key file (create it with `python -m supervisor keys`)") from None
    except OSError as error:
        raise KeyFileError(f"{path}: {error}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFileError(f"{path}: mode {stat.S_IMODE(mode):04o} lets others read it; "
                           f"`chmod 600 {path}` (a secret key must be readable by its owner only)")
    try:
        doc = tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise KeyFileError(f"{path}: unreadable key file ({error})") from None
    public, secret = doc.get("public"), doc.get("secret")
    if not (_is_z85_key(public) and _is_z85_key(secret)):
        raise KeyFileError(f"{path}: needs `public` and `secret`, each a 40-character Z85 key")
    assert isinstance(public, str) and isinstance(secret, str)
    try:
        derived = zmq.curve_public(secret.encode("ascii")).decode("ascii")
    except (zmq.ZMQError, ValueError) as error:
        raise KeyFileError(f"{path}: not a CURVE secret key ({error})") from None
    if derived != public:
        raise KeyFileError(f"{path}: the public key does not belong to the secret key")
    return public, secret


def _is_z85_key(value: object) -> bool:
    if not isinstance(value, str) or len(value) != Z85_KEY_CHARS:
        return False
    try:
        zmq.utils.z85.decode(value)
    except (ValueError, KeyError):
        return False
    return True


class CurveClient:
    """A client's CURVE side: one ephemeral key pair, and each server's public key by
    the endpoint it listens on (a member's `client` address). `secure` is the only
    socket set-up a client, a watch or a node's etcd face needs."""

    def __init__(self, server_keys: Mapping[str, str]) -> None:
        self.server_keys = dict(server_keys)
        public, secret = zmq.curve_keypair()
        self._public, self._secret = public, secret

    def secure(self, socket: zmq.Socket[Any], endpoint: str) -> None:
        """Make `socket` (not yet connected) a CURVE client of the member at
        `endpoint`. An endpoint without a known key is left plaintext: a secure
        member refuses that handshake, so the request fails like one to a dead
        member (and the client tries another)."""
        key = self.server_keys.get(endpoint)
        if not key:
            return
        socket.setsockopt(zmq.CURVE_SERVERKEY, key.encode("ascii"))
        socket.setsockopt(zmq.CURVE_PUBLICKEY, self._public)
        socket.setsockopt(zmq.CURVE_SECRETKEY, self._secret)


def discover_curve(cwd: Path | None = None) -> CurveClient | None:
    """A `CurveClient` for the cluster the supervisor started here (its state file,
    cluster/discovery.py) when it is `--secure`; None otherwise, or when there is
    no readable state file (a client of a cluster elsewhere passes its own)."""
    try:
        state = read_state(default_layout(cwd))
    except DiscoveryError:
        return None
    return curve_client_for(state.nodes) if state is not None else None


class KeyedMember(Protocol):
    """A member as the config (MemberSpec) or the state file (NodeRecord) has it."""

    @property
    def client(self) -> str: ...

    @property
    def curve_public(self) -> str: ...


def curve_client_for(members: Iterable[KeyedMember]) -> CurveClient | None:
    """A `CurveClient` for these members, or None when none has a key (plaintext)."""
    keys = {m.client: m.curve_public for m in members if m.curve_public}
    return CurveClient(keys) if keys else None


@dataclass(frozen=True, slots=True)
class MemberKeys:
    """What a member of a `[curve]` cluster needs: its own pair and the public key
    of every member in the config (peers' DEALERs check them; the ZAP handler
    accepts only them on the peer port)."""

    node_id: int
    public: str
    secret: str
    members: Mapping[int, str]


def load_member_keys(spec: ClusterSpec, node_id: int) -> MemberKeys:
    """Member `node_id`'s keys; SpecError (naming `curve.secret_key`) when its key
    file is missing, unsafe, malformed or not the pair the config names."""
    path = spec.config_path(spec.curve.secret_key, node_id)
    try:
        public, secret = read_key_file(path)
    except KeyFileError as error:
        raise SpecError(spec.source, "curve.secret_key", str(error)) from None
    members = {m.id: m.curve_public for m in spec.members if m.curve_public}
    expected = members.get(node_id)
    if expected is not None and expected != public:
        raise SpecError(spec.source, "curve.secret_key", f"{path} holds public key {public}, but the config "
                        f"says member {node_id}'s curve_public is {expected}: wrong key file")
    return MemberKeys(node_id, public, secret, members)
