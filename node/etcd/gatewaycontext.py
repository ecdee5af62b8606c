"""GatewayContext: what a service sees of a call that came through the JSON
gateway, standing in for grpc.aio's ServicerContext.

The services are written once, for grpc.aio (node/etcd/calls.py); the gateway
calls the very same methods with this context. `abort` raises `CallAborted`,
which the gateway turns into etcd's HTTP error; `write`/`read` carry a stream's
messages for handlers written in grpc.aio's read/write style (async-generator
handlers need neither). The metadata a service reads is what grpc-gateway would
have forwarded: `authorization`, `Grpc-Metadata-*` headers without the prefix,
and a few standard headers as `grpcgateway-<name>`.
"""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any, NoReturn

import grpc
import grpc.aio
from google.protobuf.message import Message

#: grpc-gateway v1's permanent HTTP headers that it forwards as grpcgateway-<name>.
_FORWARDED = frozenset({
    "accept", "accept-charset", "accept-language", "accept-ranges", "authorization", "cache-control",
    "content-type", "cookie", "date", "expect", "from", "host", "if-match", "if-modified-since",
    "if-none-match", "if-schedule-tag-match", "if-unmodified-since", "max-forwards", "origin", "pragma",
    "referer", "user-agent", "via", "warning",
})
_METADATA_PREFIX = "grpc-metadata-"


class CallAborted(Exception):
    """A service ended the call with a status (context.abort)."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def forwarded_metadata(headers: dict[str, str], peer: str) -> tuple[tuple[str, str], ...]:
    """The gRPC metadata grpc-gateway makes of an HTTP request's headers."""
    pairs: list[tuple[str, str]] = []
    for name, value in headers.items():
        if name == "authorization":
            pairs.append(("authorization", value))
        if name.startswith(_METADATA_PREFIX):
            pairs.append((name[len(_METADATA_PREFIX):], value))
        elif name in _FORWARDED:
            pairs.append((f"grpcgateway-{name}", value))
    if peer:
        pairs.append(("x-forwarded-for", peer.rsplit(":", 1)[0]))
    return tuple(pairs)


class GatewayContext:
    def __init__(self, metadata: tuple[tuple[str, str], ...], peer: str,
                 requests: AsyncIterator[Message] | None = None,
                 on_write: Callable[[Message], Any] | None = None,
                 auth: dict[str, list[bytes]] | None = None) -> None:
        """`auth`: grpc's auth context of the connection (a TLS client certificate's CN)."""
        self._metadata = metadata
        self._auth = auth or {}
        self._peer = peer
        self._requests = requests
        self._on_write = on_write
        self._code: grpc.StatusCode | None = None
        self._details = ""
        self._done = asyncio.Event()
        self._callbacks: list[Callable[[Any], None]] = []

    # -- ending the call ------------------------------------------------------------

    async def abort(self, code: grpc.StatusCode, details: str = "", trailing_metadata: Any = ()) -> NoReturn:
        raise CallAborted(code, details)

    def set_code(self, code: grpc.StatusCode) -> None:
        self._code = code

    def set_details(self, details: str) -> None:
        self._details = details

    def code(self) -> grpc.StatusCode | None:
        return self._code

    def details(self) -> str:
        return self._details

    def status_error(self) -> CallAborted | None:
        """The status a handler set without aborting, if it is not OK."""
        if self._code is None or self._code is grpc.StatusCode.OK:
            return None
        return CallAborted(self._code, self._details)

    def finish(self) -> None:
        """The call is over (answered, failed or the client left): run done callbacks."""
        if self._done.is_set():
            return
        self._done.set()
        for callback in self._callbacks:
            callback(self)

    # -- what the call is ---------------------------------------------------------------

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return self._metadata

    def peer(self) -> str:
        return self._peer

    def time_remaining(self) -> float | None:
        return None  # the gateway sets no deadline, as etcd's does not

    def cancelled(self) -> bool:
        return self._done.is_set()

    def done(self) -> bool:
        return self._done.is_set()

    def add_done_callback(self, callback: Callable[[Any], None]) -> None:
        self._callbacks.append(callback)

    def auth_context(self) -> dict[str, list[bytes]]:
        return self._auth

    async def send_initial_metadata(self, metadata: Any) -> None:
        return None

    def set_trailing_metadata(self, metadata: Any) -> None:
        return None

    # -- streams ------------------------------------------------------------------------

    async def read(self) -> Any:
        if self._requests is None:
            return grpc.aio.EOF
        try:
            return await anext(self._requests)
        except StopAsyncIteration:
            return grpc.aio.EOF

    async def write(self, message: Message) -> None:
        if self._on_write is None:
            raise RuntimeError("write() on a call that does not stream its responses")
        await self._on_write(message)
