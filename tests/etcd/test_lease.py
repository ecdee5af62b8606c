"""etcd's Lease service on a real 3-member jangada cluster: the gRPC stubs and
etcdctl, through a follower and through the leader; a keepalive stream kept
through a leader's SIGKILL; expiry deleting keys; and etcdctl's lease outputs
compared with a real etcd 3.4's (skipped without the etcd binary)."""
from __future__ import annotations

import queue
import re
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from cluster.etcdpb import rpc_pb2, rpc_pb2_grpc
from cluster.spec import TimingSpec
from node.etcd.lease import min_lease_ttl
from node.localcluster import LocalCluster, wait_for
from tests.etcd.conftest import ETCDCTL, etcdctl
from tests.etcd.readiness import every_face_up
from tests.etcd.reference_etcd import reference_etcd

pytestmark = pytest.mark.timeout(180)
RPC_TIMEOUT = 10.0
MIN_TTL = 1  # etcd's rule for the fixture's timing: ceil(1.5 * 30 ticks * 10 ms) s


def _status(call: Callable[[], Any]) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as failure:
        call()
    return failure.value.code(), failure.value.details()


@pytest.fixture
def etcd_cluster(shared_etcd_cluster: LocalCluster) -> LocalCluster:
    """The module's cluster: the tests on it neither kill members nor change
    membership, and keep to their own keys and lease ids (the one that kills the
    leader makes its own)."""
    return shared_etcd_cluster


@pytest.fixture
def own_cluster(make_etcd_cluster: Callable[..., LocalCluster]) -> LocalCluster:
    return make_etcd_cluster()


@pytest.fixture
def roles(etcd_cluster: LocalCluster) -> tuple[int, int]:
    """(leader, a follower), every member up."""
    leader = every_face_up(etcd_cluster)
    return leader, next(i for i in etcd_cluster.ids if i != leader)


class KeepAliveStream:
    """One LeaseKeepAlive stream fed from a queue, its answers collected by a thread."""

    def __init__(self, channel: grpc.Channel) -> None:
        self._requests: queue.Queue[rpc_pb2.LeaseKeepAliveRequest | None] = queue.Queue()
        self.answers: queue.Queue[rpc_pb2.LeaseKeepAliveResponse | grpc.RpcError] = queue.Queue()
        self._call = rpc_pb2_grpc.LeaseStub(channel).LeaseKeepAlive(iter(self._requests.get, None))
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        try:
            for answer in self._call:
                self.answers.put(answer)
        except grpc.RpcError as error:
            self.answers.put(error)

    def keepalive(self, lease_id: int, timeout: float = 15.0) -> rpc_pb2.LeaseKeepAliveResponse:
        self._requests.put(rpc_pb2.LeaseKeepAliveRequest(ID=lease_id))
        answer = self.answers.get(timeout=timeout)
        if isinstance(answer, grpc.RpcError):
            raise answer
        return answer

    def close(self) -> None:
        self._requests.put(None)
        self._reader.join(10)


@pytest.mark.parametrize("through", ["follower", "leader"])
def test_grant_ttl_list_keepalive_revoke_with_etcds_answers(etcd_cluster: LocalCluster, roles: tuple[int, int],
                                                             through: str) -> None:
    node = roles[0] if through == "leader" else roles[1]
    chosen_id = {"follower": 0x1234, "leader": 0x1235}[through]  # one lease id per case: the cluster is shared
    with grpc.insecure_channel(etcd_cluster.grpc_endpoint(node)) as channel:
        leases, kv = rpc_pb2_grpc.LeaseStub(channel), rpc_pb2_grpc.KVStub(channel)
        granted = leases.LeaseGrant(rpc_pb2.LeaseGrantRequest(TTL=60), timeout=RPC_TIMEOUT)
        assert granted.ID > 0 and granted.TTL == 60 and granted.error == ""
        assert granted.header.member_id == node
        chosen = leases.LeaseGrant(rpc_pb2.LeaseGrantRequest(TTL=30, ID=chosen_id), timeout=RPC_TIMEOUT)
        assert (chosen.ID, chosen.TTL) == (chosen_id, 30)
        assert _status(lambda: leases.LeaseGrant(rpc_pb2.LeaseGrantRequest(TTL=5, ID=chosen_id), timeout=RPC_TIMEOUT)) \
            == (grpc.StatusCode.FAILED_PRECONDITION, "etcdserver: lease already exists")
        assert _status(lambda: leases.LeaseGrant(rpc_pb2.LeaseGrantRequest(TTL=9_000_000_001), timeout=RPC_TIMEOUT)) \
            == (grpc.StatusCode.OUT_OF_RANGE, "etcdserver: too large lease TTL")
        # etcd raises a TTL below its minimum (1.5 election timeouts) to it, even 0 or negative.
        for ttl in (0, -7):
            assert leases.LeaseGrant(rpc_pb2.LeaseGrantRequest(TTL=ttl), timeout=RPC_TIMEOUT).TTL == MIN_TTL

        put = kv.Put(rpc_pb2.PutRequest(key=b"svc/b", value=b"up", lease=granted.ID), timeout=RPC_TIMEOUT)
        kv.Put(rpc_pb2.PutRequest(key=b"svc/a", value=b"up", lease=granted.ID), timeout=RPC_TIMEOUT)
        ttl = leases.LeaseTimeToLive(rpc_pb2.LeaseTimeToLiveRequest(ID=granted.ID, keys=True), timeout=RPC_TIMEOUT)
        assert (ttl.ID, ttl.grantedTTL, list(ttl.keys)) == (granted.ID, 60, [b"svc/a", b"svc/b"])
        assert 55 <= ttl.TTL <= 60 and ttl.header.revision > put.header.revision
        without_keys = leases.LeaseTimeToLive(rpc_pb2.LeaseTimeToLiveRequest(ID=granted.ID), timeout=RPC_TIMEOUT)
        assert list(without_keys.keys) == []
        listed = leases.LeaseLeases(rpc_pb2.LeaseLeasesRequest(), timeout=RPC_TIMEOUT)
        assert {granted.ID, chosen_id} <= {status.ID for status in listed.leases}

        stream = KeepAliveStream(channel)
        try:
            renewed = stream.keepalive(granted.ID)
            assert (renewed.ID, renewed.TTL) == (granted.ID, 60) and renewed.header.revision >= ttl.header.revision
            assert stream.keepalive(chosen_id).TTL == 30

            revoked = leases.LeaseRevoke(rpc_pb2.LeaseRevokeRequest(ID=granted.ID), timeout=RPC_TIMEOUT)
            assert revoked.header.revision == ttl.header.revision + 1  # both keys deleted in one revision
            assert kv.Range(rpc_pb2.RangeRequest(key=b"svc/", range_end=b"svc0"), timeout=RPC_TIMEOUT).count == 0
            # etcd's answers for a lease that is gone: TTL 0 on the keepalive stream (which
            # goes on), TTL -1 from time-to-live, "not found" from revoke.
            gone = stream.keepalive(granted.ID)
            assert (gone.ID, gone.TTL) == (granted.ID, 0) and 0 < gone.header.revision <= revoked.header.revision
            assert stream.keepalive(chosen_id).TTL == 30
            assert (stream.keepalive(-3).ID, stream.keepalive(-3).TTL) == (-3, 0)
        finally:
            stream.close()
        missing = leases.LeaseTimeToLive(rpc_pb2.LeaseTimeToLiveRequest(ID=granted.ID, keys=True), timeout=RPC_TIMEOUT)
        assert (missing.ID, missing.TTL, missing.grantedTTL, list(missing.keys)) == (granted.ID, -1, 0, [])
        assert 0 < missing.header.revision <= revoked.header.revision and missing.header.member_id == node
        for lease_id in (granted.ID, 0, -1):
            assert _status(lambda: leases.LeaseRevoke(rpc_pb2.LeaseRevokeRequest(ID=lease_id), timeout=RPC_TIMEOUT)) \
                == (grpc.StatusCode.NOT_FOUND, "etcdserver: requested lease not found")
        assert _status(lambda: kv.Put(rpc_pb2.PutRequest(key=b"svc/c", value=b"x", lease=granted.ID),
                                      timeout=RPC_TIMEOUT)) \
            == (grpc.StatusCode.NOT_FOUND, "etcdserver: requested lease not found")
        assert granted.ID not in {s.ID for s in leases.LeaseLeases(rpc_pb2.LeaseLeasesRequest(),
                                                                   timeout=RPC_TIMEOUT).leases}


def test_an_expired_lease_deletes_its_keys_everywhere(etcd_cluster: LocalCluster, roles: tuple[int, int]) -> None:
    leader, follower = roles
    with grpc.insecure_channel(etcd_cluster.grpc_endpoint(follower)) as channel:
        leases, kv = rpc_pb2_grpc.LeaseStub(channel), rpc_pb2_grpc.KVStub(channel)
        asked_at = time.monotonic()  # the leader starts the TTL when it applies the grant, later
        lease = leases.LeaseGrant(rpc_pb2.LeaseGrantRequest(TTL=2), timeout=RPC_TIMEOUT)
        kv.Put(rpc_pb2.PutRequest(key=b"exp/a", value=b"1", lease=lease.ID), timeout=RPC_TIMEOUT)
        kv.Put(rpc_pb2.PutRequest(key=b"exp/keep", value=b"1"), timeout=RPC_TIMEOUT)
        wait_for(lambda: kv.Range(rpc_pb2.RangeRequest(key=b"exp/a", serializable=True), timeout=RPC_TIMEOUT).count
                 == 0, 10, "the expired lease's key to be deleted")
        assert time.monotonic() - asked_at >= 1.95  # not before its TTL
        assert leases.LeaseTimeToLive(rpc_pb2.LeaseTimeToLiveRequest(ID=lease.ID), timeout=RPC_TIMEOUT).TTL == -1
        assert kv.Range(rpc_pb2.RangeRequest(key=b"exp/a"), timeout=RPC_TIMEOUT).count == 0  # linearizable too
        assert kv.Range(rpc_pb2.RangeRequest(key=b"exp/keep"), timeout=RPC_TIMEOUT).count == 1
    for node in etcd_cluster.ids:  # every replica deleted it (serializable: its own state)
        with grpc.insecure_channel(etcd_cluster.grpc_endpoint(node)) as channel:
            kv = rpc_pb2_grpc.KVStub(channel)
            wait_for(lambda: kv.Range(rpc_pb2.RangeRequest(key=b"exp/a", serializable=True),
                                      timeout=RPC_TIMEOUT).count == 0, 10, f"node {node} to delete the key")


def test_a_keepalive_stream_outlives_a_leader_kill(own_cluster: LocalCluster) -> None:
    """The stream is on a follower; the leader is SIGKILLed; the follower asks the new
    leader for the next keepalives, so the lease (TTL 3 s) lives on well past its TTL."""
    etcd_cluster = own_cluster
    leader = every_face_up(etcd_cluster)
    follower = next(i for i in etcd_cluster.ids if i != leader)
    with grpc.insecure_channel(etcd_cluster.grpc_endpoint(follower)) as channel:
        leases, kv = rpc_pb2_grpc.LeaseStub(channel), rpc_pb2_grpc.KVStub(channel)
        lease = leases.LeaseGrant(rpc_pb2.LeaseGrantRequest(TTL=3), timeout=RPC_TIMEOUT)
        kv.Put(rpc_pb2.PutRequest(key=b"ka/held", value=b"1", lease=lease.ID), timeout=RPC_TIMEOUT)
        stream = KeepAliveStream(channel)
        try:
            assert stream.keepalive(lease.ID).TTL == 3
            etcd_cluster.kill(leader)
            killed_at = time.monotonic()
            while time.monotonic() - killed_at < 8.0:  # > TTL + an election
                answer = stream.keepalive(lease.ID)
                assert (answer.ID, answer.TTL) == (lease.ID, 3)
                time.sleep(0.5)
            new_leader = etcd_cluster.wait_for_leader()
            assert new_leader != leader
        finally:
            stream.close()
        left = leases.LeaseTimeToLive(rpc_pb2.LeaseTimeToLiveRequest(ID=lease.ID, keys=True), timeout=RPC_TIMEOUT)
        assert left.TTL > 0 and list(left.keys) == [b"ka/held"]
        assert kv.Range(rpc_pb2.RangeRequest(key=b"ka/held"), timeout=RPC_TIMEOUT).count == 1


# -- etcdctl ----------------------------------------------------------------------------------

LEASE_ID = re.compile(r"\b[0-9a-f]{16}\b")


def _last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _lease_session(endpoint: str) -> list[tuple[int, str, str]]:
    """etcdctl's lease commands against one endpoint, as (exit code, stdout, last
    line of stderr) with lease ids made comparable (L0, L1, ...) and the remaining
    seconds blanked (etcd truncates, jangada rounds up: checked separately)."""
    out: list[tuple[int, str, str]] = []
    names: dict[str, str] = {}

    def run(*args: str) -> str:
        done = etcdctl(endpoint, *args, check=False)
        stdout = LEASE_ID.sub(lambda m: names.setdefault(m.group(), f"L{len(names)}"), done.stdout)
        stdout = re.sub(r"remaining\(\d+s\)", "remaining(Ns)", stdout)
        out.append((done.returncode, stdout, LEASE_ID.sub("L", _last_line(done.stderr))))
        return done.stdout

    lease = LEASE_ID.search(run("lease", "grant", "60")).group()  # type: ignore[union-attr]
    run("lease", "grant", "0")
    run("lease", "grant", "9000000001")
    run("put", "k1", "v", f"--lease={lease}")
    run("put", "k0", "v", f"--lease={lease}")
    run("lease", "timetolive", lease)
    run("lease", "keep-alive", "--once", lease)
    run("lease", "revoke", lease)
    run("lease", "revoke", lease)
    run("lease", "timetolive", lease)
    run("lease", "timetolive", "--keys", lease)
    run("lease", "keep-alive", "--once", lease)
    run("lease", "keep-alive", lease)
    run("put", "k2", "v", f"--lease={lease}")
    run("get", "k", "--prefix", "--keys-only")
    return out


@pytest.mark.parametrize("through", ["follower", "leader"])
def test_etcdctl_lease_commands(etcd_cluster: LocalCluster, roles: tuple[int, int], through: str) -> None:
    endpoint = etcd_cluster.grpc_endpoint(roles[0] if through == "leader" else roles[1])
    granted = etcdctl(endpoint, "lease", "grant", "60").stdout
    match = re.fullmatch(r"lease ([0-9a-f]{16}) granted with TTL\(60s\)\n", granted)
    assert match, granted
    lease = match.group(1)
    assert etcdctl(endpoint, "put", "b", "1", f"--lease={lease}").stdout == "OK\n"
    assert etcdctl(endpoint, "put", "a", "1", f"--lease={lease}").stdout == "OK\n"
    ttl = etcdctl(endpoint, "lease", "timetolive", lease, "--keys").stdout
    assert re.fullmatch(rf"lease {lease} granted with TTL\(60s\), remaining\((59|60)s\), attached keys\(\[a b\]\)\n",
                        ttl), ttl
    listed = etcdctl(endpoint, "lease", "list").stdout.splitlines()
    assert listed[0] == f"found {len(listed) - 1} leases" and lease in listed[1:]
    assert etcdctl(endpoint, "lease", "keep-alive", "--once", lease).stdout == \
        f"lease {lease} keepalived with TTL(60)\n"
    # keep-alive without --once renews every TTL/3 until stopped: read two renewals of
    # a 3 s lease (one of 60 s would take 20 s), then stop it.
    short = re.fullmatch(r"lease ([0-9a-f]{16}) granted with TTL\(3s\)\n",
                         etcdctl(endpoint, "lease", "grant", "3").stdout)
    assert short, "lease grant 3"
    process = subprocess.Popen([str(ETCDCTL), f"--endpoints={endpoint}", "lease", "keep-alive", short.group(1)],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                               env={"ETCDCTL_API": "3", "PATH": "/usr/bin:/bin"})
    try:
        assert process.stdout is not None
        assert [process.stdout.readline() for _ in range(2)] == \
            [f"lease {short.group(1)} keepalived with TTL(3)\n"] * 2
    finally:
        process.kill()
        process.wait(10)
    assert etcdctl(endpoint, "lease", "revoke", lease).stdout == f"lease {lease} revoked\n"
    assert etcdctl(endpoint, "get", "a").stdout == ""
    assert etcdctl(endpoint, "lease", "timetolive", lease).stdout == f"lease {lease} already expired\n"
    assert etcdctl(endpoint, "lease", "keep-alive", lease).stdout == f"lease {lease} expired or revoked.\n"
    again = etcdctl(endpoint, "lease", "revoke", lease, check=False)
    assert (again.returncode, _last_line(again.stderr)) == \
        (1, "Error: failed to revoke lease (etcdserver: requested lease not found)")


def test_etcdctl_lease_outputs_are_etcds(etcd_cluster: LocalCluster, roles: tuple[int, int], tmp_path: Path) -> None:
    ours = _lease_session(etcd_cluster.grpc_endpoint(roles[1]))
    with reference_etcd(tmp_path) as etcd:
        endpoint = etcd.endpoint
        theirs = _lease_session(endpoint)
    assert ours == theirs


def test_the_minimum_ttl_is_etcds_rule() -> None:
    """1.5 election timeouts in whole seconds, rounded up (etcdserver/server.go)."""
    assert min_lease_ttl(TimingSpec(tick_ms=100, election_ticks=10)) == 2  # etcd's defaults: 1.5 s
    assert min_lease_ttl(TimingSpec(tick_ms=50, election_ticks=10)) == 1  # the reference etcd: 0.75 s
    assert min_lease_ttl(TimingSpec(tick_ms=10, election_ticks=30)) == MIN_TTL  # the fixture's timing
    assert min_lease_ttl(TimingSpec(tick_ms=100, election_ticks=40)) == 6
