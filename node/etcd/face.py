"""EtcdFace: the thread that serves etcd's v3 API for one node.

The node's actor owns the main thread and never blocks on the face. The face
runs its own asyncio loop in a daemon thread: a grpc.aio server with etcd's
services, and the HTTP JSON gateway when the member has a gateway URL. Both
reach the node only through NodeLink (in-process ZeroMQ), so the actor sees
client requests and nothing else; the face holds no state of the store.

Errors: see node/etcd/calls.py.

TLS (the config's [tls], etcd's --cert-file/--key-file/--trusted-ca-file/
--client-cert-auth): both servers present the member's certificate; with
client_cert_auth they require a client certificate chaining to the CA and its
common name is the user of calls that bring no token (node/etcd/credentials.py,
with the node's `face_secret`).
"""
from __future__ import annotations

import asyncio
import logging
import ssl
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
import zmq
import zmq.asyncio

from cluster.curve_keys import CurveClient
from cluster.spec import ClusterSpec, MemberSpec
from node.etcd import errors
from node.etcd.credentials import Credentials
from node.etcd.decoding import UndecodableRequests
from node.etcd.gateway import Gateway
from node.etcd.header import Headers
from node.etcd.limits import MAX_RECEIVE_BYTES, FaceLimits
from node.etcd.link import NodeLink
from node.etcd.publish import publish
from node.etcd.services import add_services

log = logging.getLogger("jangada.etcd")

#: etcd's server keepalive defaults (embed/config.go): ping an idle client every
#: 2 h, give up after 20 s without an answer; clients may ping every 5 s.
GRPC_OPTIONS = [
    ("grpc.max_receive_message_length", MAX_RECEIVE_BYTES),
    ("grpc.max_send_message_length", 2**31 - 1),
    ("grpc.keepalive_time_ms", 2 * 3600 * 1000),
    ("grpc.keepalive_timeout_ms", 20 * 1000),
    ("grpc.http2.min_ping_interval_without_data_ms", 5000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.max_concurrent_streams", 2**31 - 1),
    ("grpc.so_reuseport", 0),
]

@dataclass(frozen=True, slots=True)
class FaceAddresses:
    grpc: str  # HOST:PORT to bind the gRPC server, "" = none
    gateway: str  # HOST:PORT to bind the JSON gateway, "" = none

    @classmethod
    def of(cls, member: MemberSpec) -> FaceAddresses:
        return cls(member.grpc_bind_address, member.gateway_bind_address)

    def __bool__(self) -> bool:
        return bool(self.grpc or self.gateway)


@dataclass(frozen=True, slots=True)
class FaceTls:
    """The files of the face's TLS, resolved for one member."""

    cert: Path
    key: Path
    ca: Path | None
    client_cert_auth: bool

    @classmethod
    def of(cls, spec: ClusterSpec, node_id: int) -> FaceTls | None:
        """The spec's [tls] for member `node_id`; None when TLS is off."""
        tls = spec.tls
        if not tls.enabled:
            return None
        return cls(spec.config_path(tls.cert, node_id), spec.config_path(tls.key, node_id),
                   spec.config_path(tls.ca, node_id) if tls.ca else None, tls.client_cert_auth)

    def grpc_credentials(self) -> grpc.ServerCredentials:
        ca = self.ca.read_bytes() if self.ca is not None and self.client_cert_auth else None
        return grpc.ssl_server_credentials([(self.key.read_bytes(), self.cert.read_bytes())],
                                           root_certificates=ca, require_client_auth=self.client_cert_auth)

    def ssl_context(self) -> ssl.SSLContext:
        """The gateway's server context, with the same rules as the gRPC server's."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, self.key)
        if self.client_cert_auth:
            if self.ca is not None:
                context.load_verify_locations(cafile=str(self.ca))
            context.verify_mode = ssl.CERT_REQUIRED
        return context


class FaceStartError(OSError):
    """The face could not bind its ports (e.g. one is in use)."""


class EtcdFace:
    def __init__(self, cluster_name: str, member: MemberSpec, ctx: zmq.Context[Any],
                 request_timeout: float, min_lease_ttl: int = 1, *, face_secret: str = "",
                 tls: FaceTls | None = None, curve: CurveClient | None = None,
                 limits: FaceLimits = FaceLimits()) -> None:
        """`member`: this node's advertised addresses (published to the cluster
        if its address book lacks them: node/etcd/publish.py). `face_secret`: the
        node's secret for the trusted face token (certificate users); `tls`: the
        servers' TLS (None: plaintext); `curve`: how to reach other members' client
        ports in a `[curve]` cluster; `limits`: the cluster's request size and
        txn-op limits (etcd's --max-request-bytes, --max-txn-ops)."""
        self._face_secret = face_secret
        self._limits = limits
        self._tls = tls
        self.cluster_name = cluster_name
        self.member = member
        self.node_id = member.id
        self.addresses = FaceAddresses.of(member)
        self._ctx = ctx
        self._request_timeout = request_timeout
        self._min_lease_ttl = min_lease_ttl  # etcd's minimum lease TTL (node/etcd/lease.py)
        self._curve = curve
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None

    def start(self, timeout: float = 10.0) -> None:
        """Start serving; raises FaceStartError if the ports cannot be bound."""
        self._thread = threading.Thread(target=self._run, name=f"etcd-face-{self.node_id}", daemon=True)
        self._thread.start()
        if not self._started.wait(timeout):
            raise FaceStartError("the etcd face did not start in time")
        if self._error is not None:
            raise FaceStartError(str(self._error)) from self._error

    def stop(self, timeout: float = 5.0) -> None:
        loop, stopping = self._loop, self._stopping
        if loop is not None and stopping is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(stopping.set)
            except RuntimeError:
                pass  # the loop already ended
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve())
        except BaseException as error:  # reported to start(), or logged after it
            if not self._started.is_set():
                self._error = error
                self._started.set()
            else:
                log.exception("node=%d etcd face failed", self.node_id)
        finally:
            loop.close()

    async def _serve(self) -> None:
        self._stopping = asyncio.Event()
        link = NodeLink(zmq.asyncio.Context.shadow(self._ctx), self.node_id, self._request_timeout,
                        curve=self._curve)
        await link.start()
        headers = Headers(self.cluster_name, self.node_id, link)
        tls = self._tls
        credentials = Credentials(link, self._face_secret, tls is not None and tls.client_cert_auth)
        server = None
        gateway = None
        try:
            if self.addresses.grpc:
                options = [(name, self._limits.max_receive_bytes if name == "grpc.max_receive_message_length"
                            else value) for name, value in GRPC_OPTIONS]
                server = grpc.aio.server(options=options, interceptors=[UndecodableRequests()])
                services = add_services(server, link, headers, self._min_lease_ttl, credentials,
                                        self._limits.max_txn_ops)
                if tls is not None:
                    bound = server.add_secure_port(self.addresses.grpc, tls.grpc_credentials())
                else:
                    bound = server.add_insecure_port(self.addresses.grpc)
                if bound == 0:
                    raise FaceStartError(f"cannot bind the gRPC address {self.addresses.grpc}")
                await server.start()
            else:
                services = add_services(None, link, headers, self._min_lease_ttl, credentials,
                                        self._limits.max_txn_ops)
            if self.addresses.gateway:
                gateway = Gateway(services, self.addresses.gateway, tls.ssl_context() if tls is not None else None)
                await gateway.start()
            self._started.set()
            publishing = asyncio.get_running_loop().create_task(publish(link, self.member))
            await self._stopping.wait()
            publishing.cancel()
        finally:
            if gateway is not None:
                await gateway.stop()
            if server is not None:
                await server.stop(grace=0.5)
            await link.close()
