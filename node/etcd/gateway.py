"""Gateway: etcd 3.4's JSON gateway (grpc-gateway) on a member's `gateway` URL.

It runs on the face's asyncio loop and calls the same service objects the gRPC
server does (`Services`), with a GatewayContext in place of grpc.aio's: one
implementation per RPC. What it adds is only the HTTP edge, made to answer as
etcd's does (checked against a real etcd 3.4 in tests/etcd/test_gateway.py):

- POST /v3/<path> (and /v3beta/<path>): the body's first JSON value is the
  request (node/etcd/jsonpb.py), the answer the response message as JSON; an
  empty body is the empty request.
- Errors: HTTP status from the gRPC code (grpc-gateway's table) and the body
  {"error": message, "message": message, "code": grpc code}.
- Streams (watch, lease keepalive, election observe, snapshot): a chunked
  response of {"result": message} objects each followed by "\\n"; an error
  after the first result is one {"error": {...}} object, as grpc-gateway writes
  it. Every JSON value of the body is a request on the stream; the body's end
  half-closes the request side, except for Watch, whose request side stays
  open (etcd's watch server ignores a half-close, so only a client that leaves
  ends a watch). Nothing is sent until the first result, as in etcd.
- GET /health and GET /version, as etcd's HTTP handlers answer them.
- Unknown paths, wrong methods and bad HTTP get Go's plain-text 404/405/4xx.

Every connection runs in its own task; whatever a client sends ends at worst
in that task with a logged error, never in the face's loop or the node.
"""
from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import ssl
from collections.abc import AsyncIterator
from typing import Any

import grpc
from google.protobuf.message import Message

from cluster.etcdpb import rpc_pb2
from node.etcd import errors, httpwire, jsonpb
from node.etcd.gatewaycontext import CallAborted, GatewayContext, forwarded_metadata
from node.etcd.limits import MAX_RECEIVE_BYTES
from node.etcd.routes import Route, build_routes, route_path

log = logging.getLogger("jangada.etcd.gateway")

#: What /version reports: the etcd release jangada answers as (API 3.4).
SERVER_VERSION = "3.4.0"
CLUSTER_VERSION = "3.4.0"
#: The largest body read: a request at gRPC's limit as JSON (base64 is 4/3 of the
#: bytes, plus field names and escapes). Larger requests within this are refused
#: as etcd refuses them, by their protobuf size.
MAX_BODY_BYTES = 4 * MAX_RECEIVE_BYTES
#: A connection idle (or a request arriving) for longer than this is closed.
IDLE_SECONDS = 300.0
#: etcd's health check gives its linearizable read one second (etcdhttp/metrics.go).
HEALTH_READ_SECONDS = 1.0
#: grpc-gateway's HTTPStatusFromCode (runtime/errors.go).
HTTP_STATUS = {
    grpc.StatusCode.OK: 200, grpc.StatusCode.CANCELLED: 408, grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.INVALID_ARGUMENT: 400, grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.NOT_FOUND: 404, grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403, grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429, grpc.StatusCode.FAILED_PRECONDITION: 412,
    grpc.StatusCode.ABORTED: 409, grpc.StatusCode.OUT_OF_RANGE: 400, grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.INTERNAL: 500, grpc.StatusCode.UNAVAILABLE: 503, grpc.StatusCode.DATA_LOSS: 500,
}
#: etcd's default --cors "*" (embed/serve.go addCORSHeader).
CORS = [("Access-Control-Allow-Headers", "accept, content-type, authorization"),
        ("Access-Control-Allow-Methods", "POST, GET, OPTIONS, PUT, DELETE"),
        ("Access-Control-Allow-Origin", "*")]
JSON = ("Content-Type", "application/json")
GRPC_METADATA = ("Grpc-Metadata-Content-Type", "application/grpc")
#: Routes whose request stream the body's end does not close (see the module docstring).
HELD_OPEN = frozenset({"Watch"})
#: Unary RPCs that wait for others (a lock, an election): when the client goes away
#: the call is cancelled, as Go's gateway cancels the call with its request's context,
#: so an abandoned waiter never acquires. Their connection closes after the answer
#: (watching for the client's end reads from the connection).
WAITING = frozenset({"Lock", "Campaign"})


def error_body(code: grpc.StatusCode, message: str) -> bytes:
    return jsonpb.dumps({"error": message, "message": message, "code": code.value[0]})


def stream_error(code: grpc.StatusCode, message: str) -> bytes:
    """grpc-gateway's streamChunk for an error (internal.StreamError, zero fields left out)."""
    http_code = HTTP_STATUS.get(code, 500)
    body: dict[str, Any] = {"grpc_code": code.value[0], "http_code": http_code, "message": message,
                            "http_status": httpwire.REASONS.get(http_code, "")}
    return jsonpb.dumps({"error": {key: value for key, value in body.items() if value}})


class _Failure(Exception):
    """A call's failure as the gateway answers it."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _failure(error: BaseException) -> _Failure:
    if isinstance(error, _Failure):
        return error
    if isinstance(error, CallAborted):
        return _Failure(error.code, error.message)
    if isinstance(error, errors.EtcdError):
        return _Failure(error.code, error.message)
    log.error("gateway call failed: %r", error, exc_info=error)
    return _Failure(grpc.StatusCode.UNKNOWN, f"Unexpected {type(error).__name__}: {error}")


def _parse(body: bytes, route: Route) -> Message:
    try:
        request = jsonpb.first_request(body, route.request_class)
    except jsonpb.JsonRequestError as error:
        raise _Failure(grpc.StatusCode.INVALID_ARGUMENT, str(error)) from None
    _check_size(request)
    return request


def _check_size(request: Message) -> None:
    size = request.ByteSize()
    if size > MAX_RECEIVE_BYTES:
        raise _Failure(grpc.StatusCode.RESOURCE_EXHAUSTED,
                       f"grpc: received message larger than max ({size} vs. {MAX_RECEIVE_BYTES})")


def certificate_auth(peercert: Any) -> dict[str, list[bytes]]:
    """What grpc's auth context says of a verified client certificate (its common
    name), from ssl's `getpeercert()` dict; {} without one."""
    if not peercert:
        return {}
    names = [value.encode() for rdn in peercert.get("subject", ()) for key, value in rdn if key == "commonName"]
    return {"x509_common_name": names[:1]} if names else {}


#: What the health read (without a token) gets from a healthy member while auth is on.
AUTH_REFUSALS = frozenset({errors.USER_EMPTY.message, errors.PERMISSION_DENIED.message})


class _Connection:
    """One client connection: requests answered one after another."""

    def __init__(self, gateway: Gateway, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.gateway = gateway
        self.reader = reader
        self.writer = writer
        peer = writer.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) and len(peer) >= 2 else ""
        self.auth = certificate_auth(writer.get_extra_info("peercert"))

    async def serve(self) -> None:
        try:
            while True:
                try:
                    request = await asyncio.wait_for(
                        httpwire.read_request(self.reader, self.writer, MAX_BODY_BYTES), IDLE_SECONDS)
                except httpwire.BadRequest as error:
                    await self.send_text(error.status, error.text, keep_alive=False)
                    return
                except (httpwire.ConnectionGone, asyncio.TimeoutError):
                    return
                if request is None:
                    return
                keep_alive = await self.answer(request)
                if not keep_alive:
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client left
        except Exception:  # a bug must not end the face: log it, drop this connection
            log.exception("gateway connection from %s failed", self.peer)
        finally:
            self.writer.close()

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def send_text(self, status: int, text: str, keep_alive: bool,
                        extra: list[tuple[str, str]] | None = None) -> None:
        """A plain-text answer as Go's http.Error writes it."""
        headers = [*CORS, *(extra or []), ("Content-Type", "text/plain; charset=utf-8"),
                   ("X-Content-Type-Options", "nosniff")]
        await self.send(httpwire.response(status, headers, f"{text}\n".encode(), keep_alive))

    async def send_json(self, status: int, body: bytes, keep_alive: bool,
                        extra: tuple[tuple[str, str], ...] = ()) -> None:
        await self.send(httpwire.response(status, [*CORS, JSON, *extra], body, keep_alive))

    async def send_failure(self, failure: _Failure, keep_alive: bool) -> None:
        await self.send_json(HTTP_STATUS.get(failure.code, 500), error_body(failure.code, failure.message),
                             keep_alive)

    async def answer(self, request: httpwire.HttpRequest) -> bool:
        """Answer one request; whether the connection may carry another."""
        keep_alive = request.keep_alive
        if request.method == "OPTIONS":
            await self.send(httpwire.response(200, CORS, b"", keep_alive))
            return keep_alive
        path = route_path(request.path)
        if path is None:
            return await self.answer_other(request, keep_alive)
        route = self.gateway.routes.get(path)
        if route is None:
            await self.send_text(404, "Not Found", keep_alive)
            return keep_alive
        if request.method != "POST":
            await self.send_text(405, "Method Not Allowed", keep_alive)
            return keep_alive
        if route.client_streaming or route.server_streaming:
            await self.stream(route, request)
            return False
        return await self.unary(route, request, keep_alive)

    async def answer_other(self, request: httpwire.HttpRequest, keep_alive: bool) -> bool:
        if request.path not in ("/health", "/version"):
            await self.send_text(404, "404 page not found", keep_alive)
            return keep_alive
        if request.method != "GET":
            await self.send_text(405, "Method Not Allowed", keep_alive, [("Allow", "GET")])
            return keep_alive
        if request.path == "/version":
            body = jsonpb.dumps({"etcdserver": SERVER_VERSION, "etcdcluster": CLUSTER_VERSION})
            await self.send_json(200, body, keep_alive)
        elif await self.gateway.healthy(_excluded_alarms(request.query)):
            await self.send(httpwire.response(200, [*CORS, ("Content-Type", "text/plain; charset=utf-8")],
                                              b'{"health":"true"}', keep_alive))
        else:
            await self.send_text(503, '{"health":"false"}', keep_alive)
        return keep_alive

    def context(self, request: httpwire.HttpRequest, requests: AsyncIterator[Message] | None = None,
                on_write: Any = None) -> GatewayContext:
        return GatewayContext(forwarded_metadata(request.headers, self.peer), f"ipv4:{self.peer}", requests,
                              on_write, self.auth)

    async def unary(self, route: Route, request: httpwire.HttpRequest, keep_alive: bool) -> bool:
        """Answer a unary call; whether the connection may carry another request."""
        context = self.context(request)
        try:
            message = _parse(request.body, route)
            call = route.handler(self.gateway.services)(message, context)
            if route.method in WAITING:
                keep_alive = False
                reply = await self.unless_client_leaves(call)
                if reply is None:
                    return False
            else:
                reply = await call
            aborted = context.status_error()
            if aborted is not None:
                raise aborted
        except Exception as error:
            await self.send_failure(_failure(error), keep_alive)
            return keep_alive
        finally:
            context.finish()
        await self.send_json(200, jsonpb.message_json(reply), keep_alive, (GRPC_METADATA,))
        return keep_alive

    async def unless_client_leaves(self, call: Any) -> Any:
        """`call`'s result, or None (the call cancelled) when the client leaves first."""
        task = asyncio.ensure_future(call)
        watcher = asyncio.ensure_future(self.client_left())
        try:
            await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
            if not task.done():
                return None
            return task.result()
        finally:
            task.cancel()
            watcher.cancel()

    async def stream(self, route: Route, request: httpwire.HttpRequest) -> None:
        """A streaming RPC: results as chunks until the call ends or the client leaves."""
        try:
            first, requests = self.stream_requests(route, request.body)
        except _Failure as failure:
            await self.send_failure(failure, keep_alive=False)
            return
        results: asyncio.Queue[Message | BaseException | None] = asyncio.Queue(maxsize=64)
        context = self.context(request, requests, results.put)
        call = asyncio.get_running_loop().create_task(self.run_stream(route, first, context, results))
        watcher = asyncio.get_running_loop().create_task(self.client_left())
        try:
            await self.forward(results, watcher)
        finally:
            call.cancel()
            watcher.cancel()
            context.finish()

    def stream_requests(self, route: Route, body: bytes) -> tuple[Any, AsyncIterator[Message] | None]:
        """(the handler's first argument, the request iterator for read())."""
        if not route.client_streaming:
            return _parse(body, route), None
        values = jsonpb.json_values(body)
        try:
            first = [jsonpb.parse_value(value, route.request_class) for value in _first(values)]
        except jsonpb.JsonRequestError as error:
            # grpc-gateway returns its decoder's error as is: not a status, so Unknown (500).
            raise _Failure(grpc.StatusCode.UNKNOWN, str(error)) from None
        requests = _stream_requests(first, values, route)
        return requests, requests

    async def run_stream(self, route: Route, argument: Any, context: GatewayContext,
                         results: asyncio.Queue[Message | BaseException | None]) -> None:
        try:
            outcome = route.handler(self.gateway.services)(argument, context)
            if inspect.isasyncgen(outcome):
                async with contextlib.aclosing(outcome) as messages:  # its finally runs now, not at collection
                    async for message in messages:
                        await results.put(message)
            else:
                await outcome
            aborted = context.status_error()
            await results.put(aborted)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            await results.put(error)

    async def client_left(self) -> None:
        """Returns when the client closes its side (a streaming call's end)."""
        while await self.reader.read(4096):
            pass  # a client sends nothing more during a stream; anything it does is dropped

    async def forward(self, results: asyncio.Queue[Message | BaseException | None], watcher: asyncio.Task[None]) -> None:
        started = False
        while True:
            getter = asyncio.ensure_future(results.get())
            done, _ = await asyncio.wait({getter, watcher}, return_when=asyncio.FIRST_COMPLETED)
            if getter not in done:
                getter.cancel()
                return  # the client left
            item = getter.result()
            if isinstance(item, Message):
                data = httpwire.chunk(jsonpb.dumps({"result": jsonpb.message_dict(item)}) + b"\n")
                if not started:
                    started = True
                    head = httpwire.head(200, [*CORS, JSON, GRPC_METADATA, ("Transfer-Encoding", "chunked"),
                                               ("Connection", "close")])
                    data = head + data
                await self.send(data)
                continue
            if item is None:
                if started:
                    await self.send(httpwire.LAST_CHUNK)
                else:
                    await self.send(httpwire.response(200, [*CORS, JSON, GRPC_METADATA], b"", False))
                return
            failure = _failure(item)
            if started:
                await self.send(httpwire.chunk(stream_error(failure.code, failure.message)) + httpwire.LAST_CHUNK)
            else:
                status = HTTP_STATUS.get(failure.code, 500)
                await self.send(httpwire.response(status, [*CORS, JSON], stream_error(failure.code, failure.message),
                                                  False))
            return


def _first(values: Any) -> list[Any]:
    for value in values:
        return [value]
    return []


async def _stream_requests(first: list[Message], values: Any, route: Route) -> AsyncIterator[Message]:
    """A stream's requests: the body's JSON values in order. A value that is not a
    request ends the stream's requests (grpc-gateway stops sending at a decode
    error). Watch's request side then stays open (HELD_OPEN)."""
    for message in first:
        yield message
    try:
        for value in values:
            message = jsonpb.parse_value(value, route.request_class)
            _check_size(message)
            yield message
    except (jsonpb.JsonRequestError, _Failure) as error:
        log.info("gateway %s: request stream ends at a bad request: %s", route.path, error)
    if route.method in HELD_OPEN:
        await asyncio.Event().wait()  # until the call is cancelled


def _excluded_alarms(query: str) -> frozenset[str]:
    """?exclude=NOSPACE&exclude=...: alarms /health does not count (etcd 3.4)."""
    names = [part[len("exclude="):] for part in query.split("&") if part.startswith("exclude=")]
    return frozenset(name for name in names if name)


class Gateway:
    """The HTTP JSON gateway of one face, serving `services` on HOST:PORT."""

    def __init__(self, services: Any, bind_host_port: str, tls: ssl.SSLContext | None = None) -> None:
        """`tls`: serve HTTPS with this context (node/etcd/face.py's FaceTls)."""
        self.services = services
        self.bind_host_port = bind_host_port
        self._tls = tls
        self.routes = build_routes(services)
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        host, _, port = self.bind_host_port.rpartition(":")
        host = host.strip("[]")  # an IPv6 literal
        self._server = await asyncio.start_server(self._accept, host or None, int(port), limit=httpwire.MAX_LINE,
                                                  reuse_address=True, ssl=self._tls)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._connections):
            task.cancel()
        if self._connections:
            await asyncio.wait(self._connections, timeout=2.0)
        if self._server is not None:
            await self._server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            await _Connection(self, reader, writer).serve()
        except asyncio.CancelledError:
            pass  # stop(): this task is the connection's top, nobody awaits its cancellation
        finally:
            self._connections.discard(task)

    async def healthy(self, excluded_alarms: frozenset[str]) -> bool:
        """etcd's /health: no active alarm (but the excluded ones), and a linearizable
        read within a second, which needs a leader and a quorum (etcd checks for a
        leader, then makes a quorum read: a ReadIndex read here checks both)."""
        context = GatewayContext((), "")
        try:
            maintenance = getattr(self.services, "maintenance", None)
            if maintenance is not None and await self._alarmed(maintenance, excluded_alarms):
                return False
            await asyncio.wait_for(self.services.kv.Range(rpc_pb2.RangeRequest(key=b"health"), context),
                                   HEALTH_READ_SECONDS)
            return True
        except CallAborted as aborted:
            # With auth on, the read (it has no token) is refused by the store it
            # reached: healthy. etcd's own check is a v2 read that auth never sees.
            return aborted.message in AUTH_REFUSALS
        except (asyncio.TimeoutError, errors.EtcdError):
            return False
        finally:
            context.finish()

    @staticmethod
    async def _alarmed(maintenance: Any, excluded: frozenset[str]) -> bool:
        raised = await asyncio.wait_for(maintenance.raised_alarms(), HEALTH_READ_SECONDS)
        return any(name not in excluded for name in raised)
