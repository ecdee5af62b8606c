"""The client's typed errors: the expected outcomes a caller may catch.

They live apart from `cluster.client` because both the client's request loop and
a watch (`cluster.watch`, which the client builds) raise them; `cluster.client`
re-exports every one, so callers keep importing them from there.
"""
from __future__ import annotations


class ClientError(Exception):
    """Base of the client's typed errors."""


class ClientTimeout(ClientError):
    """No definite answer before the deadline: the outcome is unknown."""


class InvalidRequestError(ClientError):
    """The cluster refused the request as malformed or over a limit; retrying won't help."""


class CompactedError(ClientError):
    """The requested revision was compacted away."""


class WatchCompactedError(CompactedError):
    """A watch's next revision was compacted away: `compact_revision` + 1 is the
    oldest revision a new watch can start from."""

    def __init__(self, message: str, compact_revision: int) -> None:
        super().__init__(message)
        self.compact_revision = compact_revision


class SessionExpiredError(ClientError):
    """The client's session was evicted: the outcome of its last write is unknown."""


class UnexpectedReply(ClientError):
    """A node answered with something this client cannot read."""


class LeaseNotFoundError(ClientError):
    """The lease does not exist: never granted, revoked, or expired."""


class RefusedError(ClientError):
    """The leader refused a membership change for a reason that may pass (e.g. the
    learner is not caught up yet); nothing happened. The message is the core's reason."""
