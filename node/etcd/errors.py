"""etcd's errors, exactly: the gRPC status code and message string etcd 3.4
sends for each failure (etcdserver/api/v3rpc/rpctypes/error.go), because
clients match on them (clientv3 turns the strings back into typed errors).

`EtcdError` is raised by the services and turned into the call's status by the
face; `from_kv_error` and `from_reply` map jangada's errors to etcd's.
"""
from __future__ import annotations

from dataclasses import dataclass

import grpc

from cluster import kv
from cluster.protocol import ErrorCode, ErrorReply


@dataclass(frozen=True, slots=True)
class EtcdStatus:
    code: grpc.StatusCode
    message: str


class EtcdError(Exception):
    """A call's failure as etcd reports it."""

    def __init__(self, status: EtcdStatus, detail: str = "") -> None:
        super().__init__(status.message)
        self.status = status
        self.detail = detail  # for our logs only: the message stays etcd's

    @property
    def code(self) -> grpc.StatusCode:
        return self.status.code

    @property
    def message(self) -> str:
        return self.status.message


def _s(code: grpc.StatusCode, message: str) -> EtcdStatus:
    return EtcdStatus(code, message)


C = grpc.StatusCode
EMPTY_KEY = _s(C.INVALID_ARGUMENT, "etcdserver: key is not provided")
KEY_NOT_FOUND = _s(C.INVALID_ARGUMENT, "etcdserver: key not found")
VALUE_PROVIDED = _s(C.INVALID_ARGUMENT, "etcdserver: value is provided")
LEASE_PROVIDED = _s(C.INVALID_ARGUMENT, "etcdserver: lease is provided")
TOO_MANY_OPS = _s(C.INVALID_ARGUMENT, "etcdserver: too many operations in txn request")
DUPLICATE_KEY = _s(C.INVALID_ARGUMENT, "etcdserver: duplicate key given in txn request")
COMPACTED = _s(C.OUT_OF_RANGE, "etcdserver: mvcc: required revision has been compacted")
FUTURE_REV = _s(C.OUT_OF_RANGE, "etcdserver: mvcc: required revision is a future revision")
NO_SPACE = _s(C.RESOURCE_EXHAUSTED, "etcdserver: mvcc: database space exceeded")
LEASE_NOT_FOUND = _s(C.NOT_FOUND, "etcdserver: requested lease not found")
LEASE_EXIST = _s(C.FAILED_PRECONDITION, "etcdserver: lease already exists")
LEASE_TTL_TOO_LARGE = _s(C.OUT_OF_RANGE, "etcdserver: too large lease TTL")
WATCH_CANCELED = _s(C.CANCELLED, "etcdserver: watch canceled")
MEMBER_EXIST = _s(C.FAILED_PRECONDITION, "etcdserver: member ID already exist")
PEER_URL_EXIST = _s(C.FAILED_PRECONDITION, "etcdserver: Peer URLs already exists")
MEMBER_NOT_ENOUGH_STARTED = _s(C.FAILED_PRECONDITION,
                               "etcdserver: re-configuration failed due to not enough started members")
MEMBER_BAD_URLS = _s(C.INVALID_ARGUMENT, "etcdserver: given member URLs are invalid")
MEMBER_NOT_FOUND = _s(C.NOT_FOUND, "etcdserver: member not found")
MEMBER_NOT_LEARNER = _s(C.FAILED_PRECONDITION, "etcdserver: can only promote a learner member")
LEARNER_NOT_READY = _s(C.FAILED_PRECONDITION,
                       "etcdserver: can only promote a learner member which is in sync with leader")
TOO_MANY_LEARNERS = _s(C.FAILED_PRECONDITION, "etcdserver: too many learner members in cluster")
REQUEST_TOO_LARGE = _s(C.INVALID_ARGUMENT, "etcdserver: request is too large")
TOO_MANY_REQUESTS = _s(C.RESOURCE_EXHAUSTED, "etcdserver: too many requests")
AUTH_NOT_ENABLED = _s(C.FAILED_PRECONDITION, "etcdserver: authentication is not enabled")
PERMISSION_DENIED = _s(C.PERMISSION_DENIED, "etcdserver: permission denied")
AUTH_FAILED = _s(C.INVALID_ARGUMENT, "etcdserver: authentication failed, invalid user ID or password")
INVALID_AUTH_TOKEN = _s(C.UNAUTHENTICATED, "etcdserver: invalid auth token")
USER_EMPTY = _s(C.INVALID_ARGUMENT, "etcdserver: user name is empty")
USER_ALREADY_EXISTS = _s(C.FAILED_PRECONDITION, "etcdserver: user name already exists")
USER_NOT_FOUND = _s(C.FAILED_PRECONDITION, "etcdserver: user name not found")
ROLE_ALREADY_EXISTS = _s(C.FAILED_PRECONDITION, "etcdserver: role name already exists")
ROLE_NOT_FOUND = _s(C.FAILED_PRECONDITION, "etcdserver: role name not found")
ROLE_EMPTY = _s(C.INVALID_ARGUMENT, "etcdserver: role name is empty")
ROLE_NOT_GRANTED = _s(C.FAILED_PRECONDITION, "etcdserver: role is not granted to the user")
PERMISSION_NOT_GRANTED = _s(C.FAILED_PRECONDITION, "etcdserver: permission is not granted to the role")
ROOT_USER_NOT_EXIST = _s(C.FAILED_PRECONDITION, "etcdserver: root user does not exist")
ROOT_ROLE_NOT_EXIST = _s(C.FAILED_PRECONDITION, "etcdserver: root user does not have root role")
INVALID_AUTH_MGMT = _s(C.INVALID_ARGUMENT, "etcdserver: invalid auth management")
AUTH_OLD_REVISION = _s(C.INVALID_ARGUMENT, "etcdserver: revision of auth store is old")
NO_LEADER = _s(C.UNAVAILABLE, "etcdserver: no leader")
NOT_LEADER = _s(C.FAILED_PRECONDITION, "etcdserver: not leader")
LEADER_CHANGED = _s(C.UNAVAILABLE, "etcdserver: leader changed")
STOPPED = _s(C.UNAVAILABLE, "etcdserver: server stopped")
TIMEOUT = _s(C.UNAVAILABLE, "etcdserver: request timed out")
TIMEOUT_LEADER_FAIL = _s(C.UNAVAILABLE, "etcdserver: request timed out, possibly due to previous leader failure")
NOT_SUPPORTED_FOR_LEARNER = _s(C.UNAVAILABLE, "etcdserver: rpc not supported for learner")
BAD_LEADER_TRANSFEREE = _s(C.FAILED_PRECONDITION, "etcdserver: bad leader transferee")
CORRUPT = _s(C.DATA_LOSS, "etcdserver: corrupt cluster")
#: etcd answers an unknown method with gRPC's own Unimplemented; we use the same
#: code for the RPCs jangada does not offer, with a message that says so.
UNIMPLEMENTED = C.UNIMPLEMENTED


def invalid(detail: str) -> EtcdError:
    """A request etcd would refuse before it reaches the store, with our reason."""
    return EtcdError(_s(C.INVALID_ARGUMENT, f"etcdserver: {detail}"), detail)


def from_kv_error(error: kv.KvError) -> EtcdError:
    """The etcd error for a KV API failure (a command the store refused)."""
    status = _KV_ERRORS.get(type(error).__name__)
    if status is not None:
        return EtcdError(status, str(error))
    if isinstance(error, kv.LimitExceeded):
        return EtcdError(_LIMITS.get(error.limit, REQUEST_TOO_LARGE), str(error))
    if isinstance(error, kv.InvalidCommand):
        return invalid(str(error))
    return EtcdError(_s(C.UNKNOWN, f"etcdserver: {error}"), str(error))


_KV_ERRORS: dict[str, EtcdStatus] = {
    "Compacted": COMPACTED,
    "FutureRevision": FUTURE_REV,
    "LeaseNotFound": LEASE_NOT_FOUND,
    "LeaseExists": LEASE_EXIST,
    "KeyNotFound": KEY_NOT_FOUND,
    "ValueProvided": VALUE_PROVIDED,
    "LeaseProvided": LEASE_PROVIDED,
    "DuplicateKey": DUPLICATE_KEY,
    # cluster/kv/errors.py's AlarmError subclasses: the capped and corrupt appliers' refusals
    "NoSpace": NO_SPACE,
    "Corrupt": CORRUPT,
    # cluster/kv/errors.py's AuthError subclasses: etcd's auth errors (rpctypes/error.go)
    "AuthNotEnabled": AUTH_NOT_ENABLED,
    "AuthFailed": AUTH_FAILED,
    "InvalidAuthToken": INVALID_AUTH_TOKEN,
    "PermissionDenied": PERMISSION_DENIED,
    "UserEmpty": USER_EMPTY,
    "UserAlreadyExists": USER_ALREADY_EXISTS,
    "UserNotFound": USER_NOT_FOUND,
    "RoleAlreadyExists": ROLE_ALREADY_EXISTS,
    "RoleNotFound": ROLE_NOT_FOUND,
    "RoleEmpty": ROLE_EMPTY,
    "RoleNotGranted": ROLE_NOT_GRANTED,
    "PermissionNotGranted": PERMISSION_NOT_GRANTED,
    "RootUserNotExist": ROOT_USER_NOT_EXIST,
    "RootRoleNotExist": ROOT_ROLE_NOT_EXIST,
    "InvalidAuthMgmt": INVALID_AUTH_MGMT,
    "AuthOldRevision": AUTH_OLD_REVISION,
}
_LIMITS: dict[str, EtcdStatus] = {
    "max_txn_ops": TOO_MANY_OPS,
    "max_lease_ttl": LEASE_TTL_TOO_LARGE,
    "max_value_bytes": REQUEST_TOO_LARGE,
    "max_key_bytes": REQUEST_TOO_LARGE,
    "max_request_bytes": REQUEST_TOO_LARGE,
}


def from_reply(reply: ErrorReply) -> EtcdError:
    """The etcd error for a node's error reply that the link did not retry."""
    if reply.kv_error:
        try:
            failure = kv.decode_result(reply.kv_error)
        except kv.KvError:
            failure = None
        if isinstance(failure, kv.KvError):
            return from_kv_error(failure)
    code = reply.code
    if code is ErrorCode.UNAUTHORIZED:  # a refusal whose AuthError did not decode: etcd's generic one
        return EtcdError(PERMISSION_DENIED, reply.reason)
    if code is ErrorCode.TIMEOUT:
        return EtcdError(TIMEOUT, reply.reason)
    if code is ErrorCode.TOO_MANY_REQUESTS:
        return EtcdError(TOO_MANY_REQUESTS, reply.reason)
    if code in (ErrorCode.NOT_LEADER, ErrorCode.NO_LEADER_YET):
        return EtcdError(NO_LEADER, reply.reason)
    if code is ErrorCode.COMPACTED:
        return EtcdError(COMPACTED, reply.reason)
    if code is ErrorCode.LEASE_NOT_FOUND:
        return EtcdError(LEASE_NOT_FOUND, reply.reason)
    if code is ErrorCode.BUSY:
        return EtcdError(_s(C.UNAVAILABLE, f"etcdserver: {reply.reason}"), reply.reason)
    if code is ErrorCode.REFUSED:
        return EtcdError(LEARNER_NOT_READY if "learner" in reply.reason else
                         _s(C.FAILED_PRECONDITION, f"etcdserver: {reply.reason}"), reply.reason)
    return invalid(reply.reason)
