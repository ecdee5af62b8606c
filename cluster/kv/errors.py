"""Expected outcomes of a command, as typed errors that format their own message
(the KV API's error hierarchy, shared by the state machine and the client).

`StateMachine.apply` never raises these out: command bytes come from clients, so
a bad command is an answer (the error is *returned* as the command's result),
not a crash. Broken invariants of the state machine itself raise AssertionError.

Every error is a value: `args` holds its fields (ints and strings only), two
errors are equal when their type and fields are, and `ERROR_TYPES` maps the
stable `tag` to the class so results (errors included) can be encoded in the
session table of a snapshot and sent to clients.
"""
from __future__ import annotations

from typing import ClassVar


class KvError(Exception):
    """Base of the expected-outcome hierarchy; `tag` is stable on the wire."""

    tag: ClassVar[int] = 0

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.args == other.args

    def __hash__(self) -> int:
        return hash((type(self), self.args))

    def __repr__(self) -> str:
        return f"{type(self).__name__}{self.args!r}"


class InvalidCommand(KvError):
    """The command bytes are malformed or the request makes no sense."""

    tag = 1

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    def __str__(self) -> str:
        return f"invalid command: {self.reason}"


class ResultDecodeError(InvalidCommand):
    """Result bytes that do not follow the format: a node bug, a foreign server
    or a corrupt snapshot. Raised by `decode_result`, never returned as a
    result; an InvalidCommand so that whoever reads results back (a snapshot's
    session table) treats it as any other malformed bytes."""

    def __str__(self) -> str:
        return f"malformed result: {self.reason}"


class LimitExceeded(KvError):
    """A size or count is over one of the configured `Limits` (named by `limit`)."""

    tag = 2

    def __init__(self, limit: str, size: int, maximum: int) -> None:
        super().__init__(limit, size, maximum)
        self.limit = limit
        self.size = size
        self.maximum = maximum

    def __str__(self) -> str:
        return f"limit exceeded: {self.size} is over {self.limit}={self.maximum}"


class Compacted(KvError):
    """The revision asked for is below the compact revision: its history is gone."""

    tag = 3

    def __init__(self, revision: int, compact_revision: int) -> None:
        super().__init__(revision, compact_revision)
        self.revision = revision
        self.compact_revision = compact_revision

    def __str__(self) -> str:
        return (
            f"revision {self.revision} has been compacted "
            f"(compact revision is {self.compact_revision})"
        )


class FutureRevision(KvError):
    """The revision asked for is above the current revision."""

    tag = 4

    def __init__(self, revision: int, current_revision: int) -> None:
        super().__init__(revision, current_revision)
        self.revision = revision
        self.current_revision = current_revision

    def __str__(self) -> str:
        return (
            f"revision {self.revision} is a future revision "
            f"(current revision is {self.current_revision})"
        )


class SessionExpired(KvError):
    """The client session is unknown: never opened, closed, or expired. The
    outcome of the client's outstanding write is unknown; it must open a new
    session (Raft thesis §6.3)."""

    tag = 5

    def __init__(self, client_id: int) -> None:
        super().__init__(client_id)
        self.client_id = client_id

    def __str__(self) -> str:
        return f"session {self.client_id} is unknown or expired"


class StaleSequence(KvError):
    """A command older than the session's last applied one: its result is gone
    (only the last result is kept; a session has one write outstanding)."""

    tag = 6

    def __init__(self, client_id: int, seq: int, last_seq: int) -> None:
        super().__init__(client_id, seq, last_seq)
        self.client_id = client_id
        self.seq = seq
        self.last_seq = last_seq

    def __str__(self) -> str:
        return (
            f"session {self.client_id}: sequence {self.seq} is older than "
            f"the last applied sequence {self.last_seq}"
        )


class LeaseNotFound(KvError):
    """A request names a lease that does not exist (never granted, revoked or
    expired)."""

    tag = 7

    def __init__(self, lease: int) -> None:
        super().__init__(lease)
        self.lease = lease

    def __str__(self) -> str:
        return f"lease {self.lease:x} not found"  # hex, as lease ids are printed and typed


class SnapshotCorrupt(KvError):
    """A snapshot stream cannot be restored: truncated, reordered or garbled."""

    tag = 8

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    def __str__(self) -> str:
        return f"corrupt snapshot: {self.reason}"


class LeaseExists(KvError):
    """A grant asks for a lease id that is already in use."""

    tag = 9

    def __init__(self, lease: int) -> None:
        super().__init__(lease)
        self.lease = lease

    def __str__(self) -> str:
        return f"lease {self.lease:x} already exists"


class KeyNotFound(KvError):
    """A put with ignore_value or ignore_lease names a key that does not exist
    (etcd's "key not found"): there is no value or lease to keep."""

    tag = 10

    def __str__(self) -> str:
        return "key not found"


class ValueProvided(InvalidCommand):
    """A put with ignore_value also carries a value (etcd's "value is provided")."""

    tag = 11

    def __init__(self) -> None:
        KvError.__init__(self)  # no fields: the error says it all
        self.reason = "value is provided"


class LeaseProvided(InvalidCommand):
    """A put with ignore_lease also names a lease (etcd's "lease is provided")."""

    tag = 12

    def __init__(self) -> None:
        KvError.__init__(self)
        self.reason = "lease is provided"


class DuplicateKey(InvalidCommand):
    """A Txn branch writes one key twice, or puts a key it also deletes
    (etcd's "duplicate key given in txn request"; the rule is in limits.py)."""

    tag = 13

    def __init__(self) -> None:
        KvError.__init__(self)
        self.reason = "duplicate key given in txn request"


class EtcdMessageError(KvError):
    """An outcome whose message is etcd's, word for word (`message`), so every face
    can answer with it. No fields."""

    message: ClassVar[str] = ""

    def __init__(self) -> None:
        KvError.__init__(self)

    def __str__(self) -> str:
        return self.message


class AuthError(EtcdMessageError):
    """An auth outcome (etcd's auth errors)."""


class AuthNotEnabled(AuthError):
    tag = 20
    message = "etcdserver: authentication is not enabled"


class AuthFailed(AuthError):
    """Unknown user or wrong password (one message for both, as etcd)."""

    tag = 21
    message = "etcdserver: authentication failed, invalid user ID or password"


class InvalidAuthToken(AuthError):
    """A token that is unknown, expired, malformed, or not this user's."""

    tag = 22
    message = "etcdserver: invalid auth token"


class PermissionDenied(AuthError):
    tag = 23
    message = "etcdserver: permission denied"


class UserEmpty(AuthError):
    """Auth is enabled and the request names no user (no token)."""

    tag = 24
    message = "etcdserver: user name is empty"


class UserAlreadyExists(AuthError):
    tag = 25
    message = "etcdserver: user name already exists"


class UserNotFound(AuthError):
    tag = 26
    message = "etcdserver: user name not found"


class RoleAlreadyExists(AuthError):
    tag = 27
    message = "etcdserver: role name already exists"


class RoleNotFound(AuthError):
    tag = 28
    message = "etcdserver: role name not found"


class RoleEmpty(AuthError):
    tag = 29
    message = "etcdserver: role name is empty"


class RoleNotGranted(AuthError):
    tag = 30
    message = "etcdserver: role is not granted to the user"


class PermissionNotGranted(AuthError):
    tag = 31
    message = "etcdserver: permission is not granted to the role"


class RootUserNotExist(AuthError):
    tag = 32
    message = "etcdserver: root user does not exist"


class RootRoleNotExist(AuthError):
    tag = 33
    message = "etcdserver: root user does not have root role"


class InvalidAuthMgmt(AuthError):
    """e.g. revoking the root role from root, or deleting root, while auth is on."""

    tag = 34
    message = "etcdserver: invalid auth management"


class AuthOldRevision(AuthError):
    tag = 35
    message = "etcdserver: revision of auth store is old"


AUTH_ERRORS: tuple[type[AuthError], ...] = (
    AuthNotEnabled, AuthFailed, InvalidAuthToken, PermissionDenied, UserEmpty, UserAlreadyExists,
    UserNotFound, RoleAlreadyExists, RoleNotFound, RoleEmpty, RoleNotGranted, PermissionNotGranted,
    RootUserNotExist, RootRoleNotExist, InvalidAuthMgmt, AuthOldRevision,
)


class AlarmError(EtcdMessageError):
    """A request refused while an alarm is raised (cluster/kv/alarms.py)."""


class NoSpace(AlarmError):
    """A NOSPACE alarm is raised: the store is over its quota."""

    tag = 40
    message = "etcdserver: mvcc: database space exceeded"


class Corrupt(AlarmError):
    """A CORRUPT alarm is raised: a member's state diverged."""

    tag = 41
    message = "etcdserver: corrupt cluster"


ERROR_TYPES: dict[int, type[KvError]] = {
    cls.tag: cls
    for cls in (
        InvalidCommand,
        LimitExceeded,
        Compacted,
        FutureRevision,
        SessionExpired,
        StaleSequence,
        LeaseNotFound,
        SnapshotCorrupt,
        LeaseExists,
        KeyNotFound,
        ValueProvided,
        LeaseProvided,
        DuplicateKey,
        *AUTH_ERRORS,
        NoSpace,
        Corrupt,
    )
}
