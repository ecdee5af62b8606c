"""Request bytes that do not decode end the call as etcd's (Go) server ends it:
INTERNAL "grpc: error unmarshalling request: ...".

grpc.aio decodes a request with the method's deserializer outside any handler,
so a DecodeError there escapes as an exception: grpc.aio logs its traceback and
answers UNKNOWN with the Python exception's text. `UndecodableRequests` is the
server's interceptor that swaps each method's deserializer for one that never
raises (it returns an `Undecodable` marker), and its behaviour for one that
ends the call with etcd's status on seeing the marker. Handlers are wrapped
once per method (cached), so a call costs one dict lookup more.
"""
from __future__ import annotations

import inspect
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
import grpc.aio
from google.protobuf.message import DecodeError

from node.eventlog import LOGGER_NAME

log = logging.getLogger(f"{LOGGER_NAME}.etcd")  # the node's log lines (node/eventlog.py)

#: At most one log line about undecodable requests per this many seconds.
LOG_EVERY_SECONDS = 10.0


class Undecodable:
    """A request whose bytes did not decode, in place of the message."""

    __slots__ = ("error",)

    def __init__(self, error: DecodeError) -> None:
        self.error = error

    @property
    def message(self) -> str:
        return f"grpc: error unmarshalling request: {self.error}"


class _RateLimitedLog:
    def __init__(self) -> None:
        self._next = 0.0
        self._dropped = 0

    def note(self, method: str, why: Undecodable) -> None:
        now = time.monotonic()
        if now < self._next:
            self._dropped += 1
            return
        log.warning("undecodable request to %s: %s (%d more since the last line)", method, why.error, self._dropped)
        self._next = now + LOG_EVERY_SECONDS
        self._dropped = 0


def _tolerant(deserializer: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    if deserializer is None:
        return None

    def decode(data: bytes) -> Any:
        try:
            return deserializer(data)
        except DecodeError as error:
            return Undecodable(error)

    return decode


class UndecodableRequests(grpc.aio.ServerInterceptor):
    def __init__(self) -> None:
        self._handlers: dict[str, grpc.RpcMethodHandler] = {}
        self._log = _RateLimitedLog()

    async def intercept_service(self, continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Any]],
                                details: grpc.HandlerCallDetails) -> Any:
        method = details.method
        wrapped = self._handlers.get(method)
        if wrapped is None:
            handler = await continuation(details)
            if handler is None:
                return None  # an unknown method: grpc.aio answers UNIMPLEMENTED
            wrapped = self._handlers[method] = self._wrap(method, handler)
        return wrapped

    def _wrap(self, method: str, handler: Any) -> Any:
        kind = ("stream_" if handler.request_streaming else "unary_") + (
            "stream" if handler.response_streaming else "unary")
        behaviour = getattr(handler, kind)
        refuse = self._refuser(method)
        if handler.request_streaming:
            wrapped = _streaming_requests(behaviour, refuse)
        else:
            wrapped = _unary_request(behaviour, refuse)
        return handler._replace(request_deserializer=_tolerant(handler.request_deserializer), **{kind: wrapped})

    def _refuser(self, method: str) -> Callable[[Undecodable, Any], Awaitable[None]]:
        async def refuse(request: Undecodable, context: Any) -> None:
            self._log.note(method, request)
            await context.abort(grpc.StatusCode.INTERNAL, request.message)

        return refuse


def _unary_request(behaviour: Any, refuse: Callable[[Undecodable, Any], Awaitable[None]]) -> Any:
    if inspect.isasyncgenfunction(behaviour):
        async def stream(request: Any, context: Any) -> AsyncIterator[Any]:
            if isinstance(request, Undecodable):
                await refuse(request, context)
            async for response in behaviour(request, context):
                yield response

        return stream

    async def unary(request: Any, context: Any) -> Any:
        if isinstance(request, Undecodable):
            await refuse(request, context)
        return await behaviour(request, context)

    return unary


def _streaming_requests(behaviour: Any, refuse: Callable[[Undecodable, Any], Awaitable[None]]) -> Any:
    async def checked(requests: AsyncIterator[Any], context: Any) -> AsyncIterator[Any]:
        async for request in requests:
            if isinstance(request, Undecodable):
                await refuse(request, context)
            yield request

    if inspect.isasyncgenfunction(behaviour):
        async def stream(requests: AsyncIterator[Any], context: Any) -> AsyncIterator[Any]:
            async for response in behaviour(checked(requests, context), context):
                yield response

        return stream

    async def unary(requests: AsyncIterator[Any], context: Any) -> Any:
        return await behaviour(checked(requests, context), context)

    return unary
