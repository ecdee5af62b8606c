"""docs/deploy.md's three-host config, run as written: three network namespaces
made by hand stand for the three hosts (the documentation addresses 192.0.2.1N
replaced by theirs), each member started with `python -m node` inside its own
namespace as its systemd unit would, and the CLI on the host writes and reads
through them. Not the supervisor's --netns: only the documented path."""
from __future__ import annotations

import hashlib
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from cluster.client import Client, ClientError
from cluster.spec import load_spec
from tests.supervisor.harness import clean_env, wait_for
from tests.supervisor.netns_support import leftovers, unavailable

REASON = unavailable()
pytestmark = pytest.mark.skipif(REASON is not None, reason=f"no network namespaces here: {REASON}")
DOC = Path(__file__).resolve().parents[2] / "docs" / "deploy.md"
IDS = (1, 2, 3)


def documented_config() -> str:
    text = DOC.read_text()
    block = re.search(r"<!-- deploy:config:begin -->\n```toml\n(.*?)```\n<!-- deploy:config:end -->", text, re.S)
    assert block, "docs/deploy.md lost its config block markers"
    return block.group(1)


class Hosts:
    """Three namespaces on a bridge, named and addressed from the test's tmp path
    (a subnet outside the supervisor's 10.100-10.227 range); `close` removes them."""

    def __init__(self, tmp: Path) -> None:
        digest = hashlib.sha256(str(tmp).encode()).digest()
        tag = digest[:3].hex()
        self.subnet = f"10.{230 + digest[3] % 20}.{digest[4]}"
        self.bridge = f"jgdd{tag}"
        self.namespaces = {i: f"jgdd{tag}n{i}" for i in IDS}
        self.links = {i: f"jgdd{tag}h{i}" for i in IDS}
        self.made: list[str] = []

    def address(self, node_id: int) -> str:
        return f"{self.subnet}.{10 + node_id}"

    def make(self) -> None:
        self._ip("link", "add", self.bridge, "type", "bridge")
        self.made.append(self.bridge)
        self._ip("addr", "add", f"{self.subnet}.1/24", "dev", self.bridge)
        self._ip("link", "set", self.bridge, "up")
        for i in IDS:
            ns, link, inner = self.namespaces[i], self.links[i], f"{self.links[i][:-2]}c{i}"
            self._ip("netns", "add", ns)
            self.made.append(ns)
            self._ip("link", "add", link, "type", "veth", "peer", "name", inner, "netns", ns)
            self.made.append(link)
            self._ip("link", "set", link, "master", self.bridge)
            self._ip("link", "set", link, "up")
            self._ip("-n", ns, "addr", "add", f"{self.address(i)}/24", "dev", inner)
            self._ip("-n", ns, "link", "set", inner, "up")
            self._ip("-n", ns, "link", "set", "lo", "up")

    def close(self) -> None:
        for name in reversed(self.made):  # links before namespaces, the bridge last
            kind = ["netns", "del"] if name in self.namespaces.values() else ["link", "del"]
            subprocess.run(["ip", *kind, name], capture_output=True, check=False)

    @staticmethod
    def _ip(*args: str) -> None:
        subprocess.run(["ip", *args], capture_output=True, text=True, check=True)


@pytest.fixture
def hosts(tmp_path: Path) -> Iterator[Hosts]:
    made = Hosts(tmp_path)
    try:
        made.make()
        yield made
    finally:
        made.close()
        assert leftovers(made.made) == []


def test_the_documented_three_host_config_elects_a_leader_and_serves_the_cli_from_the_host(
        hosts: Hosts, tmp_path: Path) -> None:
    text = documented_config()
    for i in IDS:
        text = text.replace(f"192.0.2.1{i}", hosts.address(i))
    config = tmp_path / "cluster.toml"
    config.write_text(text)
    spec = load_spec(config)
    assert [m.peer for m in spec.members] == [f"tcp://{hosts.address(i)}:7101" for i in IDS]
    assert {m.peer_bind for m in spec.members} == {"tcp://0.0.0.0:7101"}
    procs: list[psutil.Process] = []
    try:
        for i in IDS:  # what each host's unit runs, inside that host's namespace
            with (tmp_path / f"node-{i}.log").open("wb") as log:
                child = subprocess.Popen(
                    ["ip", "netns", "exec", hosts.namespaces[i], sys.executable, "-m", "node", "--config",
                     str(config), "--id", str(i), "--data-dir", str(tmp_path / f"node-{i}")],
                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log, env=clean_env())
            procs.append(psutil.Process(child.pid))
        endpoints = ",".join(f"{hosts.address(i)}:7201" for i in IDS)
        wait_for(lambda: leader(endpoints), 40, "a leader among the three hosts", interval=0.2)
        put = cli("put", "--endpoints", endpoints, "greeting", "hello")
        assert put.returncode == 0, put.stdout + put.stderr
        got = cli("get", "--endpoints", endpoints, "greeting")
        assert got.stdout.split() == ["greeting", "hello"], got.stdout + got.stderr
        for i in IDS:  # every member has it: a serializable read answers from that member's own state
            wait_for(lambda: serializable_get(f"tcp://{hosts.address(i)}:7201") == b"hello", 20,
                     f"node {i} applying the write")
    finally:
        for proc in procs:
            try:
                proc.terminate()
            except psutil.NoSuchProcess:
                pass
        _, alive = psutil.wait_procs(procs, timeout=10)
        for proc in alive:
            proc.kill()
        psutil.wait_procs(alive, timeout=10)
        for i in IDS:
            print(f"--- node-{i}.log (tail)\n" + "\n".join(
                (tmp_path / f"node-{i}.log").read_text(errors="replace").splitlines()[-5:]))


def leader(endpoints: str) -> int | None:
    addresses = [f"tcp://{e}" for e in endpoints.split(",")]
    with Client(addresses, timeout=1.0, attempt_timeout=0.5) as client:
        for address in addresses:
            try:
                status = client.status(address, timeout=0.5)
            except ClientError:
                continue
            if status["role"] == "leader":
                return int(status["node_id"])
    return None


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cluster", *args], capture_output=True, text=True, timeout=60,
                          env=clean_env())


def serializable_get(endpoint: str) -> bytes | None:
    with Client([endpoint], timeout=1.0, attempt_timeout=0.5) as client:
        try:
            kv = client.get(b"greeting", serializable=True)
        except ClientError:
            return None
    return kv.value if kv is not None else None
