"""Keys and certificates for a secure cluster (`keys`, `up --secure`).

For every member of a config:

* a ZeroMQ CURVE key pair in `<dir>/member-<id>.key` (cluster/curve_keys.py: mode
  0600 in a 0700 directory); its public key goes into the config as the member's
  `curve_public`;
* a TLS server certificate and key for its etcd faces (`<dir>/tls/member-<id>.crt`
  and `.key`), whose subjectAltNames are the hosts of its `grpc`/`gateway` URLs,
  signed by a CA made here (`<dir>/tls/ca.crt`; its key `ca.key` stays next to it,
  mode 0600, to sign more members' certificates later);
* a client certificate for the user `root` (`<dir>/tls/root.crt`, `.key`), for
  etcd's client-certificate authentication (the CN is the user).

Secrets are never printed; what an operator must paste into a hand-written config
is public (`config_lines`). Existing key files are kept (a restarted `up --secure`
must not change the members' identities); existing certificates likewise.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from cluster.certificates import CertificateError, certificate_authority, issue, new_private_key, write_private_key
from cluster.curve_keys import KeyFileError, new_key_pair, read_key_file, write_key_file
from cluster.spec import ClusterSpec, MemberSpec

ROOT_USER = "root"


@dataclass(frozen=True, slots=True)
class SecurityFiles:
    """Where `create` puts everything, under one directory."""

    root: Path

    def member_key(self, node_id: int) -> Path:
        return self.root / f"member-{node_id}.key"

    @property
    def tls(self) -> Path:
        return self.root / "tls"

    @property
    def ca_cert(self) -> Path:
        return self.tls / "ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.tls / "ca.key"

    def member_cert(self, node_id: int) -> Path:
        return self.tls / f"member-{node_id}.crt"

    def member_cert_key(self, node_id: int) -> Path:
        return self.tls / f"member-{node_id}.key"

    @property
    def client_cert(self) -> Path:
        return self.tls / f"{ROOT_USER}.crt"

    @property
    def client_key(self) -> Path:
        return self.tls / f"{ROOT_USER}.key"

    @property
    def jwt_key(self) -> Path:
        """The cluster's JWT signing key (ES256), the same file on every member."""
        return self.root / "jwt.key"


def create(spec: ClusterSpec, files: SecurityFiles) -> dict[int, str]:
    """Every member's CURVE key file and TLS certificate, the CA and root's client
    certificate (each kept if it exists); returns the members' public keys."""
    publics = {m.id: member_key_pair(files.member_key(m.id), m.id) for m in spec.members}
    try:
        ca_cert, ca_key = certificate_authority(files.ca_cert, files.ca_key)
    except CertificateError as error:
        raise KeyFileError(str(error)) from None
    for m in spec.members:
        if not files.member_cert(m.id).exists():
            issue(files.member_cert(m.id), files.member_cert_key(m.id), ca_cert, ca_key, f"jangada member {m.id}",
                  _member_hosts(m), server=True)
    if not files.client_cert.exists():
        issue(files.client_cert, files.client_key, ca_cert, ca_key, ROOT_USER, [], server=False)
    if not files.jwt_key.exists():
        write_private_key(files.jwt_key, new_private_key())
    return publics


def member_key_pair(path: Path, node_id: int) -> str:
    """The public key of the member's key file, created if missing. A file that is
    there but unsafe or broken is an error, never silently replaced."""
    if path.exists():
        return read_key_file(path)[0]
    public, secret = new_key_pair()
    write_key_file(path, node_id, public, secret)
    return public


def secure_spec(spec: ClusterSpec, publics: dict[int, str], files: SecurityFiles,
                relative_to: Path) -> ClusterSpec:
    """`spec` with [curve] on (members' public keys set), [tls] pointing at the
    files and https:// face URLs. Paths are relative to the directory of the
    config that will hold the spec (`relative_to`) when they are under it."""
    def rel(path: Path) -> str:
        try:
            return str(path.relative_to(relative_to))
        except ValueError:
            return str(path)
    template = SecurityFiles(Path(rel(files.root)))
    members = tuple(replace(m, curve_public=publics[m.id], grpc=_https(m.grpc), gateway=_https(m.gateway),
                            grpc_bind=_https(m.grpc_bind), gateway_bind=_https(m.gateway_bind))
                    for m in spec.members)
    curve = replace(spec.curve, enabled=True, secret_key=str(template.root / "member-{id}.key"))
    tls = replace(spec.tls, cert=str(template.tls / "member-{id}.crt"), key=str(template.tls / "member-{id}.key"),
                  ca=str(template.ca_cert))
    # JWT tokens: any member checks them by itself, so a TLS client certificate's
    # user gets a token from whichever member it reached, a follower included
    # (a simple token is issued through the leader, which cannot vouch for a
    # certificate another member checked).
    auth = replace(spec.auth, token="jwt", jwt_key=str(template.jwt_key), jwt_sign_method="ES256")
    return replace(spec, members=members, curve=curve, tls=tls, auth=auth)


def config_lines(spec: ClusterSpec, publics: dict[int, str], files: SecurityFiles) -> list[str]:
    """What to paste into a hand-written config (all public: no secret is printed)."""
    lines = ["[curve]", "enabled = true", f'secret_key = "{files.root / "member-{id}.key"}"', "",
             "[tls]", f'cert = "{files.tls / "member-{id}.crt"}"', f'key = "{files.tls / "member-{id}.key"}"',
             f'ca = "{files.ca_cert}"', "# client_cert_auth = true   # etcd's --client-cert-auth", "",
             "[auth]", 'token = "jwt"', f'jwt_key = "{files.jwt_key}"   # the same file on every member',
             'jwt_sign_method = "ES256"', "",
             "# in each [[members]] table (and make its grpc/gateway URLs https://):"]
    lines += [f'#   member {m.id}:\ncurve_public = "{publics[m.id]}"' for m in spec.members]
    return lines


def tls_paths(spec: ClusterSpec) -> tuple[str, str, str]:
    """The state file's `ca`, `client_cert`, `client_key` (absolute; "" when the
    config has no [tls] CA, or root's certificate is not next to it)."""
    if not spec.tls.ca:
        return "", "", ""
    ca = spec.config_path(spec.tls.ca).absolute()
    cert, key = ca.parent / f"{ROOT_USER}.crt", ca.parent / f"{ROOT_USER}.key"
    if not (cert.exists() and key.exists()):
        return str(ca), "", ""
    return str(ca), str(cert), str(key)


def _https(url: str) -> str:
    return "https://" + url.removeprefix("http://") if url.startswith("http://") else url


def _member_hosts(member: MemberSpec) -> list[str]:
    hosts = []
    for url in (member.grpc, member.gateway, member.grpc_bind, member.gateway_bind):
        if url:
            host = url.split("://", 1)[-1].rsplit(":", 1)[0].strip("[]")
            if host not in hosts and host not in ("0.0.0.0", "::"):
                hosts.append(host)
    return hosts or ["localhost"]
