"""The auth requests of the KV API (etcd's Auth service), as values: the one
definition the faces build and the state machine executes.

Names follow etcd 3.4's Auth RPCs (AuthEnable, UserAdd, RoleGrantPermission ...)
and authpb's Permission (READ=0, WRITE=1, READWRITE=2). The model is etcd's
(docs/security.md): users with passwords and roles, roles with permissions on a
key or a key range ([key, range_end); etcd's prefix and from-key forms), the
`root` user and role (root may do everything), `auth enable` refused until the
root user exists and has the root role, and an auth revision that moves on
every change.

Who checks what:

* Every request in the log carries the name of the user it acts for
  (`Command.user`, "" for none). The node sets it from the request's token
  (node/auth_tokens.py) and refuses a command that names a user its token does
  not prove. The state machine checks the user's permissions against the auth
  state *as applied at that entry* (node/statemachine/auth_store.py), so a
  permission revoked by an earlier entry is honoured, as in etcd.
* Passwords never enter the log or a snapshot in clear: a node turns
  `UserAdd`/`UserChangePassword` with a `password` into the same request with
  `hashed` set (cluster/kv/passwords.py, a slow salted hash, off the actor
  thread) and `password` empty before proposing; the state machine refuses a
  logged one that still carries a password.
* `Authenticate` is checked by the node that receives it (the password against
  the applied hash, off the actor thread); with simple tokens it then proposes
  `AuthIssue`, whose application makes the token known to every member (the
  node keeps its clock: node/auth_tokens.py); with JWT the node signs the token
  itself and nothing is logged.

Read-only auth requests (AuthStatus, UserGet, UserList, RoleGet, RoleList) are
served like a linearizable Range (ReadIndex, then the applied state).
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Union

#: The user and role that may do everything (etcd's names).
ROOT = "root"


class PermType(IntEnum):
    """authpb.Permission.Type."""

    READ = 0
    WRITE = 1
    READWRITE = 2


@dataclass(frozen=True, slots=True)
class Permission:
    """A role's right on `key` (range_end "" = the key alone), etcd's forms:
    range_end b"\\0" = every key from `key` on."""

    perm_type: PermType
    key: bytes
    range_end: bytes = b""


# --- requests (logged unless noted) --------------------------------------------------


@dataclass(frozen=True, slots=True)
class AuthEnable:
    """Turn authentication on (refused until root exists with the root role)."""


@dataclass(frozen=True, slots=True)
class AuthDisable:
    """Turn authentication off (root only while it is on)."""


@dataclass(frozen=True, slots=True)
class AuthStatus:
    """Whether auth is on and the auth revision (read-only)."""


@dataclass(frozen=True, slots=True)
class Authenticate:
    """A token for `name` if `password` is right. Never logged: the receiving
    node checks the password and proposes `AuthIssue` (simple tokens) or signs
    a JWT itself."""

    name: str
    password: str


@dataclass(frozen=True, slots=True)
class AuthIssue:
    """Make simple token `token` valid for `name` on every member, from
    `issued_ms` (the proposer's wall clock, Unix ms: each member expires it after
    its TTL by its own clock, so a replayed old entry gives an expired token).
    Proposed by a node after checking a password; refused from clients."""

    name: str
    token: str
    issued_ms: int


@dataclass(frozen=True, slots=True)
class UserAdd:
    """Add a user. Clients send `password` (or `no_password`); the node
    replaces it with `hashed` before proposing."""

    name: str
    password: str = ""
    hashed: str = ""
    no_password: bool = False


@dataclass(frozen=True, slots=True)
class UserGet:
    """The roles of user `name` (read-only; a user may get itself)."""

    name: str


@dataclass(frozen=True, slots=True)
class UserList:
    """Every user name, sorted (read-only)."""


@dataclass(frozen=True, slots=True)
class UserDelete:
    name: str


@dataclass(frozen=True, slots=True)
class UserChangePassword:
    """As UserAdd: clients send `password`, the log holds `hashed`."""

    name: str
    password: str = ""
    hashed: str = ""


@dataclass(frozen=True, slots=True)
class UserGrantRole:
    user: str
    role: str


@dataclass(frozen=True, slots=True)
class UserRevokeRole:
    name: str
    role: str


@dataclass(frozen=True, slots=True)
class RoleAdd:
    name: str


@dataclass(frozen=True, slots=True)
class RoleGet:
    """The permissions of role `role` (read-only; a user may get its own roles)."""

    role: str


@dataclass(frozen=True, slots=True)
class RoleList:
    """Every role name, sorted (read-only)."""


@dataclass(frozen=True, slots=True)
class RoleDelete:
    role: str


@dataclass(frozen=True, slots=True)
class RoleGrantPermission:
    name: str
    perm: Permission


@dataclass(frozen=True, slots=True)
class RoleRevokePermission:
    """Remove the permission on exactly [key, range_end) from `role`."""

    role: str
    key: bytes
    range_end: bytes = b""


AuthRequest = Union[AuthEnable, AuthDisable, AuthStatus, Authenticate, AuthIssue, UserAdd, UserGet, UserList,
                    UserDelete, UserChangePassword, UserGrantRole, UserRevokeRole, RoleAdd, RoleGet, RoleList,
                    RoleDelete, RoleGrantPermission, RoleRevokePermission]

#: Served like a linearizable read: no log entry.
AUTH_READS = (AuthStatus, UserGet, UserList, RoleGet, RoleList)
#: Need password work on the receiving node before anything else.
PASSWORD_REQUESTS = (Authenticate, UserAdd, UserChangePassword)
AUTH_REQUESTS = (AuthEnable, AuthDisable, AuthStatus, Authenticate, AuthIssue, UserAdd, UserGet, UserList,
                 UserDelete, UserChangePassword, UserGrantRole, UserRevokeRole, RoleAdd, RoleGet, RoleList,
                 RoleDelete, RoleGrantPermission, RoleRevokePermission)


# --- results --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AuthDone:
    """The result of every auth change without a body (etcd's responses with a
    header only): the store revision, and the auth revision after it."""

    revision: int
    auth_revision: int


@dataclass(frozen=True, slots=True)
class AuthStatusResponse:
    revision: int
    enabled: bool
    auth_revision: int


@dataclass(frozen=True, slots=True)
class AuthenticateResponse:
    revision: int
    token: str


@dataclass(frozen=True, slots=True)
class UserGetResponse:
    revision: int
    roles: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class UserListResponse:
    revision: int
    users: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RoleGetResponse:
    revision: int
    perms: tuple[Permission, ...]


@dataclass(frozen=True, slots=True)
class RoleListResponse:
    revision: int
    roles: tuple[str, ...]


AuthResult = Union[AuthDone, AuthStatusResponse, AuthenticateResponse, UserGetResponse, UserListResponse,
                   RoleGetResponse, RoleListResponse]
