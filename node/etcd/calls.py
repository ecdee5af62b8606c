"""How a service's failure becomes the call's status: etcd's code and message.

A unary handler raises EtcdError; `guarded` wraps every unary RPC method of a
servicer so that it becomes `context.abort(code, message)`. Streaming handlers
(a bidirectional stream, or a server stream) are marked `streaming` and manage
their own errors. Anything else a handler raises is left to grpc.aio, which logs
it and answers UNKNOWN: a client's bytes never take the node down.
"""
from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from node.etcd import errors

T = TypeVar("T")


async def abort(context: Any, error: errors.EtcdError) -> None:
    """End a call with etcd's status for `error`."""
    await context.abort(error.code, error.message)


def etcd_errors(method: Callable[..., Awaitable[T]]) -> Callable[..., Awaitable[T]]:
    """A unary handler whose EtcdError becomes the call's status."""

    @functools.wraps(method)
    async def handler(request: Any, context: Any) -> T:
        try:
            return await method(request, context)
        except errors.EtcdError as error:
            await abort(context, error)
            raise AssertionError("unreachable: abort raises")  # pragma: no cover

    return handler


def guarded(servicer: Any) -> Any:
    """`servicer` with etcd_errors around each unary RPC method (coroutines whose
    name starts with a capital, as generated servicer methods do). Streaming
    handlers (async generators, or those taking a request iterator) handle their
    own errors."""
    for name, member in inspect.getmembers(servicer):
        if name[:1].isupper() and inspect.iscoroutinefunction(member) and not getattr(member, "streaming", False):
            setattr(servicer, name, etcd_errors(member))
    return servicer


def streaming(method: T) -> T:
    """Mark a handler that manages its own errors (see `guarded`)."""
    setattr(method, "streaming", True)
    return method


