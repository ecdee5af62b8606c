"""Calling a member's gRPC face through the generated stubs, for the etcd face's tests:
a channel that is known to serve, and the status a call must fail with (etcd clients
see exactly that code and message, so the tests compare both)."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
import pytest

RPC_TIMEOUT = 10.0


def ready_channel(endpoint: str, timeout: float = RPC_TIMEOUT) -> grpc.Channel:
    """A channel to `endpoint` once it serves (a node's face starts after its process)."""
    channel = grpc.insecure_channel(endpoint)
    grpc.channel_ready_future(channel).result(timeout=timeout)
    return channel


def failure(call: Callable[..., Any], request: Any, timeout: float = RPC_TIMEOUT) -> tuple[grpc.StatusCode, str]:
    """The status a call fails with (it must fail)."""
    with pytest.raises(grpc.RpcError) as raised:
        call(request, timeout=timeout)
    return raised.value.code(), raised.value.details()
