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

import datetime
import ipaddress
import os
from dataclasses import dataclass, replace
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from cluster.curve_keys import KeyFileError, new_key_pair, read_key_file, write_key_file
from cluster.spec import ClusterSpec, MemberSpec

#: Certificates made here last this long (a local or test cluster; real deployments
#: bring their own CA and rotation).
VALID_DAYS = 825
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
    ca_cert, ca_key = _ca(files)
    for m in spec.members:
        if not files.member_cert(m.id).exists():
            _issue(files.member_cert(m.id), files.member_cert_key(m.id), ca_cert, ca_key, f"jangada member {m.id}",
                   _member_hosts(m), server=True)
    if not files.client_cert.exists():
        _issue(files.client_cert, files.client_key, ca_cert, ca_key, ROOT_USER, [], server=False)
    if not files.jwt_key.exists():
        _private_key_file(files.jwt_key, ec.generate_private_key(ec.SECP256R1()))
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


def _private_key_file(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(pem)
    os.chmod(tmp, 0o600)
    tmp.replace(path)


def _ca(files: SecurityFiles) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    if files.ca_cert.exists() and files.ca_key.exists():
        key = serialization.load_pem_private_key(files.ca_key.read_bytes(), None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise KeyFileError(f"{files.ca_key}: not an EC private key")
        return x509.load_pem_x509_certificate(files.ca_cert.read_bytes()), key
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "jangada cluster CA")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, encipher_only=False,
                                         decipher_only=False), critical=True)
            .sign(key, hashes.SHA256()))
    _private_key_file(files.ca_key, key)
    files.ca_cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert, key


def _issue(cert_path: Path, key_path: Path, ca_cert: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey,
           common_name: str, hosts: list[str], server: bool) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
               .issuer_name(ca_cert.subject).public_key(key.public_key())
               .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH if server
                                                     else ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False))
    if hosts:
        builder = builder.add_extension(x509.SubjectAlternativeName([_san(h) for h in hosts]), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    _private_key_file(key_path, key)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _san(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)
