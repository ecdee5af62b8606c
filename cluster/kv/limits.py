"""Size and count limits on requests, and the static checks that enforce them.

The limits are part of the replicated configuration: every member of a cluster
must use the same `Limits`, or replicas could disagree about which commands
fail. The checks are static (they depend on the request only, not on the
store), so a request that passes them cannot fail half-way through a Txn.

Two of them follow etcd 3.4's gRPC front door (etcdserver/api/v3rpc/key.go)
rule for rule, because etcd clients rely on which requests it refuses:
`max_txn_ops` is etcd's checkTxnRequest count and `DuplicateKey` its
checkIntervals rule (both described where they are checked).

Auth requests (cluster/kv/auth.py): names, passwords, hashes and tokens are
bounded, and a permission's key range must be one of etcd's forms (a key, a
non-empty [key, range_end), or from key on). Empty user and role names are
refused where etcd refuses them (UserEmpty, RoleEmpty), but by the state
machine (auth_store.py), after the admin check, in etcd's order: a non-root
user adding "" is told PermissionDenied, as by etcd.
"""
from __future__ import annotations

from dataclasses import dataclass

from cluster.kv.auth import (
    Authenticate,
    AuthIssue,
    Permission,
    RoleAdd,
    RoleDelete,
    RoleGet,
    RoleGrantPermission,
    RoleRevokePermission,
    UserAdd,
    UserChangePassword,
    UserDelete,
    UserGet,
    UserGrantRole,
    UserRevokeRole,
)
from cluster.kv.keys import ALL_KEYS_END
from cluster.kv.requests import (
    CloseSession,
    Compact,
    Compare,
    DeleteRange,
    LeaseGrant,
    Op,
    OpenSession,
    Put,
    Range,
    Request,
    Txn,
)
from cluster.kv.errors import DuplicateKey, InvalidCommand, LeaseProvided, LimitExceeded, ValueProvided


@dataclass(frozen=True, slots=True)
class Limits:
    """Limits on requests and on the session table (names appear in errors)."""

    max_key_bytes: int = 8 * 1024
    # etcd's default request limit is 1.5 MiB; a value must fit in a log entry.
    max_value_bytes: int = 1024 * 1024
    max_txn_ops: int = 128  # etcd's --max-txn-ops default; counted as etcd does (_check_txn)
    max_txn_depth: int = 4  # nesting of Txns inside Txns
    max_sessions: int = 10_000  # least recently used sessions are evicted beyond this
    # A session idle for this many log entries expires (see sessions.py).
    session_ttl_entries: int = 1_000_000
    # etcd's MaxLeaseTTL (seconds), and a bound on live leases (etcd has none).
    max_lease_ttl: int = 9_000_000_000
    max_leases: int = 100_000
    # Auth (etcd has no bounds): user and role names; passwords, their hashes
    # and simple tokens.
    max_name_chars: int = 256
    max_secret_chars: int = 4096

    def __post_init__(self) -> None:
        for name in self.__dataclass_fields__:
            if getattr(self, name) < 1:
                raise ValueError(f"Limits.{name} must be >= 1, got {getattr(self, name)}")


def check_request(request: Request, limits: Limits) -> None:
    """Raise InvalidCommand or LimitExceeded if `request` breaks a rule that
    does not depend on the state of the store."""
    if type(request) is Put:  # the hot path, ahead of the general match
        if not request.key or len(request.key) > limits.max_key_bytes:
            _check_key(request.key, limits)
        if request.ignore_value or request.ignore_lease:
            _check_ignore(request)
        if len(request.value) > limits.max_value_bytes:
            raise LimitExceeded("max_value_bytes", len(request.value), limits.max_value_bytes)
        return
    match request:
        case Put(key, value):
            _check_key(key, limits)
            _check_ignore(request)
            if len(value) > limits.max_value_bytes:
                raise LimitExceeded("max_value_bytes", len(value), limits.max_value_bytes)
        case Range(key, range_end) | DeleteRange(key, range_end):
            _check_key(key, limits)
            if len(range_end) > limits.max_key_bytes + 1:
                raise LimitExceeded("max_key_bytes", len(range_end), limits.max_key_bytes)
        case Txn(_, success, failure):
            _check_txn(request, limits, depth=1, outer_ops=0)
            # etcd checks the overlaps after everything else, "to avoid
            # quadratic blowup" on requests that fail anyway.
            _check_intervals(success)
            _check_intervals(failure)
        case LeaseGrant(ttl):
            if ttl < 1:
                raise InvalidCommand(f"lease TTL must be at least 1 second, got {ttl}")
            if ttl > limits.max_lease_ttl:
                raise LimitExceeded("max_lease_ttl", ttl, limits.max_lease_ttl)
        case _:
            _check_auth(request, limits)


def _check_auth(request: Request, limits: Limits) -> None:
    """The static rules of the auth requests (none for the others)."""
    match request:
        case UserAdd(name, password, hashed) | UserChangePassword(name, password, hashed):
            _check_name(name, limits)
            _check_secret(password, limits)
            _check_secret(hashed, limits)
        case Authenticate(name, password):
            _check_name(name, limits)
            _check_secret(password, limits)
        case AuthIssue(name, token):
            _check_name(name, limits)
            _check_secret(token, limits)
            if not token:
                raise InvalidCommand("AuthIssue needs a token")
        case UserGet(name) | UserDelete(name) | RoleAdd(name) | RoleGet(name) | RoleDelete(name):
            _check_name(name, limits)
        case UserGrantRole(user, role) | UserRevokeRole(user, role):
            _check_name(user, limits)
            _check_name(role, limits)
        case RoleGrantPermission(name, perm):
            _check_name(name, limits)
            _check_permission(perm, limits)
        case RoleRevokePermission(role, key, range_end):
            _check_name(role, limits)
            _check_key(key, limits)
            _check_range_end(range_end, limits)
        case _:
            pass


def _check_name(name: str, limits: Limits) -> None:
    if len(name) > limits.max_name_chars:
        raise LimitExceeded("max_name_chars", len(name), limits.max_name_chars)


def _check_secret(secret: str, limits: Limits) -> None:
    if len(secret) > limits.max_secret_chars:
        raise LimitExceeded("max_secret_chars", len(secret), limits.max_secret_chars)


def _check_permission(perm: Permission, limits: Limits) -> None:
    """A permission's range must hold a key: etcd 3.4 stores a malformed one
    (an empty key, or range_end <= key) as given, and it then matches nothing or,
    for the empty key, misbehaves in its interval tree; jangada refuses it."""
    _check_key(perm.key, limits)
    _check_range_end(perm.range_end, limits)
    if perm.range_end and perm.range_end != ALL_KEYS_END and perm.range_end <= perm.key:
        raise InvalidCommand(f"permission range_end {perm.range_end!r:.40} is not after its key {perm.key!r:.40}")


def _check_range_end(range_end: bytes, limits: Limits) -> None:
    if len(range_end) > limits.max_key_bytes + 1:
        raise LimitExceeded("max_key_bytes", len(range_end), limits.max_key_bytes)


def _check_ignore(put: Put) -> None:
    """etcd's checkPutRequest: ignore_value and ignore_lease keep what the key
    has, so the put must not carry a value or a lease of its own."""
    if put.ignore_value and put.value:
        raise ValueProvided()
    if put.ignore_lease and put.lease:
        raise LeaseProvided()


def _check_txn(txn: Txn, limits: Limits, depth: int, outer_ops: int) -> None:
    """Check a Txn and its nested Txns.

    The op count is etcd's checkTxnRequest: a Txn's count is the largest of
    its number of compares, of success ops and of failure ops (not their sum,
    and not counting inside nested Txns); a nested Txn gets what its parents'
    counts leave of `max_txn_ops`. So along every chain of nested Txns the
    counts add up to at most `max_txn_ops` (`outer_ops` is the sum above)."""
    if depth > limits.max_txn_depth:
        raise LimitExceeded("max_txn_depth", depth, limits.max_txn_depth)
    ops = outer_ops + max(len(txn.compares), len(txn.success), len(txn.failure))
    if ops > limits.max_txn_ops:
        raise LimitExceeded("max_txn_ops", ops, limits.max_txn_ops)
    for compare in txn.compares:
        _check_compare(compare, limits)
    for op in txn.success + txn.failure:
        if isinstance(op, Txn):
            _check_txn(op, limits, depth + 1, ops)
        else:
            check_request(op, limits)


def _check_intervals(ops: tuple[Op, ...]) -> tuple[set[bytes], list[tuple[bytes, bytes]]]:
    """etcd's checkIntervals over one branch: raise DuplicateKey if its writes
    overlap; else return the keys it puts and the ranges it deletes, nested
    Txns included, for the level above.

    The rule, exactly as etcd 3.4 applies it (clients see its quirks):
    - a put conflicts with another put of the same key, and with a delete of a
      range holding the key, at the same level or in a nested Txn;
    - the two branches of one nested Txn may put the same key (only one runs);
    - deletes never conflict with deletes;
    - a nested Txn's puts are checked against this level's deletes and those
      of the nested Txns before it, not after it (etcd's order);
    - a delete's range is [key, range_end) compared as byte strings (one key
      if range_end is empty); so a delete with range_end ALL_KEYS_END ("from
      key on" everywhere else) conflicts with no put at all.
    """
    deletes = [(op.key, op.range_end or op.key + b"\0") for op in ops if type(op) is DeleteRange]
    puts: set[bytes] = set()
    for op in ops:
        if type(op) is not Txn:
            continue
        puts_then, deletes_then = _check_intervals(op.success)
        puts_else, deletes_else = _check_intervals(op.failure)
        for key in puts_then:
            if key in puts or _deleted(deletes, key):
                raise DuplicateKey()
            puts.add(key)
        for key in puts_else:
            if (key in puts and key not in puts_then) or _deleted(deletes, key):
                raise DuplicateKey()
            puts.add(key)
        # (etcd's union leaves out ranges ending at "\0": they hold no key anyway.)
        deletes += deletes_then + deletes_else
    for op in ops:
        if type(op) is Put:
            if op.key in puts or _deleted(deletes, op.key):
                raise DuplicateKey()
            puts.add(op.key)
    return puts, deletes


def _deleted(deletes: list[tuple[bytes, bytes]], key: bytes) -> bool:
    """Whether a range in `deletes` holds `key`."""
    return any(start <= key < end for start, end in deletes)


def _check_compare(compare: Compare, limits: Limits) -> None:
    _check_key(compare.key, limits)
    if len(compare.range_end) > limits.max_key_bytes + 1:
        raise LimitExceeded("max_key_bytes", len(compare.range_end), limits.max_key_bytes)
    if isinstance(compare.operand, bytes) and len(compare.operand) > limits.max_value_bytes:
        raise LimitExceeded("max_value_bytes", len(compare.operand), limits.max_value_bytes)


def _check_key(key: bytes, limits: Limits) -> None:
    if not key:
        raise InvalidCommand("key is empty")
    if len(key) > limits.max_key_bytes:
        raise LimitExceeded("max_key_bytes", len(key), limits.max_key_bytes)
