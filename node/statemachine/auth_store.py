"""The replicated auth state (etcd 3.4's auth/store.go rules): users, roles,
permissions, whether auth is enabled, and the auth revision.

What etcd does, and so does this:

* Users have a password hash (cluster/kv/passwords.py; made by the node, never
  here: the state machine only stores it), sorted roles and `no_password`.
  Roles have permissions on a key, a range [key, range_end), or every key from
  `key` on (range_end b"\\0"), each READ, WRITE or READWRITE.
* The `root` user may do everything when it has the `root` role (which need
  not exist as a role object: etcd lets `root` be granted without it).
  `AuthEnable` is refused until root exists (RootUserNotExist) with the root
  role (RootRoleNotExist); while enabled, root cannot be deleted nor lose the
  root role, and the root role cannot be deleted (InvalidAuthMgmt).
* The auth revision starts at 1 (etcd's NewAuthStore commits one) and moves on
  every change: user/role adds, deletes, password changes, grants, revokes,
  AuthDisable. As in etcd, AuthEnable does not move it, and a grant of a role
  the user already has changes nothing (success, same revision).
* A key check needs the whole requested range inside the union of the
  user's permissions of that kind (READWRITE counts for both): etcd's
  unifiedRangePermissions and IntervalTree.Contains. A single key needs one
  permission holding it. With auth disabled every check passes.
* Admin requests (etcd's needAdminPermission) need a user with the root role
  while enabled: "" is UserEmpty, an unknown user UserNotFound, anyone else
  PermissionDenied. A user may get itself (UserGet) and its own roles (RoleGet).

Differences from etcd 3.4 (documented, all stricter or equal):
* the auth revision a token carries (ErrAuthOldRevision) is not checked here:
  Command has no auth revision; the node checks JWT revisions (auth_tokens.py);
* permissions with an empty key or a range_end not after the key are refused
  statically (cluster/kv/limits.py) where etcd stores them;
* granting a permission that exists with the same [key, range_end) updates its
  type, as etcd, but found exactly (etcd finds by key and misses duplicates).

Derived state (each user's merged intervals) is a cache rebuilt lazily after
any change, as etcd's refreshRangePermCache; only users, roles, `enabled` and
`revision` are state (compared, snapshotted, hashed).
"""
from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass, replace

from cluster.kv.auth import (
    ROOT,
    AuthDisable,
    AuthDone,
    AuthEnable,
    AuthIssue,
    AuthResult,
    AuthStatus,
    AuthStatusResponse,
    Authenticate,
    AuthenticateResponse,
    Permission,
    PermType,
    RoleAdd,
    RoleDelete,
    RoleGet,
    RoleGetResponse,
    RoleGrantPermission,
    RoleList,
    RoleListResponse,
    RoleRevokePermission,
    UserAdd,
    UserChangePassword,
    UserDelete,
    UserGet,
    UserGetResponse,
    UserGrantRole,
    UserList,
    UserListResponse,
    UserRevokeRole,
)
from cluster.kv.errors import (
    AuthFailed,
    AuthNotEnabled,
    InvalidAuthMgmt,
    InvalidCommand,
    PermissionDenied,
    PermissionNotGranted,
    RoleAlreadyExists,
    RoleEmpty,
    RoleNotFound,
    RoleNotGranted,
    RootRoleNotExist,
    RootUserNotExist,
    UserAlreadyExists,
    UserEmpty,
    UserNotFound,
)
from cluster.kv.keys import ALL_KEYS_END

#: The auth revision of a fresh store (etcd commits revision 1 on creation).
FIRST_REVISION = 1

#: Requests that need the root role while auth is enabled (needAdminPermission).
ADMIN_REQUESTS = (AuthEnable, AuthDisable, UserAdd, UserDelete, UserChangePassword, UserGrantRole,
                  UserRevokeRole, RoleAdd, RoleGrantPermission, RoleRevokePermission, RoleDelete, UserList,
                  RoleList)

#: Auth events for the node (see StateMachine.drain_auth_events).
AuthEvent = tuple


@dataclass(frozen=True, slots=True)
class User:
    name: str
    hashed: str  # cluster/kv/passwords.py's form; "" for a no-password user
    roles: tuple[str, ...] = ()  # sorted, as etcd keeps them
    no_password: bool = False


@dataclass(frozen=True, slots=True)
class Role:
    name: str
    perms: tuple[Permission, ...] = ()  # sorted by (key, range_end)


# An interval of keys [begin, end); end None = no end (etcd's "\0" range_end).
_Interval = tuple[bytes, bytes | None]


class _Merged:
    """A user's permissions of one kind as disjoint, non-adjacent intervals
    sorted by begin: a range is permitted iff one of them covers it."""

    __slots__ = ("begins", "ends")

    def __init__(self, intervals: list[_Interval]) -> None:
        merged: list[list] = []
        for begin, end in sorted(intervals, key=lambda ivl: ivl[0]):
            if merged and (merged[-1][1] is None or merged[-1][1] >= begin):
                last_end = merged[-1][1]
                if last_end is not None and (end is None or end > last_end):
                    merged[-1][1] = end
            else:
                merged.append([begin, end])
        self.begins = [begin for begin, _ in merged]
        self.ends = [end for _, end in merged]

    def covers(self, key: bytes, range_end: bytes) -> bool:
        """Whether [key, range_end) (the cluster.kv.keys convention) is inside."""
        at = bisect_right(self.begins, key) - 1
        if at < 0:
            return False
        end = self.ends[at]
        if end is not None and end <= key:
            return False  # the interval starting at or before key ends before it
        if not range_end:
            return True
        if range_end == ALL_KEYS_END:
            return end is None
        return end is None or range_end <= end


def _interval(perm: Permission) -> _Interval:
    if not perm.range_end:
        return perm.key, perm.key + b"\0"
    if perm.range_end == ALL_KEYS_END:
        return perm.key, None
    return perm.key, perm.range_end


class AuthStore:
    """Users, roles, `enabled` and `revision`; the checks and the changes.

    `enabled` is a plain attribute: the state machine's hot path reads it once
    per command and does nothing more when it is False."""

    def __init__(self) -> None:
        self.enabled = False
        self.revision = FIRST_REVISION
        self._users: dict[str, User] = {}
        self._roles: dict[str, Role] = {}
        self._cache: dict[str, tuple[_Merged, _Merged]] = {}
        self._events: list[AuthEvent] = []

    # --- reading ---------------------------------------------------------------------

    def user(self, name: str) -> User | None:
        return self._users.get(name)

    def role(self, name: str) -> Role | None:
        return self._roles.get(name)

    def users(self) -> list[User]:
        """Every user, by name."""
        return [self._users[name] for name in sorted(self._users)]

    def roles(self) -> list[Role]:
        """Every role, by name."""
        return [self._roles[name] for name in sorted(self._roles)]

    def is_root(self, name: str) -> bool:
        """Whether `name` is a user with the root role (may do everything)."""
        user = self._users.get(name)
        return user is not None and ROOT in user.roles

    # --- checks (no-ops while disabled) --------------------------------------------------

    def check_admin(self, name: str) -> None:
        """etcd's IsAdminPermitted."""
        if not self.enabled:
            return
        if not name:
            raise UserEmpty()
        user = self._users.get(name)
        if user is None:
            raise UserNotFound()
        if ROOT not in user.roles:
            raise PermissionDenied()

    def check_read(self, name: str, key: bytes, range_end: bytes = b"") -> None:
        if self.enabled:
            self._check(name, key, range_end, 0)

    def check_write(self, name: str, key: bytes, range_end: bytes = b"") -> None:
        if self.enabled:
            self._check(name, key, range_end, 1)

    def check_user(self, name: str) -> None:
        """A command that touches no key still needs a user while enabled."""
        if self.enabled and not name:
            raise UserEmpty()

    def _check(self, name: str, key: bytes, range_end: bytes, kind: int) -> None:
        """etcd's isOpPermitted (kind 0 read, 1 write)."""
        if not name:
            raise UserEmpty()
        user = self._users.get(name)
        if user is None:
            raise PermissionDenied()
        if ROOT in user.roles:
            return
        merged = self._cache.get(name)
        if merged is None:
            merged = self._cache[name] = self._merge(user)
        if not merged[kind].covers(key, range_end):
            raise PermissionDenied()

    def _merge(self, user: User) -> tuple[_Merged, _Merged]:
        reads: list[_Interval] = []
        writes: list[_Interval] = []
        for role_name in user.roles:
            role = self._roles.get(role_name)
            for perm in role.perms if role is not None else ():
                if perm.perm_type != PermType.WRITE:
                    reads.append(_interval(perm))
                if perm.perm_type != PermType.READ:
                    writes.append(_interval(perm))
        return _Merged(reads), _Merged(writes)

    # --- requests ------------------------------------------------------------------------

    def read(self, name: str, request: object, store_revision: int) -> AuthResult:
        """Answer a read-only auth request (cluster.kv.auth.AUTH_READS) for
        user `name`; raises the AuthError."""
        match request:
            case AuthStatus():
                return AuthStatusResponse(store_revision, self.enabled, self.revision)
            case UserGet(user_name):
                if user_name != name:
                    self.check_admin(name)
                user = self._users.get(user_name)
                if user is None:
                    raise UserNotFound()
                return UserGetResponse(store_revision, user.roles)
            case RoleGet(role_name):
                caller = self._users.get(name)
                if caller is None or role_name not in caller.roles:
                    self.check_admin(name)
                role = self._roles.get(role_name)
                if role is None:
                    raise RoleNotFound()
                return RoleGetResponse(store_revision, role.perms)
            case UserList():
                self.check_admin(name)
                return UserListResponse(store_revision, tuple(sorted(self._users)))
            case RoleList():
                self.check_admin(name)
                return RoleListResponse(store_revision, tuple(sorted(self._roles)))
        raise InvalidCommand(f"{type(request).__name__} is not an auth read")

    def apply(self, name: str, request: object, store_revision: int) -> AuthResult:
        """Apply a logged auth request on behalf of user `name`; raises the
        AuthError (or InvalidCommand) it fails with, changing nothing then."""
        if isinstance(request, (UserAdd, UserChangePassword)) and request.password and not (
                isinstance(request, UserAdd) and request.no_password):
            raise InvalidCommand("a logged password must be hashed (the node hashes it before proposing)")
        if isinstance(request, Authenticate):
            raise InvalidCommand("Authenticate is answered by a node, never logged")
        if isinstance(request, ADMIN_REQUESTS):
            self.check_admin(name)
        if isinstance(request, (AuthStatus, UserGet, RoleGet, UserList, RoleList)):
            return self.read(name, request, store_revision)
        if isinstance(request, AuthIssue):
            return self._issue(request, store_revision)
        changed = self._change(request)
        if changed:
            self.revision += 1
            self._cache.clear()
        return AuthDone(store_revision, self.revision)

    def _issue(self, request: AuthIssue, store_revision: int) -> AuthenticateResponse:
        if not self.enabled:
            raise AuthNotEnabled()
        if request.name not in self._users:
            raise AuthFailed()
        self._events.append(("issue", request.token, request.name, request.issued_ms))
        return AuthenticateResponse(store_revision, request.token)

    def _change(self, request: object) -> bool:
        """Make the change; return whether it moves the auth revision."""
        users, roles = self._users, self._roles
        match request:
            case AuthEnable():
                if self.enabled:
                    return False
                root = users.get(ROOT)
                if root is None:
                    raise RootUserNotExist()
                if ROOT not in root.roles:
                    raise RootRoleNotExist()
                self.enabled = True
                self._events.append(("enabled",))
                return False  # etcd's AuthEnable keeps the revision
            case AuthDisable():
                if not self.enabled:
                    return False
                self.enabled = False
                self._events.append(("disabled",))
                return True
            case UserAdd(user_name, _, hashed, no_password):
                if not user_name:
                    raise UserEmpty()
                if user_name in users:
                    raise UserAlreadyExists()
                users[user_name] = User(user_name, "" if no_password else hashed, (), no_password)
                return True
            case UserDelete(user_name):
                if self.enabled and user_name == ROOT:
                    raise InvalidAuthMgmt()
                if users.pop(user_name, None) is None:
                    raise UserNotFound()
                self._events.append(("user-changed", user_name))
                return True
            case UserChangePassword(user_name, _, hashed):
                user = users.get(user_name)
                if user is None:
                    raise UserNotFound()
                users[user_name] = replace(user, hashed=hashed)
                self._events.append(("user-changed", user_name))
                return True
            case UserGrantRole(user_name, role_name):
                user = users.get(user_name)
                if user is None:
                    raise UserNotFound()
                if role_name != ROOT and role_name not in roles:
                    raise RoleNotFound()
                if role_name in user.roles:
                    return False  # etcd: already granted is a success that changes nothing
                users[user_name] = replace(user, roles=tuple(sorted(user.roles + (role_name,))))
                return True
            case UserRevokeRole(user_name, role_name):
                if self.enabled and user_name == ROOT and role_name == ROOT:
                    raise InvalidAuthMgmt()
                user = users.get(user_name)
                if user is None:
                    raise UserNotFound()
                if role_name not in user.roles:
                    raise RoleNotGranted()
                users[user_name] = replace(user, roles=tuple(r for r in user.roles if r != role_name))
                return True
            case RoleAdd(role_name):
                if not role_name:
                    raise RoleEmpty()
                if role_name in roles:
                    raise RoleAlreadyExists()
                roles[role_name] = Role(role_name)
                return True
            case RoleDelete(role_name):
                if self.enabled and role_name == ROOT:
                    raise InvalidAuthMgmt()
                if roles.pop(role_name, None) is None:
                    raise RoleNotFound()
                for user in list(users.values()):
                    if role_name in user.roles:
                        users[user.name] = replace(user, roles=tuple(r for r in user.roles if r != role_name))
                return True
            case RoleGrantPermission(role_name, perm):
                role = roles.get(role_name)
                if role is None:
                    raise RoleNotFound()
                kept = tuple(p for p in role.perms if (p.key, p.range_end) != (perm.key, perm.range_end))
                perms = sorted(kept + (Permission(PermType(perm.perm_type), perm.key, perm.range_end),),
                               key=lambda p: (p.key, p.range_end))
                roles[role_name] = Role(role_name, tuple(perms))
                return True
            case RoleRevokePermission(role_name, key, range_end):
                role = roles.get(role_name)
                if role is None:
                    raise RoleNotFound()
                kept = tuple(p for p in role.perms if (p.key, p.range_end) != (key, range_end))
                if len(kept) == len(role.perms):
                    raise PermissionNotGranted()
                roles[role_name] = Role(role_name, kept)
                return True
        raise InvalidCommand(f"{type(request).__name__} is not a logged auth request")

    # --- the node's outbox, snapshots, equality -----------------------------------------

    def drain_events(self) -> list[AuthEvent]:
        events, self._events = self._events, []
        return events

    def load(self, enabled: bool, revision: int, users: Iterable[User], roles: Iterable[Role]) -> None:
        """Fill an empty store from a snapshot."""
        self.enabled = enabled
        self.revision = revision
        self._users = {user.name: user for user in users}
        self._roles = {role.name: role for role in roles}
        self._cache.clear()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, AuthStore):
            return NotImplemented
        return (self.enabled == other.enabled and self.revision == other.revision
                and self._users == other._users and self._roles == other._roles)

    __hash__ = None  # type: ignore[assignment]  # mutable
