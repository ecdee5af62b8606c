"""etcd's Lock and Election services on a jangada cluster, and the same tests
against a real etcd 3.4 (skipped when the `etcd` binary is not installed): what
etcd answers (keys, errors, etcdctl's output) is what we must answer.

Leases come from each target's Lease service. `etcdctl lock` and `etcdctl
elect` run the concurrency recipes on the client side (Lease, KV and Watch
services), so they check those services' behaviour together with our outputs.
"""
from __future__ import annotations

import asyncio
import os
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import grpc
import pytest

from cluster.etcdpb import rpc_pb2, rpc_pb2_grpc, v3election_pb2, v3election_pb2_grpc, v3lock_pb2, v3lock_pb2_grpc
from cluster import kv
from cluster.kv import KeyValue
from cluster.protocol import (
    EVENT_DELETE, EVENT_PUT, ErrorCode, WatchCancelRequest, WatchCreateRequest, WatchEvent, WatchFrame,
    WatchProgressRequest,
)
from node.etcd import errors
from node.etcd.errors import EtcdError
from node.etcd.keywatch import KeyWatch
from node.etcd.recipes import LOST_ANSWER_ATTEMPTS, Store, create_revision_is, get_op, put_op
from node.etcd.watch import Lanes
from node.localcluster import LocalCluster
from tests.etcd.conftest import ETCDCTL
from tests.etcd.recording_link import RecordingLink
from tests.etcd.reference_etcd import reference_etcd

pytestmark = [pytest.mark.timeout(120)]
RPC_TIMEOUT = 10.0


@dataclass
class Target:
    """A server under test: jangada (3 members) or a real etcd (1 member)."""

    name: str
    endpoints: list[str]
    grant: Callable[[int], int]
    time_to_live: Callable[[int], int]  # a lease's remaining seconds
    channels: list[grpc.Channel] = field(default_factory=list)

    def channel(self, index: int = 0) -> grpc.Channel:
        return self.channels[index % len(self.channels)]

    def lock(self, index: int = 0) -> v3lock_pb2_grpc.LockStub:
        return v3lock_pb2_grpc.LockStub(self.channel(index))

    def election(self, index: int = 0) -> v3election_pb2_grpc.ElectionStub:
        return v3election_pb2_grpc.ElectionStub(self.channel(index))

    def kv(self, index: int = 0) -> rpc_pb2_grpc.KVStub:
        return rpc_pb2_grpc.KVStub(self.channel(index))

    def keys(self, prefix: bytes) -> list[bytes]:
        end = prefix[:-1] + bytes([prefix[-1] + 1])
        response = self.kv().Range(rpc_pb2.RangeRequest(key=prefix, range_end=end), timeout=RPC_TIMEOUT)
        return [item.key for item in response.kvs]

    def has_session_services(self) -> bool:
        """Whether etcdctl's client-side recipes can run here (Lease and Watch services)."""
        try:
            rpc_pb2_grpc.LeaseStub(self.channel()).LeaseLeases(rpc_pb2.LeaseLeasesRequest(), timeout=RPC_TIMEOUT)
        except grpc.RpcError as error:
            if error.code() is grpc.StatusCode.UNIMPLEMENTED:
                return False
            raise
        watch = rpc_pb2_grpc.WatchStub(self.channel()).Watch(iter([]), timeout=2.0)
        try:
            next(iter(watch), None)
        except grpc.RpcError as error:
            return error.code() is not grpc.StatusCode.UNIMPLEMENTED
        return True


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    """A single-member etcd 3.4 (tests/etcd/reference_etcd.py), with its own Lease
    service; one per module (every test uses its own lock and election names)."""
    with reference_etcd(tmp_path_factory.mktemp("etcd")) as etcd, grpc.insecure_channel(etcd.endpoint) as channel:
        leases = rpc_pb2_grpc.LeaseStub(channel)

        def grant(ttl: int) -> int:
            return leases.LeaseGrant(rpc_pb2.LeaseGrantRequest(TTL=ttl), timeout=RPC_TIMEOUT).ID

        def time_to_live(lease: int) -> int:
            return leases.LeaseTimeToLive(rpc_pb2.LeaseTimeToLiveRequest(ID=lease), timeout=RPC_TIMEOUT).TTL

        yield Target("etcd", [etcd.endpoint], grant, time_to_live, [channel])


@pytest.fixture
def jangada(shared_etcd_cluster: LocalCluster) -> Iterator[Target]:
    """The module's jangada cluster (every test uses its own lock and election names)."""
    yield from _target(shared_etcd_cluster)


@pytest.fixture
def own_jangada(etcd_cluster: LocalCluster) -> Iterator[Target]:
    """A cluster of the test's own, for tests that kill members or count watches."""
    yield from _target(etcd_cluster)


def _target(etcd_cluster: LocalCluster) -> Iterator[Target]:
    endpoints = etcd_cluster.grpc_endpoints()
    channels = [grpc.insecure_channel(endpoint) for endpoint in endpoints]
    leases = rpc_pb2_grpc.LeaseStub(channels[0])
    try:
        for channel in channels:  # each member's face listens once its node has started it
            grpc.channel_ready_future(channel).result(timeout=30)

        def grant(ttl: int) -> int:
            return leases.LeaseGrant(rpc_pb2.LeaseGrantRequest(TTL=ttl), timeout=RPC_TIMEOUT).ID

        def time_to_live(lease: int) -> int:
            return leases.LeaseTimeToLive(rpc_pb2.LeaseTimeToLiveRequest(ID=lease), timeout=RPC_TIMEOUT).TTL

        yield Target("jangada", endpoints, grant, time_to_live, channels)
    finally:
        for channel in channels:
            channel.close()


@pytest.fixture(params=["jangada", "etcd"])
def target(request: pytest.FixtureRequest) -> Target:
    return request.getfixturevalue("jangada" if request.param == "jangada" else "reference")


def _error(call: Callable[[], object]) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    return caught.value.code(), caught.value.details()


def _eventually(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


# -- Lock ---------------------------------------------------------------------------


def test_lock_is_held_until_unlock_and_the_waiter_on_another_member_gets_it_then(target: Target) -> None:
    first, second = target.grant(30), target.grant(30)
    held = target.lock(0).Lock(v3lock_pb2.LockRequest(name=b"jobs", lease=first), timeout=RPC_TIMEOUT)
    assert held.key == b"jobs/" + format(first, "x").encode()
    assert held.header.revision > 0
    waiting = target.lock(1).Lock.future(v3lock_pb2.LockRequest(name=b"jobs", lease=second), timeout=30)
    time.sleep(1.0)
    assert not waiting.done(), "the second contender got the lock while the first held it"
    unlocked = target.lock(2).Unlock(v3lock_pb2.UnlockRequest(key=held.key), timeout=RPC_TIMEOUT)
    got = waiting.result(timeout=15)
    assert got.key == b"jobs/" + format(second, "x").encode()
    assert got.header.revision >= unlocked.header.revision > held.header.revision


def test_locking_again_with_the_same_lease_returns_the_same_key_at_once(target: Target) -> None:
    lease = target.grant(30)
    lock = target.lock()
    first = lock.Lock(v3lock_pb2.LockRequest(name=b"again", lease=lease), timeout=RPC_TIMEOUT)
    second = lock.Lock(v3lock_pb2.LockRequest(name=b"again", lease=lease), timeout=RPC_TIMEOUT)
    assert first.key == second.key
    assert second.header.revision == first.header.revision  # etcd's txn only read: no new revision


def test_a_waiter_whose_call_is_cancelled_deletes_its_key(target: Target) -> None:
    holder, waiter = target.grant(30), target.grant(30)
    held = target.lock(0).Lock(v3lock_pb2.LockRequest(name=b"gone", lease=holder), timeout=RPC_TIMEOUT)
    waiting = target.lock(1).Lock.future(v3lock_pb2.LockRequest(name=b"gone", lease=waiter), timeout=30)
    waiter_key = b"gone/" + format(waiter, "x").encode()
    _eventually(lambda: waiter_key in target.keys(b"gone/"), 10, "the waiter's key")
    waiting.cancel()
    _eventually(lambda: target.keys(b"gone/") == [held.key], 10, "the cancelled waiter's key to go")


def test_a_waiter_whose_deadline_passes_deletes_its_key(target: Target) -> None:
    holder, waiter = target.grant(30), target.grant(30)
    held = target.lock(0).Lock(v3lock_pb2.LockRequest(name=b"late", lease=holder), timeout=RPC_TIMEOUT)
    code, details = _error(lambda: target.lock(1).Lock(v3lock_pb2.LockRequest(name=b"late", lease=waiter),
                                                       timeout=1.0))
    # Whichever copy of the deadline fires first: the client's (DEADLINE_EXCEEDED), or
    # the server's, which etcd 3.4's lock service returns as a plain error (its
    # grpc-go makes that UNKNOWN "context deadline exceeded": seen once in CI).
    assert code is grpc.StatusCode.DEADLINE_EXCEEDED or (
        code is grpc.StatusCode.UNKNOWN and details == "context deadline exceeded"), (code, details)
    _eventually(lambda: target.keys(b"late/") == [held.key], 10, "the timed-out waiter's key to go")


def test_an_expiring_lease_releases_the_lock(target: Target) -> None:
    short, waiter = target.grant(2), target.grant(60)
    target.lock(0).Lock(v3lock_pb2.LockRequest(name=b"ttl", lease=short), timeout=RPC_TIMEOUT)
    started = time.monotonic()
    got = target.lock(1).Lock(v3lock_pb2.LockRequest(name=b"ttl", lease=waiter), timeout=30)
    assert got.key == b"ttl/" + format(waiter, "x").encode()
    assert time.monotonic() - started >= 1.0  # it waited for the expiry


def test_lock_errors_are_etcds(target: Target) -> None:
    lock = target.lock()
    assert _error(lambda: lock.Lock(v3lock_pb2.LockRequest(name=b"x", lease=0x7777), timeout=RPC_TIMEOUT)) == (
        grpc.StatusCode.UNKNOWN, "etcdserver: requested lease not found")
    assert _error(lambda: lock.Unlock(v3lock_pb2.UnlockRequest(key=b""), timeout=RPC_TIMEOUT)) == (
        grpc.StatusCode.UNKNOWN, "etcdserver: key is not provided")
    # Lease 0 ("no lease"): the server's session grants a new 60 s lease for the key.
    held = lock.Lock(v3lock_pb2.LockRequest(name=b"nolease", lease=0), timeout=RPC_TIMEOUT)
    lease = int(held.key.removeprefix(b"nolease/"), 16)
    assert lease != 0
    ttl = target.time_to_live(lease)
    assert 50 <= ttl <= 60


# -- Election -----------------------------------------------------------------------


class Observer:
    """An Observe stream read by a thread into a queue."""

    def __init__(self, stub: v3election_pb2_grpc.ElectionStub, name: bytes) -> None:
        self.call = stub.Observe(v3election_pb2.LeaderRequest(name=name), timeout=60)
        self.seen: queue.Queue[v3election_pb2.LeaderResponse] = queue.Queue()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        try:
            for response in self.call:
                self.seen.put(response)
        except grpc.RpcError:
            pass

    def next(self, timeout: float = 10.0) -> tuple[bytes, bytes]:
        response = self.seen.get(timeout=timeout)
        return response.kv.key, response.kv.value

    def close(self) -> None:
        self.call.cancel()
        self.thread.join(timeout=5)


def test_campaign_leader_proclaim_observe_and_resign(target: Target) -> None:
    first, second = target.grant(30), target.grant(30)
    observer = Observer(target.election(2), b"svc")
    try:
        won = target.election(0).Campaign(v3election_pb2.CampaignRequest(name=b"svc", lease=first, value=b"a1"),
                                          timeout=RPC_TIMEOUT)
        key_a = b"svc/" + format(first, "x").encode()
        assert (won.leader.name, won.leader.key, won.leader.lease) == (b"svc", key_a, first)
        assert won.leader.rev == won.header.revision
        assert observer.next() == (key_a, b"a1")
        waiting = target.election(1).Campaign.future(
            v3election_pb2.CampaignRequest(name=b"svc", lease=second, value=b"b1"), timeout=30)
        leader = target.election(1).Leader(v3election_pb2.LeaderRequest(name=b"svc"), timeout=RPC_TIMEOUT)
        assert (leader.kv.key, leader.kv.value, leader.kv.create_revision) == (key_a, b"a1", won.leader.rev)
        proclaimed = target.election(1).Proclaim(v3election_pb2.ProclaimRequest(leader=won.leader, value=b"a2"),
                                                 timeout=RPC_TIMEOUT)
        assert proclaimed.header.revision > won.header.revision
        assert observer.next() == (key_a, b"a2")
        assert not waiting.done()
        target.election(2).Resign(v3election_pb2.ResignRequest(leader=won.leader), timeout=RPC_TIMEOUT)
        elected = waiting.result(timeout=15)
        key_b = b"svc/" + format(second, "x").encode()
        assert elected.leader.key == key_b
        assert observer.next() == (key_b, b"b1")
        leader = target.election(0).Leader(v3election_pb2.LeaderRequest(name=b"svc"), timeout=RPC_TIMEOUT)
        assert (leader.kv.key, leader.kv.value) == (key_b, b"b1")
    finally:
        observer.close()


def test_campaign_again_with_the_same_lease_keeps_the_place_and_proclaims(target: Target) -> None:
    lease = target.grant(30)
    election = target.election()
    first = election.Campaign(v3election_pb2.CampaignRequest(name=b"re", lease=lease, value=b"v1"),
                              timeout=RPC_TIMEOUT)
    again = election.Campaign(v3election_pb2.CampaignRequest(name=b"re", lease=lease, value=b"v2"),
                              timeout=RPC_TIMEOUT)
    assert again.leader.rev == first.leader.rev and again.leader.key == first.leader.key
    leader = election.Leader(v3election_pb2.LeaderRequest(name=b"re"), timeout=RPC_TIMEOUT)
    assert leader.kv.value == b"v2"


def test_an_expiring_leader_lease_elects_the_next_candidate(target: Target) -> None:
    short, other = target.grant(2), target.grant(60)
    target.election(0).Campaign(v3election_pb2.CampaignRequest(name=b"exp", lease=short, value=b"s"),
                                timeout=RPC_TIMEOUT)
    elected = target.election(1).Campaign(v3election_pb2.CampaignRequest(name=b"exp", lease=other, value=b"o"),
                                          timeout=30)
    assert elected.leader.key == b"exp/" + format(other, "x").encode()


def test_a_candidate_whose_deadline_passes_resigns(target: Target) -> None:
    leader, candidate = target.grant(30), target.grant(30)
    won = target.election(0).Campaign(v3election_pb2.CampaignRequest(name=b"dl", lease=leader, value=b"l"),
                                      timeout=RPC_TIMEOUT)
    code, details = _error(lambda: target.election(1).Campaign(
        v3election_pb2.CampaignRequest(name=b"dl", lease=candidate, value=b"c"), timeout=1.0))
    if target.name == "etcd" and code is grpc.StatusCode.UNKNOWN:
        # etcd 3.4 itself, now and then: its server answers the campaign's own context
        # error before the client's deadline fires, and grpc-go sends that as Unknown
        # (seen once in CI, 2026-12-07). jangada's face always says DEADLINE_EXCEEDED.
        assert "context" in details or "deadline" in details, details
    else:
        assert code is grpc.StatusCode.DEADLINE_EXCEEDED, (code, details)
    _eventually(lambda: target.keys(b"dl/") == [won.leader.key], 10, "the candidate's key to go")


def test_election_errors_are_etcds(target: Target) -> None:
    election = target.election()
    assert _error(lambda: election.Leader(v3election_pb2.LeaderRequest(name=b"none"), timeout=RPC_TIMEOUT)) == (
        grpc.StatusCode.UNKNOWN, "election: no leader")
    lease = target.grant(30)
    won = election.Campaign(v3election_pb2.CampaignRequest(name=b"err", lease=lease, value=b"v"),
                            timeout=RPC_TIMEOUT)
    resigned = election.Resign(v3election_pb2.ResignRequest(leader=won.leader), timeout=RPC_TIMEOUT)
    assert resigned.header.revision > won.header.revision
    # Resigning again is not an error (the compare fails, nothing is deleted).
    election.Resign(v3election_pb2.ResignRequest(leader=won.leader), timeout=RPC_TIMEOUT)
    assert _error(lambda: election.Proclaim(v3election_pb2.ProclaimRequest(leader=won.leader, value=b"w"),
                                            timeout=RPC_TIMEOUT)) == (grpc.StatusCode.UNKNOWN, "election: not leader")
    missing = (grpc.StatusCode.UNKNOWN, '"leader" field must be provided')
    assert _error(lambda: election.Proclaim(v3election_pb2.ProclaimRequest(value=b"w"), timeout=RPC_TIMEOUT)) == missing
    assert _error(lambda: election.Resign(v3election_pb2.ResignRequest(), timeout=RPC_TIMEOUT)) == missing
    assert _error(lambda: election.Campaign(v3election_pb2.CampaignRequest(name=b"err", lease=0x7777, value=b"v"),
                                            timeout=RPC_TIMEOUT)) == (
        grpc.StatusCode.UNKNOWN, "etcdserver: requested lease not found")


def test_observe_waits_for_a_first_leader(target: Target) -> None:
    observer = Observer(target.election(1), b"later")
    try:
        time.sleep(0.5)
        assert observer.seen.empty()
        lease = target.grant(30)
        target.election(0).Campaign(v3election_pb2.CampaignRequest(name=b"later", lease=lease, value=b"x"),
                                    timeout=RPC_TIMEOUT)
        assert observer.next() == (b"later/" + format(lease, "x").encode(), b"x")
    finally:
        observer.close()


# -- etcdctl lock / elect (client-side recipes: need the Lease and Watch services) ---------


class Ctl:
    """etcdctl subprocesses, ended by pid at teardown."""

    def __init__(self, target: Target) -> None:
        if ETCDCTL is None:
            pytest.skip("etcdctl is not installed")
        if not target.has_session_services():
            pytest.skip(f"{target.name} has no Lease/Watch services yet (etcdctl lock/elect need them)")
        self.etcdctl: str = ETCDCTL
        self.target = target
        self.processes: list[subprocess.Popen[str]] = []

    def start(self, index: int, *args: str) -> subprocess.Popen[str]:
        endpoint = self.target.endpoints[index % len(self.target.endpoints)]
        process = subprocess.Popen([self.etcdctl, f"--endpoints={endpoint}", "--dial-timeout=3s", *args],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   env={**os.environ, "ETCDCTL_API": "3"})
        self.processes.append(process)
        return process

    def lines(self, process: subprocess.Popen[str], count: int, timeout: float = 15.0) -> list[str]:
        """The next `count` lines of `process`'s output, read by a thread with a bound."""
        out: list[str] = []
        assert process.stdout is not None
        reader = threading.Thread(target=lambda: out.extend(process.stdout.readline() for _ in range(count)),  # type: ignore[union-attr]
                                  daemon=True)
        reader.start()
        reader.join(timeout)
        if reader.is_alive():
            raise AssertionError(f"etcdctl printed {out} and then nothing within {timeout} s")
        return [line.rstrip("\n") for line in out]

    def interrupt(self, process: subprocess.Popen[str]) -> int:
        process.send_signal(signal.SIGINT)
        return process.wait(timeout=15)

    def close(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
                process.wait()


@pytest.fixture
def ctl(target: Target) -> Iterator[Ctl]:
    runner = Ctl(target)
    try:
        yield runner
    finally:
        runner.close()


def test_etcdctl_lock_waits_for_the_holder_to_end(target: Target, ctl: Ctl) -> None:
    first = ctl.start(0, "lock", "shared")
    [key] = ctl.lines(first, 1)
    assert key.startswith("shared/")
    second = ctl.start(1, "lock", "shared")
    assert second.stdout is not None
    time.sleep(1.5)
    assert second.poll() is None
    assert ctl.interrupt(first) == 0
    [second_key] = ctl.lines(second, 1)
    assert second_key.startswith("shared/") and second_key != key
    assert ctl.interrupt(second) == 0


def test_etcdctl_lock_runs_a_command_while_holding(target: Target, ctl: Ctl) -> None:
    process = ctl.start(0, "lock", "exec-lock", "--", "echo", "hi")
    out, err = process.communicate(timeout=30)
    assert (process.returncode, out) == (0, "hi\n"), err
    assert target.keys(b"exec-lock/") == []


def test_etcdctl_elect_and_listen(target: Target, ctl: Ctl) -> None:
    listener = ctl.start(2, "elect", "-l", "vote")
    candidate = ctl.start(0, "elect", "vote", "first")
    key, value = ctl.lines(candidate, 2)
    assert key.startswith("vote/") and value == "first"
    assert ctl.lines(listener, 2) == [key, value]
    runner_up = ctl.start(1, "elect", "vote", "second")
    time.sleep(1.0)
    assert runner_up.poll() is None
    assert ctl.interrupt(candidate) == 0
    next_key, next_value = ctl.lines(runner_up, 2)
    assert next_key.startswith("vote/") and next_key != key and next_value == "second"
    assert ctl.lines(listener, 2) == [next_key, "second"]
    assert ctl.interrupt(runner_up) == 0
    assert ctl.interrupt(listener) == 0


def test_waits_and_observers_that_end_leave_no_watch_on_the_node(own_jangada: Target,
                                                                  etcd_cluster: LocalCluster) -> None:
    jangada = own_jangada
    member = etcd_cluster.ids[1]
    index = etcd_cluster.ids.index(member)

    def watches() -> int:
        status = etcd_cluster.status(member)
        assert status is not None
        return int(status["watches"])

    holder, waiter = jangada.grant(30), jangada.grant(30)
    jangada.lock(0).Lock(v3lock_pb2.LockRequest(name=b"w", lease=holder), timeout=RPC_TIMEOUT)
    waiting = jangada.lock(index).Lock.future(v3lock_pb2.LockRequest(name=b"w", lease=waiter), timeout=30)
    observer = Observer(jangada.election(index), b"nobody")
    _eventually(lambda: watches() == 2, 10, "the waiter's and the observer's watches")
    waiting.cancel()
    observer.close()
    _eventually(lambda: watches() == 0, 10, "both watches to be cancelled")


# -- KeyWatch's frame handling (no cluster: a link that records what is sent) --------


class KeyWatchLink(RecordingLink):
    """What KeyWatch uses of NodeLink: streams by request id, and what it sends."""

    def create(self) -> WatchCreateRequest:
        [create] = [r for r in self.sent if isinstance(r, WatchCreateRequest)][-1:]
        return create

    def push(self, seq: int, kind: str, revision: int, events: tuple[WatchEvent, ...] = (), code: str = "") -> None:
        create = self.create()
        self.streams[create.request_id](WatchFrame(create.request_id, 1, create.watch_id, seq, kind, revision,
                                                   revision, events, code=code))


def _put(key: bytes, revision: int) -> WatchEvent:
    return WatchEvent(EVENT_PUT, KeyValue(key, b"v", revision, revision, 1, 0))


def _delete(key: bytes, revision: int) -> WatchEvent:
    return WatchEvent(EVENT_DELETE, KeyValue(key, b"", 0, revision, 0, 0))


def test_keywatch_acks_progress_resumes_after_a_gap_and_reports_compaction() -> None:
    async def scenario() -> None:
        link = KeyWatchLink()
        async with KeyWatch(Lanes(link), b"k", b"", 5) as watch:  # type: ignore[arg-type]
            assert link.create().start_revision == 5
            link.push(0, "created", 4)
            link.push(1, "progress", 6)
            link.push(2, "events", 7, (_put(b"k", 7),))
            assert await watch.next() == (7, (_put(b"k", 7),))
            await asyncio.sleep(0.01)  # acks and cancels are sent by tasks of their own
            acks = [r for r in link.sent if isinstance(r, WatchProgressRequest)]
            assert [a.ack for a in acks] == [1]  # the progress frame was acknowledged
            link.push(4, "events", 9, (_put(b"k", 9),))  # frame 3 lost: resume from 8
            pending = asyncio.ensure_future(watch.next())
            await asyncio.sleep(0.01)
            assert link.create().start_revision == 8
            link.push(0, "created", 7)
            link.push(1, "events", 9, (_put(b"k", 8), _put(b"k", 9)))
            assert await pending == (9, (_put(b"k", 8), _put(b"k", 9)))
            assert any(isinstance(r, WatchCancelRequest) for r in link.sent)  # the old watch was cancelled
            link.push(2, "cancelled", 9, code=ErrorCode.COMPACTED.value)
            with pytest.raises(EtcdError) as caught:
                await watch.next()
            assert caught.value.status is errors.COMPACTED
            assert link.streams == {}
        link2 = KeyWatchLink()
        async with KeyWatch(Lanes(link2), b"k", b"", 3) as other:  # type: ignore[arg-type]
            link2.push(0, "created", 2)
            link2.push(1, "cancelled", 2, code="CANCELLED")  # a slow watcher: created again
            pending = asyncio.ensure_future(other.next())
            await asyncio.sleep(0.01)
            assert link2.create().start_revision == 3
            link2.push(0, "created", 2)
            link2.push(1, "events", 3, (_delete(b"k", 3),))
            assert await pending == (3, (_delete(b"k", 3),))
        assert link2.streams == {}

    asyncio.run(asyncio.wait_for(scenario(), 10))


class LosingKv:
    """A KvService stand-in whose first `lost` writes end as a write carried to a
    dying leader does (TIMEOUT_LEADER_FAIL), the first of them applied all the same."""

    max_txn_ops = 128

    def __init__(self, lost: int, error: errors.EtcdStatus = errors.TIMEOUT_LEADER_FAIL) -> None:
        self.lost, self.error, self.calls = lost, error, 0

    async def run(self, request: object, serializable: bool = False, token: str = "") -> kv.TxnResponse:
        self.calls += 1
        if self.calls <= self.lost:
            raise EtcdError(self.error)
        # the first attempt made the key, so every later one takes the failure branch
        mine = kv.RangeResponse(revision=7, kvs=(KeyValue(b"l/1", b"", 5, 5, 1, 1),), count=1, more=False)
        return kv.TxnResponse(revision=7, succeeded=False, responses=(mine, mine))


def _join_with(kv_service: LosingKv) -> kv.TxnResponse:
    store = Store(kv_service, None, None)  # type: ignore[arg-type]
    request = rpc_pb2.TxnRequest(compare=[create_revision_is(b"l/1", 0)], success=[put_op(b"l/1", b"", 1)],
                                 failure=[get_op(rpc_pb2.RangeRequest(key=b"l/1"))])
    return asyncio.run(asyncio.wait_for(store.join(request), 10))


def test_a_join_whose_answer_was_lost_with_the_leader_is_asked_again() -> None:
    lossy = LosingKv(lost=LOST_ANSWER_ATTEMPTS - 1)
    joined = _join_with(lossy)
    assert lossy.calls == LOST_ANSWER_ATTEMPTS
    assert not joined.succeeded and joined.responses[0].kvs[0].create_revision == 5  # the key the lost one made
    always = LosingKv(lost=LOST_ANSWER_ATTEMPTS)
    with pytest.raises(EtcdError) as caught:
        _join_with(always)
    assert caught.value.status == errors.TIMEOUT_LEADER_FAIL and always.calls == LOST_ANSWER_ATTEMPTS
    other = LosingKv(lost=1, error=errors.TIMEOUT)  # no leader answered in time: not a lost answer, not repeated
    with pytest.raises(EtcdError):
        _join_with(other)
    assert other.calls == 1


def test_a_waiter_gets_the_lock_after_the_leader_died(own_jangada: Target, etcd_cluster: LocalCluster) -> None:
    jangada = own_jangada
    leader = etcd_cluster.wait_for_leader()
    others = [node for node in etcd_cluster.ids if node != leader]
    waiter_index = etcd_cluster.ids.index(others[0])
    unlock_index = etcd_cluster.ids.index(others[1])
    holder, waiter = jangada.grant(60), jangada.grant(60)
    held = jangada.lock(unlock_index).Lock(v3lock_pb2.LockRequest(name=b"failover", lease=holder),
                                           timeout=RPC_TIMEOUT)
    waiting = jangada.lock(waiter_index).Lock.future(v3lock_pb2.LockRequest(name=b"failover", lease=waiter),
                                                     timeout=60)
    _eventually(lambda: len(jangada.keys(b"failover/")) == 2, 10, "the waiter's key")
    etcd_cluster.kill(leader)
    deadline = time.monotonic() + 30
    while True:  # through the new leader, once there is one
        try:
            jangada.lock(unlock_index).Unlock(v3lock_pb2.UnlockRequest(key=held.key), timeout=RPC_TIMEOUT)
            break
        except grpc.RpcError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    assert waiting.result(timeout=30).key == b"failover/" + format(waiter, "x").encode()


def test_contenders_get_the_lock_one_at_a_time_in_queue_order(target: Target) -> None:
    leases = [target.grant(60) for _ in range(4)]
    held = target.lock(0).Lock(v3lock_pb2.LockRequest(name=b"queue", lease=leases[0]), timeout=RPC_TIMEOUT)
    waiting = []
    for index, lease in enumerate(leases[1:], start=1):
        key = b"queue/" + format(lease, "x").encode()
        waiting.append(target.lock(index).Lock.future(v3lock_pb2.LockRequest(name=b"queue", lease=lease), timeout=60))
        _eventually(lambda: key in target.keys(b"queue/"), 10, "each contender's key, in turn")
    order = [held.key]
    for turn in range(len(waiting)):
        time.sleep(0.3)
        assert not any(f.done() for f in waiting[turn:]), "a contender got the lock while it was held"
        target.lock(2).Unlock(v3lock_pb2.UnlockRequest(key=order[-1]), timeout=RPC_TIMEOUT)
        order.append(waiting[turn].result(timeout=15).key)
    assert order == [b"queue/" + format(lease, "x").encode() for lease in leases]
