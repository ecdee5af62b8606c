"""The cluster spec: one TOML file describing every member of a cluster.

Read by the node (`python -m node --config ...`), the supervisor and the client, so
it lives in `cluster` (which never imports `node`). A spec is validated once, at
load time, and every problem names the offending field (`members[2].peer: ...`):
a node with a bad config must refuse to start with a message an operator can act
on, not fail later in a socket call.

A config argument is either a path to a TOML file or the name of a config shipped
in the `configs` package (`cluster-3` or `cluster-3.toml`), found with
importlib.resources so it works from any working directory.
"""
from __future__ import annotations

import importlib.resources
import re
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

#: ZeroMQ endpoints we accept: tcp://HOST:PORT (HOST a name, IPv4, `*` or [IPv6]).
_TCP_ENDPOINT = re.compile(r"^tcp://(\*|\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.\-]+):(\d{1,5})$")
#: HTTP faces (etcd gRPC, JSON gateway): http://HOST:PORT, or https:// when [tls] is
#: set (HOST a name, IPv4 or [IPv6]).
_HTTP_URL = re.compile(r"^https?://(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.\-]+):(\d{1,5})$")
#: A ZeroMQ CURVE public key in Z85 (40 characters).
_Z85_KEY = re.compile(r"^[0-9a-zA-Z.\-:+=^!/*?&<>()\[\]{}@%$#]{40}$")
TOKEN_KINDS = ("simple", "jwt")
JWT_SIGN_METHODS = ("RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "HS256", "HS384", "HS512")
_CLUSTER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,63}$")
FSYNC_POLICIES = ("always", "none")
#: Where a member's WAL writes run (node/wal_writer.py): "auto" on the loop while the
#: disk is quiet and on a writer thread while it is busy; "thread" always on the
#: thread; "loop" always on the loop (it waits in every fdatasync).
WAL_WRITES = ("auto", "thread", "loop")
DEFAULT_DATA_DIR = "data/{cluster}/node-{id}"


class SpecError(ValueError):
    """A config problem; `field` is the dotted path of the bad field."""

    def __init__(self, source: str, field_name: str, problem: str) -> None:
        self.source = source
        self.field = field_name
        self.problem = problem
        super().__init__(f"{source}: {field_name}: {problem}")


@dataclass(frozen=True, slots=True)
class MemberSpec:
    """One member: the address peers connect to and the address clients use.
    `peer_bind`/`client_bind` default to the same addresses (set them to e.g.
    `tcp://*:7101` when the advertised name is not a local interface).

    `grpc` and `gateway` are the member's etcd v3 faces, URLs `http://HOST:PORT`
    (the gRPC API and its HTTP JSON gateway); "" means that face is off. Their
    `*_bind` URLs default to them likewise (e.g. `http://0.0.0.0:7301`).

    `metrics` is the member's Prometheus and health endpoint (`/metrics`, `/health`,
    `/livez`, `/readyz`, `/version`; node/metrics_http.py), a URL `http://HOST:PORT`
    or "" for none. It is plain HTTP even when [tls] is on, as etcd's
    --listen-metrics-urls may be: a scraper or a load balancer's health check should
    not need the cluster's client certificates to read it."""

    id: int
    peer: str
    client: str
    peer_bind: str = ""
    client_bind: str = ""
    grpc: str = ""
    gateway: str = ""
    grpc_bind: str = ""
    gateway_bind: str = ""
    #: the member's ZeroMQ CURVE public key (Z85), when [curve] is enabled: peers
    #: accept only members' keys on the peer port; clients check the server's key
    curve_public: str = ""
    metrics: str = ""

    @property
    def peer_bind_address(self) -> str:
        return self.peer_bind or self.peer

    @property
    def client_bind_address(self) -> str:
        return self.client_bind or self.client

    @property
    def grpc_bind_address(self) -> str:
        """HOST:PORT the gRPC server binds ("" when the face is off)."""
        return url_host_port(self.grpc_bind or self.grpc)

    @property
    def gateway_bind_address(self) -> str:
        """HOST:PORT the HTTP gateway binds ("" when the face is off)."""
        return url_host_port(self.gateway_bind or self.gateway)

    @property
    def metrics_address(self) -> str:
        """HOST:PORT the metrics and health endpoint binds ("" when off)."""
        return url_host_port(self.metrics)


def url_host_port(url: str) -> str:
    """`http://HOST:PORT` -> `HOST:PORT` (what a dialer or a bind wants); "" stays ""."""
    return url.split("://", 1)[1] if "://" in url else url


@dataclass(frozen=True, slots=True)
class TimingSpec:
    tick_ms: int = 10
    election_ticks: int = 30
    heartbeat_ticks: int = 5
    request_timeout_ms: int = 5000


@dataclass(frozen=True, slots=True)
class StorageSpec:
    fsync: str = "always"
    segment_bytes: int = 64 * 1024 * 1024
    keep_snapshots: int = 2
    #: where the WAL write and fdatasync run: WAL_WRITES (node/wal_writer.py)
    wal_writes: str = "auto"


@dataclass(frozen=True, slots=True)
class SnapshotSpec:
    #: etcd 3.4's --snapshot-count default (node/storage/options.py, CompactionPolicy)
    applied_entries: int = 100_000
    wal_bytes: int = 256 * 1024 * 1024
    chunk_bytes: int = 256 * 1024


@dataclass(frozen=True, slots=True)
class LimitsSpec:
    max_message_bytes: int = 16 * 1024 * 1024
    max_batch: int = 256
    max_append_bytes: int = 1024 * 1024
    #: committed entry payload applied per loop turn (at least one entry): bounds the
    #: turn of a member catching up or replaying its log (docs/performance.md §7)
    max_apply_bytes: int = 128 * 1024
    max_inflight_appends: int = 64
    max_uncommitted_bytes: int = 64 * 1024 * 1024
    max_pending_requests: int = 10_000
    send_hwm: int = 10_000
    recv_hwm: int = 10_000
    #: etcd's --max-request-bytes: the largest client request (a key and value, a txn)
    max_request_bytes: int = 1536 * 1024
    #: etcd's --max-txn-ops: operations in one txn (counted as etcd does)
    max_txn_ops: int = 128


@dataclass(frozen=True, slots=True)
class AuthSpec:
    """Authentication (docs/security.md). Whether auth is *on* is replicated
    state (`auth enable`), not config; this is how tokens and passwords work."""

    token: str = "simple"  # "simple" (random, replicated through the log) or "jwt"
    token_ttl_s: int = 300  # simple: idle lifetime (etcd's 5 minutes); jwt: exp
    #: jwt: the signing key (PEM private key for RS*/ES*, the secret's file for HS*);
    #: relative paths are relative to the config file; {id} is the member id
    jwt_key: str = ""
    jwt_sign_method: str = "RS256"
    #: PBKDF2-HMAC-SHA256 iterations for new password hashes (verification uses
    #: the count stored with each hash)
    password_iterations: int = 200_000


@dataclass(frozen=True, slots=True)
class TlsSpec:
    """TLS on the etcd faces (gRPC and JSON gateway); all "" = plaintext.
    Paths relative to the config file; {id} is replaced by the member id."""

    cert: str = ""  # the member's server certificate (PEM)
    key: str = ""  # its private key (PEM)
    ca: str = ""  # CA bundle that client certificates must chain to
    client_cert_auth: bool = False  # etcd's --client-cert-auth: the CN is the user

    @property
    def enabled(self) -> bool:
        return bool(self.cert)


@dataclass(frozen=True, slots=True)
class CurveSpec:
    """ZeroMQ CURVE on the native client port and the peer port."""

    enabled: bool = False
    #: each member's secret key file: Z85 public and secret keys, mode 0600
    #: (`python -m supervisor keys`); {id} is the member id; relative paths are
    #: relative to the config file
    secret_key: str = "keys/member-{id}.key"


@dataclass(frozen=True, slots=True)
class MaintenanceSpec:
    """Space and consistency upkeep (docs/operations.md), as etcd's flags of the same names."""

    #: etcd's --auto-compaction-mode: "" (off), "periodic" or "revision"
    auto_compaction_mode: str = ""
    #: etcd's --auto-compaction-retention: a duration ("1h", "30m", "90s"; a bare number is
    #: hours, as etcd) for periodic, a revision count ("1000") for revision; "0" is off
    auto_compaction_retention: str = "0"
    #: etcd's --quota-backend-bytes on the store's accounted size: 0 = etcd's default
    #: (2 GiB), -1 = no quota; over it, a NOSPACE alarm and writes refused
    quota_bytes: int = 0
    #: etcd's --experimental-initial-corrupt-check: compare with peers before serving
    corrupt_check_initial: bool = False
    #: etcd's --experimental-corrupt-check-time in seconds (0 = off): the leader compares
    #: members' HashKV at one revision; a mismatch raises a CORRUPT alarm
    corrupt_check_interval_s: int = 0


AUTO_COMPACTION_MODES = ("", "periodic", "revision")
DEFAULT_QUOTA_BYTES = 2 * 1024 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class FaultsSpec:
    """Fault injection (the drop-traffic request chaos uses): refused unless on."""

    injection: bool = False


@dataclass(frozen=True, slots=True)
class ClusterSpec:
    cluster_id: str
    members: tuple[MemberSpec, ...]
    data_dir: str = DEFAULT_DATA_DIR
    timing: TimingSpec = field(default_factory=TimingSpec)
    storage: StorageSpec = field(default_factory=StorageSpec)
    snapshot: SnapshotSpec = field(default_factory=SnapshotSpec)
    limits: LimitsSpec = field(default_factory=LimitsSpec)
    auth: AuthSpec = field(default_factory=AuthSpec)
    tls: TlsSpec = field(default_factory=TlsSpec)
    curve: CurveSpec = field(default_factory=CurveSpec)
    faults: FaultsSpec = field(default_factory=FaultsSpec)
    maintenance: MaintenanceSpec = field(default_factory=MaintenanceSpec)
    source: str = "<spec>"

    @property
    def ids(self) -> tuple[int, ...]:
        return tuple(m.id for m in self.members)

    def member(self, node_id: int) -> MemberSpec:
        for m in self.members:
            if m.id == node_id:
                return m
        raise SpecError(self.source, "--id", f"node {node_id} is not a member (members: {list(self.ids)})")

    def data_dir_for(self, node_id: int) -> Path:
        return Path(self.data_dir.format(cluster=self.cluster_id, id=node_id))

    def client_addresses(self) -> list[str]:
        return [m.client for m in self.members]

    def config_path(self, template: str, node_id: int = 0) -> Path:
        """A security file named in the config: {id} replaced, relative to the
        config file's directory (the working directory for a spec not from a file)."""
        path = Path(template.format(id=node_id))
        if path.is_absolute() or self.source.startswith(("<", "configs/")):
            return path
        return Path(self.source).parent / path

    def to_toml(self) -> str:
        """The spec as TOML that `parse_spec` reads back to an equal spec (tests and
        the supervisor write generated configs with it)."""
        out = ["[cluster]", f"id = {_toml_value(self.cluster_id)}",
               f"data_dir = {_toml_value(self.data_dir)}", ""]
        for section, value in (("timing", self.timing), ("storage", self.storage),
                               ("snapshot", self.snapshot), ("limits", self.limits), ("auth", self.auth),
                               ("tls", self.tls), ("curve", self.curve), ("faults", self.faults),
                               ("maintenance", self.maintenance)):
            out.append(f"[{section}]")
            out += [f"{f.name} = {_toml_value(getattr(value, f.name))}" for f in fields(value)]
            out.append("")
        for m in self.members:
            out += ["[[members]]", f"id = {m.id}", f"peer = {_toml_value(m.peer)}",
                    f"client = {_toml_value(m.client)}"]
            if m.peer_bind:
                out.append(f"peer_bind = {_toml_value(m.peer_bind)}")
            for key in ("client_bind", "grpc", "gateway", "grpc_bind", "gateway_bind", "curve_public", "metrics"):
                if getattr(m, key):
                    out.append(f"{key} = {_toml_value(getattr(m, key))}")
            out.append("")
        return "\n".join(out)


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


# --- loading -------------------------------------------------------------------------


def shipped_configs() -> list[str]:
    """Names of the configs shipped in the `configs` package."""
    root = importlib.resources.files("configs")
    return sorted(p.name for p in root.iterdir() if p.name.endswith(".toml"))


def load_spec(config: str | Path) -> ClusterSpec:
    """Load and validate a spec from a path, or from a shipped config's name."""
    path = Path(config)
    if path.is_file():
        return parse_spec(_read_toml(path.read_bytes(), str(path)), str(path))
    if "/" not in str(config):
        name = path.name if path.name.endswith(".toml") else f"{path.name}.toml"
        resource = importlib.resources.files("configs").joinpath(name)
        if resource.is_file():
            return parse_spec(_read_toml(resource.read_bytes(), f"configs/{name}"), f"configs/{name}")
    raise SpecError(str(config), "--config", "no such file, and not the name of a shipped config "
                    f"(shipped: {', '.join(shipped_configs())})")


def _read_toml(data: bytes, source: str) -> dict[str, Any]:
    try:
        return tomllib.loads(data.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise SpecError(source, "(file)", f"not valid TOML: {error}") from None


def parse_spec(doc: dict[str, Any], source: str = "<spec>") -> ClusterSpec:
    """Validate a parsed TOML document; raises SpecError naming the bad field."""
    _only_keys(doc, {"cluster", "timing", "storage", "snapshot", "limits", "members", "auth", "tls", "curve",
                     "faults", "maintenance"}, "", source)
    cluster = _table(doc, "cluster", source, required=True)
    _only_keys(cluster, {"id", "data_dir"}, "cluster.", source)
    cluster_id = _string(cluster, "id", "cluster.", source, required=True)
    if not _CLUSTER_ID.match(cluster_id):
        raise SpecError(source, "cluster.id", f"{cluster_id!r} must be 1-64 of [A-Za-z0-9._-]")
    data_dir = _string(cluster, "data_dir", "cluster.", source) or DEFAULT_DATA_DIR
    if "{id}" not in data_dir:
        raise SpecError(source, "cluster.data_dir", "the template must contain {id}: members must not share a directory")
    spec = ClusterSpec(
        cluster_id=cluster_id,
        members=_members(doc, source),
        data_dir=data_dir,
        timing=_section(doc, "timing", TimingSpec(), source),
        storage=_section(doc, "storage", StorageSpec(), source),
        snapshot=_section(doc, "snapshot", SnapshotSpec(), source),
        limits=_section(doc, "limits", LimitsSpec(), source),
        auth=_section(doc, "auth", AuthSpec(), source),
        tls=_section(doc, "tls", TlsSpec(), source),
        curve=_section(doc, "curve", CurveSpec(), source),
        faults=_section(doc, "faults", FaultsSpec(), source),
        maintenance=_section(doc, "maintenance", MaintenanceSpec(), source),
        source=source,
    )
    _check_ranges(spec)
    return spec


def _members(doc: dict[str, Any], source: str) -> tuple[MemberSpec, ...]:
    raw = doc.get("members")
    if not isinstance(raw, list) or not raw:
        raise SpecError(source, "members", "need at least one [[members]] table")
    members: list[MemberSpec] = []
    seen_addresses: dict[str, str] = {}
    for i, table in enumerate(raw):
        where = f"members[{i}]."
        if not isinstance(table, dict):
            raise SpecError(source, f"members[{i}]", "must be a table")
        _only_keys(table, {"id", *_MEMBER_ADDRESSES, *_MEMBER_URLS, "curve_public", "metrics"}, where, source)
        node_id = _int(table, "id", where, source, required=True)
        if node_id < 1:
            raise SpecError(source, f"{where}id", f"must be >= 1 (0 means 'no node'), got {node_id}")
        if any(m.id == node_id for m in members):
            raise SpecError(source, f"{where}id", f"duplicate member id {node_id}")
        member = MemberSpec(node_id, *(_endpoint(table, k, where, source, required=k in ("peer", "client"))
                                       for k in _MEMBER_ADDRESSES),
                            *(_url(table, k, where, source) for k in _MEMBER_URLS),
                            _curve_key(table, "curve_public", where, source))
        member = replace(member, metrics=_metrics_url(table, where, source))
        for key in ("peer", "client", "grpc", "gateway", "metrics"):
            # Keyed by HOST:PORT: a tcp:// and an http:// face on one port collide too.
            address = url_host_port(getattr(member, key))
            if not address:
                continue
            if address in seen_addresses:
                raise SpecError(source, f"{where}{key}", f"{address} is already used by {seen_addresses[address]}")
            seen_addresses[address] = f"{where}{key}"
        members.append(member)
    return tuple(members)


_MEMBER_ADDRESSES = ("peer", "client", "peer_bind", "client_bind")
_MEMBER_URLS = ("grpc", "gateway", "grpc_bind", "gateway_bind")


def _section(doc: dict[str, Any], name: str, default: Any, source: str) -> Any:
    table = _table(doc, name, source)
    allowed = {f.name: f for f in fields(default)}
    _only_keys(table, set(allowed), f"{name}.", source)
    values: dict[str, Any] = {}
    for key in table:
        if isinstance(getattr(default, key), bool):
            values[key] = _bool(table, key, f"{name}.", source)
        elif isinstance(getattr(default, key), int):
            values[key] = _int(table, key, f"{name}.", source)
        else:
            values[key] = _string(table, key, f"{name}.", source)
    return replace(default, **values)


_POSITIVE = {
    "timing": ("tick_ms", "election_ticks", "heartbeat_ticks", "request_timeout_ms"),
    "storage": ("segment_bytes", "keep_snapshots"),
    "snapshot": ("applied_entries", "wal_bytes", "chunk_bytes"),
    "limits": ("max_message_bytes", "max_batch", "max_append_bytes", "max_apply_bytes", "max_inflight_appends",
               "max_pending_requests", "send_hwm", "recv_hwm", "max_request_bytes", "max_txn_ops"),
    "auth": ("token_ttl_s", "password_iterations"),
}


def _check_ranges(spec: ClusterSpec) -> None:
    src = spec.source
    for section, names in _POSITIVE.items():
        for name in names:
            if getattr(getattr(spec, section), name) < 1:
                raise SpecError(src, f"{section}.{name}", f"must be >= 1, got {getattr(getattr(spec, section), name)}")
    if spec.limits.max_uncommitted_bytes < 0:
        raise SpecError(src, "limits.max_uncommitted_bytes", "must be >= 0 (0 = unlimited)")
    if spec.timing.election_ticks <= spec.timing.heartbeat_ticks:
        raise SpecError(src, "timing.election_ticks", f"({spec.timing.election_ticks}) must exceed "
                        f"timing.heartbeat_ticks ({spec.timing.heartbeat_ticks})")
    if spec.storage.fsync not in FSYNC_POLICIES:
        raise SpecError(src, "storage.fsync", f"{spec.storage.fsync!r} is not one of {FSYNC_POLICIES}")
    if spec.storage.wal_writes not in WAL_WRITES:
        raise SpecError(src, "storage.wal_writes", f"{spec.storage.wal_writes!r} is not one of {WAL_WRITES}")
    if spec.storage.segment_bytes < 4096:
        raise SpecError(src, "storage.segment_bytes", "must be >= 4096")
    # A snapshot chunk and a full AppendEntries must each fit in one frame, with room
    # for the envelope.
    for name in ("max_append_bytes",):
        if getattr(spec.limits, name) * 2 > spec.limits.max_message_bytes:
            raise SpecError(src, f"limits.{name}", "must be at most half of limits.max_message_bytes")
    if spec.snapshot.chunk_bytes * 2 > spec.limits.max_message_bytes:
        raise SpecError(src, "snapshot.chunk_bytes", "must be at most half of limits.max_message_bytes")
    _check_security(spec)
    _check_maintenance(spec)


#: Go's time.ParseDuration units, which etcd's --auto-compaction-retention takes.
_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")


def compaction_retention(mode: str, text: str) -> float:
    """etcd's reading of --auto-compaction-retention (embed/config.go): an integer
    is hours in periodic mode and a revision count in revision mode; otherwise, in
    periodic mode only, a Go duration ("30m", "1h30m", "90s"). Returns seconds
    (periodic) or revisions (revision); 0 means off. Raises ValueError."""
    text = text.strip()
    if re.fullmatch(r"\d+", text):
        return int(text) * 3600.0 if mode == "periodic" else float(int(text))
    if mode != "periodic":
        raise ValueError(f"{text!r} is not a revision count (revision mode takes an integer)")
    parts = _DURATION_PART.findall(text)
    if not text or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"{text!r} is not a duration such as \"1h\", \"30m\", \"90s\" or a number of hours")
    return sum(float(n) * _DURATION_UNITS[u] for n, u in parts)


def _check_maintenance(spec: ClusterSpec) -> None:
    src, m = spec.source, spec.maintenance
    if m.auto_compaction_mode not in AUTO_COMPACTION_MODES:
        raise SpecError(src, "maintenance.auto_compaction_mode",
                        f"{m.auto_compaction_mode!r} is not one of {AUTO_COMPACTION_MODES}")
    try:
        compaction_retention(m.auto_compaction_mode or "periodic", m.auto_compaction_retention)
    except ValueError as error:
        raise SpecError(src, "maintenance.auto_compaction_retention", str(error)) from None
    if m.quota_bytes < -1:
        raise SpecError(src, "maintenance.quota_bytes", "must be -1 (no quota), 0 (2 GiB) or a size in bytes")
    if m.corrupt_check_interval_s < 0:
        raise SpecError(src, "maintenance.corrupt_check_interval_s", "must be >= 0 (0 = off)")


def _check_security(spec: ClusterSpec) -> None:
    src = spec.source
    if spec.auth.token not in TOKEN_KINDS:
        raise SpecError(src, "auth.token", f"{spec.auth.token!r} is not one of {TOKEN_KINDS}")
    if spec.auth.token == "jwt" and not spec.auth.jwt_key:
        raise SpecError(src, "auth.jwt_key", "jwt tokens need a signing key file")
    if spec.auth.jwt_sign_method not in JWT_SIGN_METHODS:
        raise SpecError(src, "auth.jwt_sign_method", f"{spec.auth.jwt_sign_method!r} is not one of {JWT_SIGN_METHODS}")
    tls = spec.tls
    if bool(tls.cert) != bool(tls.key):
        raise SpecError(src, "tls.key" if tls.cert else "tls.cert", "a certificate needs its key and a key its certificate")
    if tls.client_cert_auth and not (tls.enabled and tls.ca):
        raise SpecError(src, "tls.client_cert_auth", "needs tls.cert, tls.key and tls.ca")
    scheme = "https://" if tls.enabled else "http://"
    for i, m in enumerate(spec.members):
        for key in _MEMBER_URLS:
            url = getattr(m, key)
            if url and not url.startswith(scheme):
                raise SpecError(src, f"members[{i}].{key}", f"{url!r} must be {scheme}HOST:PORT "
                                f"({'[tls] is set' if tls.enabled else 'no [tls] section'})")
        if spec.curve.enabled and not m.curve_public:
            raise SpecError(src, f"members[{i}].curve_public", "[curve] is enabled: every member needs its "
                            "public key (python -m supervisor keys)")


# --- field readers -------------------------------------------------------------------


def _only_keys(table: dict[str, Any], allowed: set[str], where: str, source: str) -> None:
    for key in table:
        if key not in allowed:
            raise SpecError(source, f"{where}{key}", f"unknown field (expected one of {sorted(allowed)})")


def _table(doc: dict[str, Any], name: str, source: str, required: bool = False) -> dict[str, Any]:
    value = doc.get(name)
    if value is None:
        if required:
            raise SpecError(source, name, "missing table")
        return {}
    if not isinstance(value, dict):
        raise SpecError(source, name, "must be a table")
    return value


def _int(table: dict[str, Any], key: str, where: str, source: str, required: bool = False) -> int:
    value = table.get(key)
    if value is None and required:
        raise SpecError(source, f"{where}{key}", "missing")
    if not isinstance(value, int) or isinstance(value, bool):
        raise SpecError(source, f"{where}{key}", f"must be an integer, got {value!r}")
    return value


def _string(table: dict[str, Any], key: str, where: str, source: str, required: bool = False) -> str:
    value = table.get(key)
    if value is None:
        if required:
            raise SpecError(source, f"{where}{key}", "missing")
        return ""
    if not isinstance(value, str):
        raise SpecError(source, f"{where}{key}", f"must be a string, got {value!r}")
    return value


def _bool(table: dict[str, Any], key: str, where: str, source: str) -> bool:
    value = table.get(key)
    if not isinstance(value, bool):
        raise SpecError(source, f"{where}{key}", f"must be true or false, got {value!r}")
    return value


def _curve_key(table: dict[str, Any], key: str, where: str, source: str) -> str:
    value = _string(table, key, where, source)
    if value and not _Z85_KEY.match(value):
        raise SpecError(source, f"{where}{key}", "must be a Z85 CURVE public key (40 characters)")
    return value


def _endpoint(table: dict[str, Any], key: str, where: str, source: str, required: bool) -> str:
    value = _string(table, key, where, source, required)
    if not value and not required:
        return ""
    match = _TCP_ENDPOINT.match(value)
    if not match:
        raise SpecError(source, f"{where}{key}", f"{value!r} is not a tcp://HOST:PORT address")
    port = int(match.group(2))
    if not 0 < port < 65536:
        raise SpecError(source, f"{where}{key}", f"port {port} out of range")
    return value


def _metrics_url(table: dict[str, Any], where: str, source: str) -> str:
    """The metrics endpoint's URL: always plain http (see MemberSpec)."""
    value = _url(table, "metrics", where, source)
    if value and not value.startswith("http://"):
        raise SpecError(source, f"{where}metrics", f"{value!r}: the metrics endpoint is plain http://HOST:PORT "
                        "(as etcd's --listen-metrics-urls may be), even when [tls] is on")
    return value


def _url(table: dict[str, Any], key: str, where: str, source: str) -> str:
    """An optional etcd face URL; "" (or absent) means the face is off."""
    value = _string(table, key, where, source)
    if not value:
        return ""
    match = _HTTP_URL.match(value)
    if not match:
        raise SpecError(source, f"{where}{key}", f"{value!r} is not an http(s)://HOST:PORT URL")
    port = int(match.group(2))
    if not 0 < port < 65536:
        raise SpecError(source, f"{where}{key}", f"port {port} out of range")
    return value
