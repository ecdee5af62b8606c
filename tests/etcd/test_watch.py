"""etcd's Watch service on real jangada clusters (node/etcd/watch.py): the generated
stubs and etcdctl, and the responses etcd 3.4 itself gives, compared side by side."""
from __future__ import annotations

import contextlib
import queue
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest

from cluster import kv
from cluster.client import Client
from cluster.etcdpb import kv_pb2, rpc_pb2, rpc_pb2_grpc
from node.etcd.watch import fragments
from node.localcluster import LocalCluster, terminate, wait_for
from tests.etcd.conftest import ETCDCTL
from tests.etcd.reference_etcd import reference_etcd

pytestmark = pytest.mark.timeout(120)

TIMEOUT = 10.0
PUT, DELETE = kv_pb2.Event.PUT, kv_pb2.Event.DELETE


class Stream:
    """One Watch stream: requests go in through a queue, responses are read with a timeout."""

    def __init__(self, channel: grpc.Channel) -> None:
        self._requests: queue.Queue[rpc_pb2.WatchRequest | None] = queue.Queue()
        self.call = rpc_pb2_grpc.WatchStub(channel).Watch(self._iterate())
        self._responses: queue.Queue[Any] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _iterate(self) -> Iterator[rpc_pb2.WatchRequest]:
        while (request := self._requests.get()) is not None:
            yield request

    def _pump(self) -> None:
        try:
            for response in self.call:
                self._responses.put(response)
        except grpc.RpcError as error:
            self._responses.put(error)

    def create(self, key: bytes, range_end: bytes = b"", **fields: Any) -> None:
        self._requests.put(rpc_pb2.WatchRequest(create_request=rpc_pb2.WatchCreateRequest(
            key=key, range_end=range_end, **fields)))

    def cancel(self, watch_id: int) -> None:
        self._requests.put(rpc_pb2.WatchRequest(cancel_request=rpc_pb2.WatchCancelRequest(watch_id=watch_id)))

    def progress(self) -> None:
        self._requests.put(rpc_pb2.WatchRequest(progress_request=rpc_pb2.WatchProgressRequest()))

    def next(self, timeout: float = TIMEOUT) -> rpc_pb2.WatchResponse:
        item = self._responses.get(timeout=timeout)
        if isinstance(item, grpc.RpcError):
            raise item
        return item

    def nothing_for(self, seconds: float) -> bool:
        try:
            item = self._responses.get(timeout=seconds)
        except queue.Empty:
            return True
        self._responses.put(item)
        return False

    def events(self, count: int, watch_id: int | None = None) -> list[kv_pb2.Event]:
        """The next `count` events (of `watch_id`, if given; other responses are skipped)."""
        seen: list[kv_pb2.Event] = []
        deadline = time.monotonic() + TIMEOUT * 3
        while len(seen) < count:
            response = self.next(max(0.1, deadline - time.monotonic()))
            if watch_id is None or response.watch_id == watch_id:
                seen.extend(response.events)
        return seen

    def close(self) -> None:
        self._requests.put(None)
        self.call.cancel()


def kv_stub(channel: grpc.Channel) -> rpc_pb2_grpc.KVStub:
    return rpc_pb2_grpc.KVStub(channel)


#: Writes go through the native client (the watch is what is tested here; the face's
#: own Put is tested in its own file): a test's `channel` maps to the cluster's client.
_writers: dict[grpc.Channel, Client] = {}


def put(channel: grpc.Channel, key: bytes, value: bytes) -> int:
    client = _writers.get(channel)
    if client is not None:
        return client.put(key, value).revision
    return kv_stub(channel).Put(rpc_pb2.PutRequest(key=key, value=value), timeout=TIMEOUT).header.revision


def delete(channel: grpc.Channel, key: bytes) -> int:
    client = _writers.get(channel)
    if client is not None:
        return client.delete(key).revision
    return kv_stub(channel).DeleteRange(rpc_pb2.DeleteRangeRequest(key=key), timeout=TIMEOUT).header.revision


def compact(channel: grpc.Channel, revision: int) -> None:
    client = _writers.get(channel)
    if client is not None:
        client.compact(revision)
    else:
        kv_stub(channel).Compact(rpc_pb2.CompactionRequest(revision=revision), timeout=TIMEOUT)


def put_all(channel: grpc.Channel, items: list[tuple[bytes, bytes]]) -> int:
    """One txn putting every item."""
    client = _writers.get(channel)
    if client is not None:
        return client.txn(success=[kv.Put(k, v) for k, v in items]).revision
    ops = [rpc_pb2.RequestOp(request_put=rpc_pb2.PutRequest(key=k, value=v)) for k, v in items]
    return kv_stub(channel).Txn(rpc_pb2.TxnRequest(success=ops), timeout=TIMEOUT).header.revision


@contextlib.contextmanager
def face_channel(cluster: LocalCluster, node_id: int) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(cluster.grpc_endpoint(node_id)) as ch:
        _writers[ch] = cluster.client()
        try:
            yield ch
        finally:
            del _writers[ch]


@pytest.fixture
def etcd_cluster(shared_etcd_cluster: LocalCluster) -> LocalCluster:
    """The module's cluster: the tests on it neither stop members nor change their
    config, and each watches its own keys (the two that stop members, below, and
    the one with its own progress interval make their own)."""
    return shared_etcd_cluster


@pytest.fixture
def own_cluster(make_etcd_cluster: Callable[..., LocalCluster]) -> LocalCluster:
    return make_etcd_cluster()


@pytest.fixture
def channel(etcd_cluster: LocalCluster) -> Iterator[grpc.Channel]:
    with face_channel(etcd_cluster, etcd_cluster.wait_for_leader()) as ch:
        yield ch


def test_one_stream_multiplexes_watches_with_prev_kv_and_filters(channel: grpc.Channel) -> None:
    stream = Stream(channel)
    try:
        stream.create(b"a")
        first = stream.next()
        assert first.created and first.watch_id == 0 and not first.canceled
        stream.create(b"p/", b"p0", prev_kv=True)
        assert stream.next().watch_id == 1
        stream.create(b"p/", b"p0", filters=[rpc_pb2.WatchCreateRequest.NOPUT])
        assert stream.next().watch_id == 2
        stream.create(b"a", watch_id=7, filters=[rpc_pb2.WatchCreateRequest.NODELETE])
        assert stream.next().watch_id == 7
        put(channel, b"a", b"1")
        put(channel, b"p/x", b"1")
        rev = put(channel, b"p/x", b"2")
        deleted = delete(channel, b"p/x")
        got: dict[int, list[kv_pb2.Event]] = {0: [], 1: [], 2: [], 7: []}
        deadline = time.monotonic() + TIMEOUT
        while sum(map(len, got.values())) < 6 and time.monotonic() < deadline:
            response = stream.next()
            assert response.header.revision == response.events[0].kv.mod_revision  # synced: per revision
            got[response.watch_id].extend(response.events)
        assert [(e.type, e.kv.key, e.kv.value) for e in got[0]] == [(PUT, b"a", b"1")]
        assert [(e.type, e.kv.key, e.kv.value) for e in got[7]] == [(PUT, b"a", b"1")]
        assert [(e.type, e.kv.value, e.prev_kv.value) for e in got[1]] == [
            (PUT, b"1", b""), (PUT, b"2", b"1"), (DELETE, b"", b"2")]
        assert not got[1][0].HasField("prev_kv")
        assert got[1][1].kv.mod_revision == rev and got[1][2].kv.mod_revision == deleted
        assert [(e.type, e.kv.key) for e in got[2]] == [(DELETE, b"p/x")]
        assert not got[2][0].HasField("prev_kv")
        assert stream.nothing_for(0.3)
    finally:
        stream.close()


def test_ids_duplicate_and_empty_range_as_etcd(channel: grpc.Channel) -> None:
    stream = Stream(channel)
    try:
        stream.create(b"k", watch_id=5)
        assert stream.next().watch_id == 5
        stream.create(b"k", watch_id=5)
        refused = stream.next()
        assert (refused.created, refused.canceled, refused.watch_id, refused.cancel_reason) == (
            True, True, -1, "mvcc: duplicate watch ID provided on the WatchStream")
        stream.create(b"z", b"a")
        empty = stream.next()
        assert (empty.created, empty.canceled, empty.watch_id, empty.cancel_reason) == (
            True, True, -1, "mvcc: watcher range is empty")
        stream.create(b"k")  # auto: the lowest free id from 0
        assert stream.next().watch_id == 0
        stream.cancel(5)
        canceled = stream.next()
        assert (canceled.watch_id, canceled.canceled, canceled.created, canceled.cancel_reason) == (5, True, False, "")
        stream.create(b"k", watch_id=5)  # a cancelled id is free again
        assert stream.next().watch_id == 5
        stream.cancel(99)  # unknown: etcd answers nothing
        assert stream.nothing_for(0.5)
    finally:
        stream.close()


def test_history_replay_then_live_events_and_the_compacted_revision(channel: grpc.Channel) -> None:
    revisions = [put(channel, b"h/k", str(i).encode()) for i in range(5)]
    stream = Stream(channel)
    try:
        stream.create(b"h/", b"h0", start_revision=revisions[1])
        created = stream.next()
        assert created.created and created.header.revision == revisions[-1]
        history = stream.next()  # one batch, headed by the store's revision (etcd's unsynced watcher)
        assert [e.kv.mod_revision for e in history.events] == revisions[1:]
        assert history.header.revision == revisions[-1]
        live = put(channel, b"h/k", b"live")
        response = stream.next()
        assert [e.kv.mod_revision for e in response.events] == [live] and response.header.revision == live
        compact(channel, revisions[3])
        stream.create(b"h/k", start_revision=revisions[1])
        created = stream.next()
        assert created.created and not created.canceled
        compacted = stream.next()
        assert (compacted.watch_id, compacted.canceled, compacted.compact_revision, compacted.header.revision) == (
            created.watch_id, True, revisions[3], 0)
    finally:
        stream.close()


def test_progress_request_and_a_future_start_revision(channel: grpc.Channel) -> None:
    stream = Stream(channel)
    try:
        now = put(channel, b"f/k", b"0")
        stream.create(b"f/k", start_revision=now + 3)
        assert stream.next().created
        stream.progress()
        progress = stream.next()
        assert progress.watch_id == -1 and not progress.events and progress.header.revision >= now
        put(channel, b"f/k", b"1")
        put(channel, b"f/k", b"2")
        assert stream.nothing_for(0.5)  # before the start revision: nothing
        third = put(channel, b"f/k", b"3")
        assert [e.kv.mod_revision for e in stream.next().events] == [third]
    finally:
        stream.close()


def test_fragment_splits_a_large_txn_as_etcd(channel: grpc.Channel) -> None:
    """One txn under the request limit (etcd's 1.5 MiB) overwriting 36 keys of 40 KiB:
    with prev_kv its events are ~2.9 MiB, over the fragment size (the limit + 512 KiB)."""
    keys = [b"big/%03d" % i for i in range(36)]
    for half in (keys[:18], keys[18:]):
        put_all(channel, [(k, b"o" * (40 << 10)) for k in half])
    stream = Stream(channel)
    try:
        stream.create(b"big/", b"big0", fragment=True, prev_kv=True)
        assert stream.next().created
        stream.create(b"big/", b"big0", prev_kv=True)
        assert stream.next().created
        put_all(channel, [(k, b"v" * (40 << 10)) for k in keys])
        pieces: list[rpc_pb2.WatchResponse] = []
        whole: list[rpc_pb2.WatchResponse] = []
        while len(whole) < 1 or not pieces or pieces[-1].fragment:
            response = stream.next()
            (pieces if response.watch_id == 0 else whole).append(response)
        assert len(whole[0].events) == 36 and not whole[0].fragment
        assert [p.fragment for p in pieces] == [True] * (len(pieces) - 1) + [False] and len(pieces) == 2
        assert [e.kv.key for p in pieces for e in p.events] == [e.kv.key for e in whole[0].events]
        assert all(p.ByteSize() < 2 << 20 for p in pieces)
    finally:
        stream.close()


def test_a_follower_streams_writes_made_on_the_leader_in_order_without_gaps(etcd_cluster: LocalCluster) -> None:
    leader = etcd_cluster.wait_for_leader()
    follower = next(i for i in etcd_cluster.ids if i != leader)
    etcd_cluster.status_of(follower)  # its face serves once the node does
    with grpc.insecure_channel(etcd_cluster.grpc_endpoint(follower)) as to_follower:
        stream = Stream(to_follower)
        writer = etcd_cluster.client([etcd_cluster.address(leader)])
        try:
            stream.create(b"seq/", b"seq0")
            assert stream.next().created
            revisions = [writer.put(b"seq/%d" % (i % 7), b"%d" % i).revision for i in range(2000)]
            events = stream.events(2000)
            assert [e.kv.mod_revision for e in events] == revisions
            assert [e.kv.value for e in events] == [b"%d" % i for i in range(2000)]
        finally:
            stream.close()


def test_cancelling_the_stream_cancels_its_native_watches(etcd_cluster: LocalCluster) -> None:
    leader = etcd_cluster.wait_for_leader()
    with grpc.insecure_channel(etcd_cluster.grpc_endpoint(leader)) as channel:
        # On the module's cluster the streams of earlier tests may still be closing:
        # count from none (a member whose face has no stream open holds no watch).
        wait_for(lambda: _watch_count(etcd_cluster, leader) == 0, TIMEOUT * 3,
                 "earlier tests' watches to be cancelled")
        before = _watch_count(etcd_cluster, leader)
        stream = Stream(channel)
        for i in range(3):
            stream.create(b"c/%d" % i)
            assert stream.next().created
        assert _watch_count(etcd_cluster, leader) == before + 3
        stream.close()
        deadline = time.monotonic() + TIMEOUT
        while _watch_count(etcd_cluster, leader) != before and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _watch_count(etcd_cluster, leader) == before


def _watch_count(cluster: LocalCluster, node_id: int) -> int:
    return int(cluster.status_of(node_id)["watches"])


# --- etcdctl ----------------------------------------------------------------------------


def _etcdctl_watch(endpoint: str, *args: str, stdin: str | None = None) -> subprocess.Popen[str]:
    if ETCDCTL is None:
        pytest.skip("etcdctl is not installed")
    return subprocess.Popen([ETCDCTL, f"--endpoints={endpoint}", "watch", *args], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={"ETCDCTL_API": "3", "PATH": "/usr/bin:/bin"})


def _lines(process: subprocess.Popen[str], count: int) -> list[str]:
    lines: list[str] = []
    assert process.stdout is not None
    deadline = time.monotonic() + TIMEOUT
    while len(lines) < count and time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip("\n"))
    return lines


def test_etcdctl_watch_prefix_rev_and_prev_kv(etcd_cluster: LocalCluster) -> None:
    endpoint = etcd_cluster.grpc_endpoint(etcd_cluster.wait_for_leader())
    writer = etcd_cluster.client()
    first = writer.put("e/a", "1").revision
    writer.put("e/b", "2")
    process = _etcdctl_watch(endpoint, "--prefix", "e/", f"--rev={first}", "--prev-kv")
    try:
        assert _lines(process, 6) == ["PUT", "e/a", "1", "PUT", "e/b", "2"]
        writer.put("e/a", "3")
        assert _lines(process, 5) == ["PUT", "e/a", "1", "e/a", "3"]
        writer.delete("e/b")
        assert _lines(process, 4) == ["DELETE", "e/b", "2", "e/b"]
    finally:
        terminate(process, 5.0)


def test_etcdctl_interactive_watch_and_cancel(etcd_cluster: LocalCluster) -> None:
    endpoint = etcd_cluster.grpc_endpoint(etcd_cluster.wait_for_leader())
    writer = etcd_cluster.client()
    process = _etcdctl_watch(endpoint, "-i")
    assert process.stdin is not None
    try:
        process.stdin.write("watch i/a\nwatch --prefix i/\n")
        process.stdin.flush()
        time.sleep(1.0)
        writer.put("i/a", "1")
        assert sorted(_lines(process, 6)) == sorted(["PUT", "i/a", "1"] * 2)
    finally:
        terminate(process, 5.0)


# --- side by side with etcd 3.4 ---------------------------------------------------------


@pytest.fixture(scope="module")
def reference_channel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[grpc.Channel]:
    """A channel to a single-member etcd 3.4 (tests/etcd/reference_etcd.py), one for
    the module: each scenario keeps to its own keys and counts revisions from its first."""
    with reference_etcd(tmp_path_factory.mktemp("etcd-watch")) as etcd, \
            grpc.insecure_channel(etcd.endpoint) as channel:
        yield channel


def _scenario(channel: grpc.Channel) -> list[tuple[Any, ...]]:
    """Responses to the same requests, as (fields) relative to the first revision used."""
    base = put(channel, b"cmp/k", b"0")
    for i in range(1, 4):
        put(channel, b"cmp/k", b"%d" % i)
    compact(channel, base + 2)
    stream = Stream(channel)
    out: list[tuple[Any, ...]] = []

    def record(r: rpc_pb2.WatchResponse) -> None:
        out.append((r.watch_id, r.created, r.canceled, r.cancel_reason, r.compact_revision and r.compact_revision - base,
                    r.header.revision and r.header.revision - base, [(e.type, e.kv.value) for e in r.events]))

    try:
        stream.create(b"cmp/k", start_revision=base)  # compacted
        record(stream.next())
        record(stream.next())
        stream.create(b"cmp/k", start_revision=base + 2)  # the compact revision itself
        record(stream.next())
        record(stream.next())
        stream.create(b"cmp/k", watch_id=1)
        record(stream.next())
        stream.create(b"cmp/", b"cmp0", watch_id=9)
        record(stream.next())
        stream.create(b"b", b"a")
        record(stream.next())
        stream.create(b"cmp/x", watch_id=-1)  # etcd 3.4 takes -1 as a chosen id, not "auto"
        record(stream.next())
        stream.cancel(9)
        record(stream.next())
        stream.progress()
        record(stream.next())
        put(channel, b"cmp/k", b"4")
        record(stream.next())
    finally:
        stream.close()
    return out


def _fragment_scenario(channel: grpc.Channel) -> list[tuple[int, bool]]:
    """A txn under etcd's request limit whose watch response, with prev_kv, is over it."""
    value = b"f" * (100 << 10)
    put_all(channel, [(b"frag/%02d" % i, value) for i in range(12)])
    stream = Stream(channel)
    try:
        stream.create(b"frag/", b"frag0", prev_kv=True, fragment=True)
        assert stream.next().created
        put_all(channel, [(b"frag/%02d" % i, value.upper()) for i in range(12)])
        pieces = [stream.next()]
        while pieces[-1].fragment:
            pieces.append(stream.next())
        assert [e.prev_kv.value for p in pieces for e in p.events] == [value] * 12
        return [(len(p.events), p.fragment) for p in pieces]
    finally:
        stream.close()


def test_fragments_match_etcd(etcd_cluster: LocalCluster, reference_channel: grpc.Channel) -> None:
    with face_channel(etcd_cluster, etcd_cluster.wait_for_leader()) as ours:
        mine = _fragment_scenario(ours)
    theirs = _fragment_scenario(reference_channel)
    assert mine == theirs and len(mine) > 1


def test_responses_match_etcd(etcd_cluster: LocalCluster, reference_channel: grpc.Channel) -> None:
    with face_channel(etcd_cluster, etcd_cluster.wait_for_leader()) as ours:
        mine = _scenario(ours)
    theirs = _scenario(reference_channel)
    print(mine, theirs, sep="\n")
    assert mine == theirs


# --- progress notifications, node limits, slow readers, a stopping node ----------------------


def test_progress_notify_at_the_configured_interval(make_etcd_cluster: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JANGADA_ETCD_WATCH_PROGRESS_MS", "300")  # etcd: --experimental-watch-progress-notify-interval
    cluster = make_etcd_cluster()
    with face_channel(cluster, cluster.wait_for_leader()) as channel:
        stream = Stream(channel)
        try:
            now = put(channel, b"n/k", b"0")
            stream.create(b"n/k", progress_notify=True)
            assert stream.next().created
            stream.create(b"other")  # no progress_notify: nothing for it
            assert stream.next().created
            notes = [stream.next(5.0) for _ in range(3)]
            assert all((n.watch_id, len(n.events), n.header.revision) == (0, 0, now) for n in notes)
            later = put(channel, b"n/k", b"1")
            response = stream.next()
            assert [e.kv.mod_revision for e in response.events] == [later]
            assert stream.next(5.0).header.revision == later  # progress again once idle
        finally:
            stream.close()


def test_more_watches_than_the_nodes_per_client_limit(channel: grpc.Channel) -> None:
    stream = Stream(channel)
    try:
        count = 1050  # the node allows 1,000 per client identity: the face opens a second DEALER
        for i in range(count):
            stream.create(b"many/%d" % i)
        created = [stream.next() for _ in range(count)]
        assert [r.watch_id for r in created] == list(range(count)) and not any(r.canceled for r in created)
        revision = put(channel, b"many/1049", b"v")
        response = stream.next()
        assert (response.watch_id, response.events[0].kv.mod_revision) == (1049, revision)
    finally:
        stream.close()


def test_a_reader_that_stops_reading_is_cancelled_as_a_slow_watcher(channel: grpc.Channel) -> None:
    requests: queue.Queue[rpc_pb2.WatchRequest | None] = queue.Queue()
    requests.put(rpc_pb2.WatchRequest(create_request=rpc_pb2.WatchCreateRequest(key=b"slow/", range_end=b"slow0")))
    call = rpc_pb2_grpc.WatchStub(channel).Watch(iter(requests.get, None))
    try:
        value = b"s" * (200 << 10)
        for i in range(150):  # 30 MB that nobody reads: gRPC's buffers fill, then the node's window
            put(channel, b"slow/%d" % (i % 10), value)
        time.sleep(13)  # the node's slow-watcher rule: the window full for 10 s
        responses = []
        for response in call:
            responses.append(response)
            if response.canceled:
                break
        assert responses[0].created
        assert responses[-1].cancel_reason.startswith("slow watcher, resume from revision ")
        delivered = [e.kv.mod_revision for r in responses for e in r.events]
        assert delivered == list(range(delivered[0], delivered[0] + len(delivered))) and len(delivered) < 150
    finally:
        requests.put(None)
        call.cancel()


def test_a_stopping_node_ends_its_streams_as_etcds_server_stop(own_cluster: LocalCluster) -> None:
    etcd_cluster = own_cluster
    leader = etcd_cluster.wait_for_leader()
    follower = next(i for i in etcd_cluster.ids if i != leader)
    etcd_cluster.status_of(follower)
    with face_channel(etcd_cluster, follower) as channel:
        stream = Stream(channel)
        stream.create(b"stop/")
        assert stream.next().created
        etcd_cluster.stop(follower)
        with pytest.raises(grpc.RpcError) as ended:
            stream.next()
        assert ended.value.code() is grpc.StatusCode.UNAVAILABLE


# --- fragments, without a cluster ---------------------------------------------------------


def _response(sizes: list[int]) -> rpc_pb2.WatchResponse:
    return rpc_pb2.WatchResponse(watch_id=3, header=rpc_pb2.ResponseHeader(revision=9), events=[
        kv_pb2.Event(kv=kv_pb2.KeyValue(key=b"k%d" % i, value=b"v" * size)) for i, size in enumerate(sizes)])


def test_fragments_follow_etcds_send_fragments() -> None:
    limit = 1000
    assert fragments(_response([2000]), limit) == [_response([2000])]  # one event: never split
    assert fragments(_response([100, 100]), limit) == [_response([100, 100])]  # under the limit
    pieces = fragments(_response([300] * 10 + [1500, 10]), limit)
    assert [len(p.events) for p in pieces] == [3, 3, 3, 1, 1, 1]  # an event over the limit goes alone
    assert [p.fragment for p in pieces] == [True] * 5 + [False]
    assert all(p.ByteSize() < limit for p in pieces if len(p.events) > 1)
    assert all((p.watch_id, p.header.revision) == (3, 9) for p in pieces)
    assert [e.kv.key for p in pieces for e in p.events] == [b"k%d" % i for i in range(12)]


def test_require_leader_streams_end_when_the_member_loses_its_leader(own_cluster: LocalCluster) -> None:
    """clientv3.WithRequireLeader (etcdctl watch uses it): etcd refuses such a stream
    without a leader and ends it after 3 election timeouts with none."""
    etcd_cluster = own_cluster
    leader = etcd_cluster.wait_for_leader()
    survivor = next(i for i in etcd_cluster.ids if i != leader)
    # a follower learns of a new leader from its first message: wait for that
    wait_for(lambda: (etcd_cluster.status(survivor) or {}).get("leader_id") == leader, 30,
             f"node {survivor} to know leader {leader}")
    with grpc.insecure_channel(etcd_cluster.grpc_endpoint(survivor)) as channel:
        requests: queue.Queue[rpc_pb2.WatchRequest | None] = queue.Queue()
        requests.put(rpc_pb2.WatchRequest(create_request=rpc_pb2.WatchCreateRequest(key=b"rl")))
        call = rpc_pb2_grpc.WatchStub(channel).Watch(iter(requests.get, None), metadata=(("hasleader", "true"),))
        assert next(call).created
        for node_id in etcd_cluster.ids:
            if node_id != survivor:
                etcd_cluster.kill(node_id)
        started = time.monotonic()
        with pytest.raises(grpc.RpcError) as ended:
            next(call)
        assert (ended.value.code(), ended.value.details()) == (grpc.StatusCode.UNAVAILABLE, "etcdserver: no leader")
        assert time.monotonic() - started < 15
        again = rpc_pb2_grpc.WatchStub(channel).Watch(iter(requests.get, None), metadata=(("hasleader", "true"),))
        with pytest.raises(grpc.RpcError) as refused:
            next(again)
        assert refused.value.details() == "etcdserver: no leader"
        requests.put(None)
