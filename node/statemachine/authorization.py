"""Which permissions a key-value command needs (etcd 3.4's authApplierV3,
etcdserver/apply_auth.go), checked at apply time against the auth state of
that log entry, so a revoke applied by an earlier entry is honoured.

Called only while auth is enabled (the state machine's hot path checks
`AuthStore.enabled` and skips this). The rules, etcd's:

* Put: WRITE on the key; if it names a lease, WRITE on every key already
  attached to that lease (checkLeasePuts: whoever could not revoke the lease
  must not attach keys to it); READ on the key with prev_kv.
* Range: READ on its range. DeleteRange: WRITE on its range (+ READ with prev_kv).
* Txn: READ on every compare's range, and every op by the rules above.
* LeaseRevoke: WRITE on every key attached to the lease (checkLeasePuts).

Differences from etcd 3.4, all stricter:
* etcd's checkTxnReqsPermission does not look inside nested Txns (a nested
  txn's ops go unchecked) and checks only WRITE for a put inside a txn; here a
  nested Txn is checked like a top-level one, recursively, and ops inside a
  txn follow the top-level rules (prev_kv READ, the lease rule).
* etcd lets a command without a user through where no key is checked
  (Compact, LeaseGrant, LeaseRevoke of an empty lease); here OpenSession,
  CloseSession, LeaseGrant and LeaseRevoke need a user (UserEmpty).
* Compact is root's (issue 15: compaction, like membership and snapshots, is an
  operator's act); etcd 3.4 lets any user compact (needAdminPermission has no
  compaction): a documented difference.
* LeaseExpire is the leader's verdict, proposed without a user: not checked;
  nor is AutoCompact, the leader node's auto-compaction (the router refuses
  both from clients, so only a node proposes them).
* Alarm is checked by the receiving node (root only, as etcd's admin check; the
  node's own NOSPACE/CORRUPT proposals carry no user): not checked here.
"""
from __future__ import annotations

from cluster.kv.requests import (
    CloseSession,
    Compact,
    DeleteRange,
    LeaseGrant,
    LeaseRevoke,
    Op,
    OpenSession,
    Put,
    Range,
    Request,
    Txn,
)
from node.statemachine.auth_store import AuthStore
from node.statemachine.lease_table import LeaseTable


def authorize(auth: AuthStore, leases: LeaseTable, user: str, request: Request) -> None:
    """Raise the AuthError `user` meets doing the key-value `request`; auth
    requests are checked by AuthStore.apply itself, and the rest needs nothing."""
    match request:
        case Put() | Range() | DeleteRange() | Txn():
            authorize_op(auth, leases, user, request)
        case LeaseRevoke(lease_id):
            auth.check_user(user)
            _check_lease_puts(auth, leases, user, lease_id)
        case OpenSession() | CloseSession() | LeaseGrant():
            auth.check_user(user)
        case Compact():
            auth.check_admin(user)
        case _:
            pass


def authorize_op(auth: AuthStore, leases: LeaseTable | None, user: str, op: Op) -> None:
    """The permissions of one op (nested Txns included). `leases` None: a read
    (a read-only op never names a lease)."""
    match op:
        case Range(key, range_end):
            auth.check_read(user, key, range_end)
        case Put(key):
            auth.check_write(user, key)
            if op.lease and leases is not None:
                _check_lease_puts(auth, leases, user, op.lease)
            if op.prev_kv:
                auth.check_read(user, key)
        case DeleteRange(key, range_end, prev_kv):
            auth.check_write(user, key, range_end)
            if prev_kv:
                auth.check_read(user, key, range_end)
        case Txn(compares, success, failure):
            for compare in compares:
                auth.check_read(user, compare.key, compare.range_end)
            for nested in success + failure:
                authorize_op(auth, leases, user, nested)


def _check_lease_puts(auth: AuthStore, leases: LeaseTable, user: str, lease_id: int) -> None:
    lease = leases.get(lease_id)
    if lease is not None:
        for key in sorted(lease.keys):
            auth.check_write(user, key)
