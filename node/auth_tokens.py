"""Auth tokens as this member knows them: etcd's simple tokens and JWTs.

Simple tokens (etcd's auth/simple_token.go) are random strings. A node that
checked a password proposes `AuthIssue(name, token, issued_ms)`; applying it
gives every member an ("issue", token, user, issued_ms) event
(`StateMachine.drain_auth_events`), and each member then keeps the token by its
*own* wall clock: valid for `ttl` seconds from `issued_ms`, and for `ttl`
seconds from its last use after that (etcd refreshes a simple token on every
use). So a token replayed from an old log entry is born expired, and a token
idle on one member may still live on another, as in etcd. A deleted user, or one
whose password changed, loses its tokens ("user-changed"); turning auth off or
on drops them all.

JWTs (etcd's auth/jwt.go, `[auth] token = "jwt"`) are signed by the node that
checked the password, with claims `username`, `revision` (the auth revision at
issue) and `exp`; every member verifies them with the key from the config, and
nothing is logged or replicated.

Pure and clock-injected: `now` is the caller's wall clock in seconds (Unix).
"""
from __future__ import annotations

import secrets
import string
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization

from cluster.kv.errors import InvalidAuthToken
from cluster.spec import AuthSpec

#: etcd's simple tokens: 16 random letters, ".", a per-node counter.
_TOKEN_LETTERS = string.ascii_letters
_TOKEN_PREFIX_LENGTH = 16


@dataclass(slots=True)
class _SimpleToken:
    user: str
    expires: float  # wall clock, seconds


class JwtKeys:
    """The signing and verification keys of `[auth] jwt_key` for one sign method:
    the secret's bytes for HS*, a PEM private key (and its public half) otherwise."""

    def __init__(self, key_file: Path, sign_method: str) -> None:
        data = key_file.read_bytes()
        self.algorithm = sign_method
        self.sign_key: Any
        self.verify_key: Any
        if sign_method.startswith("HS"):
            self.sign_key = self.verify_key = data.strip()
        else:
            private = serialization.load_pem_private_key(data, password=None)
            self.sign_key = private
            self.verify_key = private.public_key()


class TokenTable:
    """Resolves a request's token to the user it proves (`resolve`), keeps the
    simple tokens from the applied log's auth events (`apply`), and makes new
    tokens (`new_simple_token`, `sign`)."""

    def __init__(self, ttl_s: float, jwt_keys: JwtKeys | None = None) -> None:
        self.ttl = float(ttl_s)
        self.jwt = jwt_keys
        self._simple: dict[str, _SimpleToken] = {}
        self._counter = 0

    @classmethod
    def from_spec(cls, auth: AuthSpec, key_file: Path | None) -> TokenTable:
        """`key_file`: the resolved `jwt_key` (None for simple tokens)."""
        keys = JwtKeys(key_file, auth.jwt_sign_method) if auth.token == "jwt" and key_file is not None else None
        return cls(auth.token_ttl_s, keys)

    def __len__(self) -> int:
        return len(self._simple)

    # -- events from the applied log ------------------------------------------------------

    def apply(self, events: Iterable[tuple[Any, ...]]) -> None:
        """The state machine's auth events, in apply order."""
        for event in events:
            kind = event[0]
            if kind == "issue":
                _, token, user, issued_ms = event
                self._simple[token] = _SimpleToken(user, issued_ms / 1000 + self.ttl)
            elif kind == "user-changed":
                user = event[1]
                self._simple = {t: s for t, s in self._simple.items() if s.user != user}
            elif kind in ("enabled", "disabled"):
                self._simple.clear()

    def clear(self) -> None:
        """A snapshot replaced the state: tokens issued by entries it covers are
        not replayed (their holders authenticate again, as after an etcd restart)."""
        self._simple.clear()

    # -- resolving --------------------------------------------------------------------------

    def resolve(self, token: str, now: float) -> str:
        """The user `token` proves, at wall-clock time `now`; a simple token's life
        is extended by its use. Raises InvalidAuthToken."""
        if self.jwt is not None:
            return self._verify_jwt(token, now)
        entry = self._simple.get(token)
        if entry is None:
            raise InvalidAuthToken()
        if now >= entry.expires:
            del self._simple[token]
            raise InvalidAuthToken()
        entry.expires = max(entry.expires, now + self.ttl)
        return entry.user

    def expire(self, now: float) -> int:
        """Forget the simple tokens whose time is up (memory only: `resolve` checks
        the time anyway); how many went."""
        dead = [t for t, s in self._simple.items() if now >= s.expires]
        for token in dead:
            del self._simple[token]
        return len(dead)

    def _verify_jwt(self, token: str, now: float) -> str:
        assert self.jwt is not None
        try:
            claims = jwt.decode(token, self.jwt.verify_key, algorithms=[self.jwt.algorithm],
                                options={"verify_exp": False, "require": ["username", "exp"]})
        except jwt.PyJWTError:
            raise InvalidAuthToken() from None
        user, exp = claims.get("username"), claims.get("exp")
        if not isinstance(user, str) or not user or not isinstance(exp, (int, float)) or now >= exp:
            raise InvalidAuthToken()
        return user

    # -- making tokens ----------------------------------------------------------------------

    def new_simple_token(self) -> str:
        """A fresh simple token in etcd's form (16 random letters "." counter)."""
        self._counter += 1
        prefix = "".join(secrets.choice(_TOKEN_LETTERS) for _ in range(_TOKEN_PREFIX_LENGTH))
        return f"{prefix}.{self._counter}"

    def sign(self, user: str, auth_revision: int, now: float) -> str:
        """A JWT for `user` (etcd's claims), valid for the TTL from `now`."""
        assert self.jwt is not None, "simple tokens are issued through the log"
        claims = {"username": user, "revision": auth_revision, "exp": int(now + self.ttl)}
        return jwt.encode(claims, self.jwt.sign_key, algorithm=self.jwt.algorithm)
