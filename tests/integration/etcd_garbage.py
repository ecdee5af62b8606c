"""Hostile clients of a member's etcd faces: what the garbage test throws at its
gRPC port and its HTTP gateway port, each throw checking the answer it gets.

Every throw is bounded (socket timeouts, call deadlines): a face that hangs
fails the throw instead of stalling the test."""
from __future__ import annotations

import base64
import json
import random
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import grpc

from cluster.etcdpb import rpc_pb2, rpc_pb2_grpc

#: A call that gets no answer within this has hung.
CALL_SECONDS = 10.0
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#: Codes a malformed body may end in: gRPC's for an undecodable message, or an
#: etcd error for a message that happened to decode (never UNKNOWN: a Python exception).
CLEAN_CODES = frozenset({grpc.StatusCode.INTERNAL, grpc.StatusCode.INVALID_ARGUMENT,
                         grpc.StatusCode.OUT_OF_RANGE, grpc.StatusCode.NOT_FOUND,
                         grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.RESOURCE_EXHAUSTED,
                         grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.PERMISSION_DENIED,
                         grpc.StatusCode.UNIMPLEMENTED})


def _raw(data: bytes) -> bytes:
    return data


def _frame(kind: int, flags: int, stream: int, payload: bytes, claimed: int | None = None) -> bytes:
    """An HTTP/2 frame; `claimed` lies about the payload's length."""
    length = len(payload) if claimed is None else claimed
    return struct.pack(">I", length)[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload


def _host_port(endpoint: str) -> tuple[str, int]:
    host, port = endpoint.rsplit(":", 1)
    return host, int(port)


def _send_and_close(endpoint: str, data: bytes) -> None:
    """Send `data` on a fresh TCP connection, read whatever comes back briefly, close."""
    with socket.create_connection(_host_port(endpoint), timeout=2) as s:
        try:
            s.sendall(data)
            s.settimeout(0.2)
            s.recv(65536)
        except OSError:
            pass  # the server may reset a connection it reads garbage on


def raw_http2_garbage(endpoint: str, rng: random.Random) -> int:
    """A valid HTTP/2 preface followed by junk, and truncated or malformed frames,
    on a gRPC port; returns how many connections were used."""
    throws = [PREFACE + rng.randbytes(rng.randrange(1, 500)) for _ in range(3)]
    settings = _frame(4, 0, 0, b"")
    throws += [
        PREFACE + _frame(4, 0, 0, b"\x00\x03", claimed=600),         # a SETTINGS frame cut short
        PREFACE + settings + _frame(1, 4, 1, b"\x82\x86", claimed=4000),  # HEADERS cut short
        PREFACE + settings + _frame(1, 4, 1, rng.randbytes(40)),          # HEADERS of undecodable HPACK
        PREFACE + settings + _frame(0, 1, 1, b"\x00\x00\x00\x00\x05abc"),  # DATA on an idle stream
        PREFACE + settings + _frame(8, 0, 0, b"\xff\xff\xff\xff"),        # an overflowing WINDOW_UPDATE
        PREFACE + _frame(99, 0xFF, 7, rng.randbytes(30)),                 # an unknown frame type
        PREFACE + settings + _frame(4, 0, 0, b"\x00\x05\x00\xff\xff\xff"),  # a bad max frame size
        PREFACE[:10],
    ]
    for data in throws:
        _send_and_close(endpoint, data)
    return len(throws)


@contextmanager
def abandoned_connections(grpc_endpoint: str, http_endpoint: str) -> Iterator[list[socket.socket]]:
    """Connections opened and left half-way (a preface and half a HEADERS frame;
    half an HTTP request line and header) for the duration of the block; the
    faces must keep serving everyone else meanwhile."""
    sockets: list[socket.socket] = []
    try:
        for _ in range(5):
            s = socket.create_connection(_host_port(grpc_endpoint), timeout=2)
            s.sendall(PREFACE + _frame(4, 0, 0, b"") + _frame(1, 4, 1, b"\x83\x86", claimed=200))
            sockets.append(s)
            s = socket.create_connection(_host_port(http_endpoint), timeout=2)
            s.sendall(b"POST /v3/kv/range HTTP/1.1\r\nHost: x\r\nContent-Len")
            sockets.append(s)
        yield sockets
    finally:
        for s in sockets:
            s.close()


def _unary(channel: grpc.Channel, method: str, body: bytes) -> grpc.StatusCode:
    call = channel.unary_unary(method, request_serializer=_raw, response_deserializer=_raw)
    try:
        call(body, timeout=CALL_SECONDS)
    except grpc.RpcError as error:
        code = error.code()
        assert code is not grpc.StatusCode.DEADLINE_EXCEEDED, f"{method} hung on {body[:20]!r}"
        assert code is not grpc.StatusCode.UNKNOWN, f"{method}: {error.details()}"
        return code  # type: ignore[no-any-return]
    return grpc.StatusCode.OK


def _server_stream(channel: grpc.Channel, method: str, body: bytes) -> grpc.StatusCode:
    call = channel.unary_stream(method, request_serializer=_raw, response_deserializer=_raw)
    try:
        for _ in call(body, timeout=CALL_SECONDS):
            pass
    except grpc.RpcError as error:
        code = error.code()
        assert code is not grpc.StatusCode.UNKNOWN, f"{method}: {error.details()}"
        return code  # type: ignore[no-any-return]
    return grpc.StatusCode.OK


def _stream(channel: grpc.Channel, method: str, bodies: list[bytes]) -> grpc.StatusCode:
    call = channel.stream_stream(method, request_serializer=_raw, response_deserializer=_raw)
    try:
        for _ in call(iter(bodies), timeout=CALL_SECONDS):
            pass
    except grpc.RpcError as error:
        code = error.code()
        assert code is not grpc.StatusCode.UNKNOWN, f"{method}: {error.details()}"
        return code  # type: ignore[no-any-return]
    return grpc.StatusCode.OK


#: Bytes no protobuf parser accepts: a truncated varint, a field of wire type 7,
#: a length running past the end, a group that never ends, a group end without
#: a start, a tag cut short. (Field number 0 is not here: upb skips it in a
#: message without fields.)
UNDECODABLE = [b"\x08\xff\xff\xff", b"\x0f", b"\x0a\x7f\x01", b"\x0b\x08\x01", b"\x0c", b"\xff" * 12]


def _nested_txn(depth: int) -> bytes:
    """A Txn nested `depth` levels deep, encoded by hand: the Python protobuf
    library refuses to build one past its own recursion limit."""
    txn = rpc_pb2.TxnRequest(success=[rpc_pb2.RequestOp(request_put=rpc_pb2.PutRequest(key=b"deep", value=b"x"))])
    data = txn.SerializeToString()
    for _ in range(depth):
        op = b"\x22" + _varint(len(data)) + data  # RequestOp.request_txn (field 4)
        data = b"\x12" + _varint(len(op)) + op  # TxnRequest.success (field 2)
    return data


def _varint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def grpc_garbage(endpoint: str, rng: random.Random) -> dict[str, list[grpc.StatusCode]]:
    """Well-framed calls with bad contents; each answer's code, by what was thrown."""
    seen: dict[str, list[grpc.StatusCode]] = {}
    with grpc.insecure_channel(endpoint, options=[("grpc.max_send_message_length", 8 << 20)]) as channel:
        seen["unknown method"] = [_unary(channel, m, b"") for m in ("/etcdserverpb.KV/Nope", "/nope.Service/X")]
        bodies = UNDECODABLE + [rng.randbytes(rng.randrange(1, 200)) for _ in range(4)]
        # Random bytes may decode (as unknown fields, or a key no load writes):
        # only codes are checked. The undecodable ones must be refused.
        for method in ("/etcdserverpb.KV/Put", "/etcdserverpb.KV/Txn", "/etcdserverpb.KV/Range"):
            seen[method] = [_unary(channel, method, b) for b in bodies]
        for method in ("/etcdserverpb.Watch/Watch", "/etcdserverpb.Lease/LeaseKeepAlive"):
            seen[method] = [_stream(channel, method, [b]) for b in UNDECODABLE]
            seen[method].append(_stream(channel, method, [rng.randbytes(50) for _ in range(5)]))
        seen["/etcdserverpb.Maintenance/Snapshot"] = [
            _server_stream(channel, "/etcdserverpb.Maintenance/Snapshot", b) for b in UNDECODABLE]
        big = rpc_pb2.PutRequest(key=b"big", value=b"x" * (3 << 20)).SerializeToString()
        seen["3 MiB"] = [_unary(channel, "/etcdserverpb.KV/Put", big)]
        seen["200 nested txns"] = [_unary(channel, "/etcdserverpb.KV/Txn", _nested_txn(200))]
        many = rpc_pb2.TxnRequest(compare=[rpc_pb2.Compare(key=b"c%d" % i, version=1) for i in range(100_000)])
        started = time.monotonic()
        seen["100000 compares"] = [_unary(channel, "/etcdserverpb.KV/Txn", many.SerializeToString())]
        assert time.monotonic() - started < CALL_SECONDS
    return seen


def http_garbage(endpoint: str, rng: random.Random) -> list[bytes]:
    """Bad HTTP on a gateway port; the status line (or b"") each throw was answered with."""
    body = json.dumps({"key": "AA=="}).encode()
    throws = [rng.randbytes(rng.randrange(1, 2000)) for _ in range(3)]
    throws += [
        b"POST /v3/kv/range HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\n{\"key\":",  # truncated body
        b"POST /v3/kv/range HTTP/1.1\r\nHost: x\r\n",                                     # truncated head
        b"POST /v3/kv/ra",
        b"GET / HTTP/1.1\r\nX-Big: " + b"a" * (70 << 10) + b"\r\n\r\n",                  # a huge header
        b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(200)) + b"\r\n",  # many headers
        b"GET /" + b"a" * (20 << 10) + b" HTTP/1.1\r\n\r\n",                              # a huge request line
        _post("/v3/kv/range", b"{\"key\": "),                                             # bad JSON
        _post("/v3/kv/range", b"[1, 2, 3]"),
        _post("/v3/kv/put", b"{\"key\": \"!!not base64!!\", \"value\": \"AA==\"}"),      # bad base64
        _post("/v3/kv/put", b"{\"key\": 5, \"lease\": \"x\"}"),
        _post("/v3/kv/txn", b"{\"compare\": [{\"target\": \"NOPE\"}]}"),
        _post("/v3/kv/range", b"\xff\xfe" + rng.randbytes(100)),
        _post("/v3/watch", b"{\"create_request\": 7}"),
        _post("/v3/lease/keepalive", b"{\"ID\": \"abc\"}"),
        _chunked("/v3/kv/range", b"zz\r\n" + body + b"\r\n0\r\n\r\n"),                  # chunk sizes: not hex,
        _chunked("/v3/kv/range", b"-5\r\n" + body + b"\r\n0\r\n\r\n"),                  # negative,
        _chunked("/v3/kv/range", b"ffffffffffffffffff\r\n" + body),                     # huge,
        _chunked("/v3/kv/range", b"40\r\n" + body + b"\r\n0\r\n\r\n"),                  # longer than sent,
        _chunked("/v3/kv/range", b"2\r\n" + body + b"\r\n0\r\n\r\n"),                   # shorter than sent
        b"POST /v3/kv/range HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"POST /v3/kv/range HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
        b"POST /v3/kv/range HTTP/1.1\r\nContent-Length: 99999999999\r\n\r\n",
        b"POST /v3/kv/range HTTP/9.9\r\n\r\n",
        b"\r\n\r\n\r\n",
    ]
    answers: list[bytes] = []
    for data in throws:
        with socket.create_connection(_host_port(endpoint), timeout=CALL_SECONDS) as s:
            try:
                s.sendall(data)
                s.shutdown(socket.SHUT_WR)
                answers.append(_read_all(s).split(b"\r\n", 1)[0])
            except ConnectionResetError:
                answers.append(b"")
    return answers


def _post(path: str, body: bytes) -> bytes:
    return b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (path.encode(), len(body), body)


def _chunked(path: str, body: bytes) -> bytes:
    return b"POST %s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n%s" % (path.encode(), body)


def _read_all(s: socket.socket) -> bytes:
    data = bytearray()
    while chunk := s.recv(65536):
        data += chunk
    return bytes(data)


@contextmanager
def slowloris(endpoint: str, connections: int) -> Iterator[Callable[[], None]]:
    """`connections` clients each sending a request's head a byte per call of the
    yielded `drip`, never finishing it; closed at the block's end."""
    sockets = [socket.create_connection(_host_port(endpoint), timeout=2) for _ in range(connections)]

    def drip() -> None:
        for s in sockets:
            try:
                s.sendall(b"a")
            except OSError:
                pass  # the server closed it: its right (a TLS port closes a plaintext head at once)

    try:
        for s in sockets:
            try:
                s.sendall(b"POST /v3/kv/range HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            except OSError:
                pass
        yield drip
    finally:
        for s in sockets:
            s.close()


def gateway_range(endpoint: str, key: bytes) -> tuple[int, dict[str, object]]:
    """A /v3/kv/range through the gateway on a fresh connection (bounded): its
    HTTP status and JSON body."""
    body = json.dumps({"key": base64.b64encode(key).decode()}).encode()
    with socket.create_connection(_host_port(endpoint), timeout=CALL_SECONDS) as s:
        s.sendall(_post("/v3/kv/range", body).replace(b"Host: x\r\n", b"Host: x\r\nConnection: close\r\n"))
        raw = _read_all(s)
    head, _, payload = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 "), head
    return int(head[9:12]), json.loads(payload)


#: What a write may fail with while the cluster is healthy but the machine is
#: loaded (an election under a 300 ms election timeout): nothing else.
TRANSIENT = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})


class WriteLoad:
    """Puts through the members' gRPC faces, one after another round the members,
    until stopped or `limit` writes; remembers every acknowledged one."""

    def __init__(self, endpoints: list[str], limit: int = 2000, pause: float = 0.005) -> None:
        self.endpoints = endpoints
        self.limit = limit
        self.pause = pause
        self.acked: dict[bytes, bytes] = {}
        self.failed: list[grpc.StatusCode] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="write-load", daemon=True)

    def __enter__(self) -> WriteLoad:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(2 * CALL_SECONDS)
        assert not self._thread.is_alive(), "the write load hung"

    def _run(self) -> None:
        channels = [grpc.insecure_channel(e) for e in self.endpoints]
        try:
            stubs = [rpc_pb2_grpc.KVStub(c) for c in channels]
            for i in range(self.limit):
                if self._stop.is_set():
                    return
                key, value = b"load/%05d" % i, b"v%d-%d" % (i, time.monotonic_ns())
                try:
                    stubs[i % len(stubs)].Put(rpc_pb2.PutRequest(key=key, value=value), timeout=CALL_SECONDS)
                except grpc.RpcError as error:
                    self.failed.append(error.code())
                else:
                    self.acked[key] = value
                time.sleep(self.pause)
        finally:
            for c in channels:
                c.close()
