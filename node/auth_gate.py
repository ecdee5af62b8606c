"""Who a request comes from, and whether this member lets it in: the node's side
of auth (cluster/kv/auth.py says who checks what).

The `AuthGate` mirrors whether auth is on (`enabled`, one attribute the client
router reads per request: with auth off, the common case, nothing else is paid),
keeps the tokens (node/auth_tokens.py) in step with the applied log's auth
events, resolves a request's token to a user, and makes the checks that are the
node's to make (root for maintenance and fault injection). Key permissions are
the state machine's (`StateMachine.auth`), checked at apply or query time.

`AuthRefusals` counts every refusal by kind for the node status and logs each
kind at most once per interval (a flood of bad passwords must not flood the
log); no message ever holds a password or a token.
"""
from __future__ import annotations

import hmac
import time
from collections.abc import Callable
from typing import Any

from cluster.kv.errors import AuthError, AuthFailed, AuthOldRevision, InvalidAuthToken, PermissionDenied, UserEmpty
from node.auth_tokens import TokenTable
from node.eventlog import EventLog
from node.replica import Replica

#: Prefix of the token the etcd face uses for a TLS client certificate's CN.
FACE_TOKEN_PREFIX = "jangada-face-"

#: The refusal kinds counted in the node status ("auth" in `python -m cluster status`).
REFUSAL_KINDS = ("auth_failed", "invalid_token", "permission_denied", "fault_injection_refused")


def refusal_kind(error: AuthError) -> str | None:
    """The status counter an auth error counts under (None: an outcome of an auth
    request such as UserNotFound, not a refusal to let someone in)."""
    if isinstance(error, AuthFailed):
        return "auth_failed"
    if isinstance(error, (InvalidAuthToken, AuthOldRevision)):
        return "invalid_token"
    if isinstance(error, (PermissionDenied, UserEmpty)):
        return "permission_denied"
    return None


class AuthRefusals:
    """Refusals by kind, and a rate-limited warning per kind."""

    def __init__(self, log: EventLog) -> None:
        self.counts: dict[str, int] = dict.fromkeys(REFUSAL_KINDS, 0)
        self._log = log

    def count(self, kind: str, what: str) -> None:
        """`what`: the refusal for operators (a user name or a request kind, never
        a password or a token)."""
        self.counts[kind] += 1
        self._log.rate_limited(f"auth-{kind}", f"refused ({kind.replace('_', ' ')}): {what}")

    def count_error(self, error: AuthError, what: str) -> None:
        kind = refusal_kind(error)
        if kind is not None:
            self.count(kind, f"{what}: {error}")


class AuthGate:
    def __init__(self, replica: Replica, tokens: TokenTable, refusals: AuthRefusals, face_secret: str,
                 wall_clock: Callable[[], float] = time.time) -> None:
        self._replica = replica
        self.tokens = tokens
        self.refusals = refusals
        self._face_token = (FACE_TOKEN_PREFIX + face_secret).encode()
        self.wall_clock = wall_clock
        self._sm = replica.sm
        #: whether auth is on in the applied state (the router's one check per request)
        self.enabled: bool = replica.sm.auth.enabled

    # -- following the applied state ----------------------------------------------------

    def sync(self) -> None:
        """After applying (once per loop turn): take the state machine's auth events
        (new simple tokens, users whose tokens die, auth turned on or off). A state
        machine replaced by a snapshot brings no events: the tokens issued before it
        are forgotten (their holders authenticate again)."""
        sm = self._replica.sm
        if sm is not self._sm:
            self._sm = sm
            self.tokens.clear()
        events = sm.drain_auth_events()
        if events:
            self.tokens.apply(events)
        self.enabled = sm.auth.enabled

    def sweep(self) -> None:
        """Forget expired simple tokens (memory only)."""
        if len(self.tokens):
            self.tokens.expire(self.wall_clock())

    # -- checks (raise the AuthError; callers count and answer) ------------------------

    def user_of(self, token: str) -> str:
        """The user `token` proves ("" for no token: the state machine refuses
        what needs a user). Raises InvalidAuthToken."""
        if not token:
            return ""
        return self.tokens.resolve(token, self.wall_clock())

    def require_user(self, token: str) -> str:
        """A user proven by `token` (leases: any authenticated user)."""
        user = self.user_of(token)
        if not user:
            raise UserEmpty()
        return user

    def require_root(self, token: str) -> str:
        """`token`'s user may do everything (etcd's IsAdminPermitted)."""
        user = self.require_user(token)
        if not self._replica.sm.auth.is_root(user):
            raise PermissionDenied()
        return user

    def check_read(self, token: str, key: bytes, range_end: bytes) -> None:
        self._replica.sm.auth.check_read(self.user_of(token), key, range_end)

    def is_face(self, token: str) -> bool:
        """Whether `token` is the etcd face's own (constant-time compare)."""
        return hmac.compare_digest(token.encode(), self._face_token)

    def status(self) -> dict[str, Any]:
        """The status's "auth" section."""
        return {"enabled": self.enabled, "tokens": len(self.tokens), **self.refusals.counts}
