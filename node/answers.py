"""Turning state-machine results and core outcomes into client replies."""
from __future__ import annotations

from collections.abc import Callable

from cluster.kv import Compacted, KvError, LeaseNotFound, Result, SessionExpired, encode_result
from cluster.kv.errors import AuthError
from cluster.protocol import ErrorCode, ErrorReply, Reply, kv_reply


def result_reply(request_id: int, node_id: int, result: Result, serializable: bool = False) -> Reply:
    """A command's outcome: KvErrors are the client's typed errors."""
    if isinstance(result, KvError):
        if isinstance(result, Compacted):
            code = ErrorCode.COMPACTED
        elif isinstance(result, SessionExpired):
            code = ErrorCode.SESSION_EXPIRED
        elif isinstance(result, LeaseNotFound):
            code = ErrorCode.LEASE_NOT_FOUND
        elif isinstance(result, AuthError):
            code = ErrorCode.UNAUTHORIZED
        else:
            code = ErrorCode.INVALID_REQUEST
        return ErrorReply(request_id, node_id, code, str(result), kv_error=encode_result(result))
    return kv_reply(request_id, node_id, encode_result(result), serializable)


def redirect(request_id: int, node_id: int, leader: int, leader_client: str) -> ErrorReply:
    """Not the leader: name it if known (clients follow the redirect), or say there
    is none yet (clients back off and retry)."""
    if leader and leader != node_id:
        return ErrorReply(request_id, node_id, ErrorCode.NOT_LEADER,
                          f"node {node_id} is not the leader; node {leader} is", leader, leader_client)
    return ErrorReply(request_id, node_id, ErrorCode.NO_LEADER_YET, f"node {node_id} knows no leader yet")


def error(request_id: int, node_id: int, code: ErrorCode, reason: str) -> ErrorReply:
    return ErrorReply(request_id, node_id, code, reason)


class Answers:
    """The reply constructors with this node's id (and, for redirects, the address
    book's client address of the leader) bound once."""

    def __init__(self, node_id: int, client_address: Callable[[int], str]) -> None:
        self.node_id = node_id
        self._client_address = client_address
        #: told of every AuthError answered (the node's refusal counters)
        self.on_auth_error: Callable[[AuthError], None] | None = None

    def error(self, request_id: int, code: ErrorCode, reason: str) -> ErrorReply:
        return ErrorReply(request_id, self.node_id, code, reason)

    def redirect(self, request_id: int, leader: int) -> ErrorReply:
        return redirect(request_id, self.node_id, leader, self._client_address(leader))

    def result(self, request_id: int, result: Result, serializable: bool = False) -> Reply:
        if isinstance(result, KvError):
            if isinstance(result, AuthError) and self.on_auth_error is not None:
                self.on_auth_error(result)
            return result_reply(request_id, self.node_id, result, serializable)
        return kv_reply(request_id, self.node_id, encode_result(result), serializable)
