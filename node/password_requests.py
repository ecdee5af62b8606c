"""The requests that carry a password: Authenticate, UserAdd, UserChangePassword.

Their slow part (verifying or hashing) runs on the password worker
(node/password_work.py); what follows runs on the actor thread:

* Authenticate: the password is checked against the *applied* user's hash. An
  unknown user, a user without a password, and a wrong password are all answered
  AuthFailed after the same work (a hash of a throwaway password stands in for
  the missing one), so the answer does not tell which users exist. Then a simple
  token is proposed as `AuthIssue` and answered once applied (every member
  learns it from the log), or a JWT is signed and answered at once. The etcd
  face's own token authenticates a TLS client certificate's CN without a
  password, and nothing else.
* UserAdd / UserChangePassword: the password is hashed and the request proposed
  with `hashed` set and `password` empty: the clear password never reaches the
  log, a snapshot, a log line or an error message.
"""
from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import replace

from cluster.kv import encode_command
from cluster.kv.auth import AuthenticateResponse, AuthIssue, Authenticate, UserAdd, UserChangePassword
from cluster.kv.errors import AuthError, AuthFailed, AuthNotEnabled
from cluster.protocol import ErrorCode, Reply
from node.answers import Answers
from node.auth_gate import AuthGate
from node.password_work import PasswordWork
from node.replica import Replica

#: (identity, request id, command bytes): propose and answer once applied.
Propose = Callable[[bytes, int, bytes], None]
Send = Callable[[bytes, Reply], None]
#: (identity, request id, error, what for the log): count and answer a refusal.
Refuse = Callable[[bytes, int, AuthError, str], None]


class PasswordRequests:
    def __init__(self, gate: AuthGate, replica: Replica, work: PasswordWork, answers: Answers, send: Send,
                 propose: Propose, refuse: Refuse, iterations: int, hash_password: Callable[[str, int], str],
                 verify_password: Callable[[str, str], bool]) -> None:
        self._gate = gate
        self._replica = replica
        self._work = work
        self._answers = answers
        self._send = send
        self._propose = propose
        self._refuse = refuse
        self._iterations = iterations
        self._hash = hash_password
        self._verify = verify_password
        self._stand_in = ""  # the hash a missing one is replaced by (made on the worker)

    # -- Authenticate ----------------------------------------------------------------------

    def authenticate(self, identity: bytes, request_id: int, token: str, request: Authenticate) -> None:
        gate = self._gate
        if not gate.enabled:
            self._send(identity, self._answers.result(request_id, AuthNotEnabled()))
            return
        user = self._replica.sm.auth.user(request.name)
        if request.password == "" and gate.is_face(token):
            # A TLS client certificate the face verified: its CN is the user.
            if user is None:
                self._refuse(identity, request_id, AuthFailed(), f"certificate CN {request.name!r}")
            else:
                self._issue(identity, request_id, request.name)
            return
        hashed = user.hashed if user is not None and not user.no_password else ""
        password, name = request.password, request.name

        def check() -> bool:
            if not hashed:
                self._verify(password, self._stand_in_hash())
                return False
            return self._verify(password, hashed)

        def then(ok: bool | Exception) -> None:
            if ok is True:
                self._issue(identity, request_id, name)
            else:
                self._refuse(identity, request_id, AuthFailed(), f"authenticate as {name!r}")

        self._submit(identity, request_id, check, then)

    def _stand_in_hash(self) -> str:
        """Worker thread: a hash as costly to verify as a real one."""
        if not self._stand_in:
            self._stand_in = self._hash(secrets.token_hex(16), self._iterations)
        return self._stand_in

    def _issue(self, identity: bytes, request_id: int, name: str) -> None:
        gate = self._gate
        tokens = gate.tokens
        now = gate.wall_clock()
        if tokens.jwt is not None:
            sm = self._replica.sm
            token = tokens.sign(name, sm.auth.revision, now)
            self._send(identity, self._answers.result(request_id, AuthenticateResponse(sm.revision, token)))
            return
        issue = AuthIssue(name, tokens.new_simple_token(), int(now * 1000))
        self._propose(identity, request_id, encode_command(issue))

    # -- UserAdd / UserChangePassword --------------------------------------------------

    def hash_then_propose(self, identity: bytes, request_id: int, request: UserAdd | UserChangePassword,
                          client_id: int, seq: int, user: str) -> None:
        """Propose `request` (acting for `user`) with its password hashed."""
        password, iterations = request.password, self._iterations
        cleared = replace(request, password="")

        def then(hashed: str | Exception) -> None:
            if isinstance(hashed, Exception):
                # The message could quote the password: say only what failed.
                self._send(identity, self._answers.error(request_id, ErrorCode.INVALID_REQUEST,
                                                         f"password hashing failed ({type(hashed).__name__})"))
                return
            self._propose(identity, request_id,
                          encode_command(replace(cleared, hashed=hashed), client_id, seq, user=user))

        self._submit(identity, request_id, lambda: self._hash(password, iterations), then)

    # -- shared ----------------------------------------------------------------------------

    def _submit(self, identity: bytes, request_id: int, compute: Callable[[], object],
                then: Callable[..., None]) -> None:
        if not self._work.submit(compute, then):
            self._send(identity, self._answers.error(request_id, ErrorCode.TOO_MANY_REQUESTS,
                                                     f"{len(self._work)} password checks already waiting"))
