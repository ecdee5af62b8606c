"""`python -m supervisor keys` for a hand-written config, and a node's refusal to
start on a key file that is missing, readable by others, or not its own."""
from __future__ import annotations

import ipaddress
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from cluster.curve_keys import load_member_keys, read_key_file
from cluster.discovery import Layout
from cluster.spec import SpecError, load_spec
from supervisor import security
from supervisor.configgen import ConfigConflict, prepare_config
from tests.supervisor.harness import clean_env

pytestmark = pytest.mark.timeout(60)

CONFIG = """\
[cluster]
id = "hand-written"

[[members]]
id = 1
peer = "tcp://10.0.0.1:7101"
client = "tcp://10.0.0.1:7201"
grpc = "http://10.0.0.1:2379"
gateway = "http://db-1.example:2380"

[[members]]
id = 2
peer = "tcp://10.0.0.2:7101"
client = "tcp://10.0.0.2:7201"
grpc = "http://10.0.0.2:2379"
"""


def _keys(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "supervisor", "keys", "--config", str(tmp_path / "c.toml"), *args],
                          cwd=tmp_path, env=clean_env(), capture_output=True, text=True, timeout=30)


def test_keys_creates_private_files_and_prints_only_public_lines(tmp_path: Path) -> None:
    (tmp_path / "c.toml").write_text(CONFIG)
    run = _keys(tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    keys = tmp_path / "keys"
    assert keys.stat().st_mode & 0o777 == 0o700 and (keys / "tls").stat().st_mode & 0o777 == 0o700
    for node_id in (1, 2):
        public, secret = read_key_file(keys / f"member-{node_id}.key")
        assert f'curve_public = "{public}"' in run.stdout
        assert secret not in run.stdout + run.stderr
        for private in (keys / f"member-{node_id}.key", keys / "tls" / f"member-{node_id}.key"):
            assert private.stat().st_mode & 0o777 == 0o600
    assert (keys / "tls" / "ca.key").stat().st_mode & 0o777 == 0o600
    # Member 1's certificate names the hosts of its faces; root's has CN root.
    cert = x509.load_pem_x509_certificate((keys / "tls" / "member-1.crt").read_bytes())
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("10.0.0.1")]
    assert sans.get_values_for_type(x509.DNSName) == ["db-1.example"]
    root = x509.load_pem_x509_certificate((keys / "tls" / "root.crt").read_bytes())
    assert root.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "root"
    # Running it again keeps every key (members keep their identities).
    again = _keys(tmp_path)
    assert again.returncode == 0 and again.stdout == run.stdout

    # The printed lines, pasted in, make a valid secure config whose members find their keys.
    printed = run.stdout.splitlines()
    sections = "\n".join(line for line in printed[2:] if not line.startswith("#") and "curve_public" not in line)
    config = CONFIG.replace("http://", "https://")
    for node_id in (1, 2):
        public = read_key_file(keys / f"member-{node_id}.key")[0]
        config = config.replace(f'id = {node_id}\n', f'id = {node_id}\ncurve_public = "{public}"\n', 1)
    (tmp_path / "secure.toml").write_text(config + "\n" + sections + "\n")
    spec = load_spec(tmp_path / "secure.toml")
    assert spec.curve.enabled and spec.tls.enabled
    assert load_member_keys(spec, 2).public == read_key_file(keys / "member-2.key")[0]


def test_a_member_refuses_a_missing_unsafe_or_foreign_key_file(tmp_path: Path) -> None:
    (tmp_path / "c.toml").write_text(CONFIG)
    files = security.SecurityFiles(tmp_path / "keys")
    spec = load_spec(tmp_path / "c.toml")
    publics = security.create(spec, files)
    secure = security.secure_spec(spec, publics, files, tmp_path)
    (tmp_path / "secure.toml").write_text(secure.to_toml())
    spec = load_spec(tmp_path / "secure.toml")
    assert load_member_keys(spec, 1).public == publics[1]

    key1 = files.member_key(1)
    os.chmod(key1, 0o644)
    with pytest.raises(SpecError, match="lets others read it"):
        load_member_keys(spec, 1)
    os.chmod(key1, 0o600)
    os.replace(files.member_key(2), tmp_path / "moved.key")
    with pytest.raises(SpecError, match="no such key file"):
        load_member_keys(spec, 2)
    os.replace(tmp_path / "moved.key", key1)  # member 2's pair where member 1's should be
    with pytest.raises(SpecError, match="wrong key file"):
        load_member_keys(spec, 1)

    # The node says so and exits 2 (a config problem), without a traceback.
    run = subprocess.run([sys.executable, "-m", "node", "--config", str(tmp_path / "secure.toml"), "--id", "1"],
                         cwd=tmp_path, env=clean_env(), capture_output=True, text=True, timeout=30)
    assert run.returncode == 2 and "wrong key file" in run.stderr and "Traceback" not in run.stderr, run.stderr


def test_up_secure_writes_a_secure_config_and_reuses_it(tmp_path: Path) -> None:
    layout = Layout(tmp_path / "secure")
    spec = prepare_config(layout, 3, secure=True)
    assert spec.curve.enabled and spec.tls.enabled
    assert all(m.grpc.startswith("https://") and m.gateway.startswith("https://") for m in spec.members)
    assert [load_member_keys(spec, m.id).public for m in spec.members] == [m.curve_public for m in spec.members]
    assert prepare_config(layout, 3) == spec  # a restart keeps the keys, --secure or not
    assert prepare_config(layout, None, secure=True) == spec
    plain = Layout(tmp_path / "plain")
    assert not prepare_config(plain, 1).curve.enabled  # the default stays plaintext
    with pytest.raises(ConfigConflict, match="plaintext cluster"):
        prepare_config(plain, 1, secure=True)
