"""The key-value API, defined once: what a client asks, what it gets back, and
the bytes of both.

The node's state machine (`node/statemachine/`) executes these requests; the
client library, the CLI, the benchmark and the checker build them. Both import
this package (`cluster` is the leaf every other package may import), so there is
one definition of a request and no copy to drift.

    keys      the key-range convention: ALL_KEYS_END, prefix_end
    enums     SortTarget, SortOrder, CompareTarget, CompareOp (etcd's numbers)
    requests  Put, Range, DeleteRange, Txn, Compare, Compact, sessions, leases;
              Command (a request in the log); is_read_only
    keyvalue  KeyValue, one version of one key
    results   PutResponse ... LeaseLeasesResponse (etcd's *Response names)
    errors    the KvError hierarchy of expected outcomes; ResultDecodeError
    limits    Limits and the static checks of a request against them
    codec     encode/decode of commands and results (msgpack), validating;
              with_user (a user spliced into command bytes)
    auth      the auth requests and results (etcd's Auth service), ROOT
    alarms    Alarm, AlarmResponse, AlarmAction, AlarmType (etcd's Maintenance.Alarm)
    passwords hash_password, verify_password (slow, salted)
"""
from cluster.kv.auth import (
    AUTH_READS,
    AUTH_REQUESTS,
    PASSWORD_REQUESTS,
    ROOT,
    AuthDisable,
    AuthDone,
    AuthEnable,
    Authenticate,
    AuthenticateResponse,
    AuthIssue,
    AuthRequest,
    AuthResult,
    AuthStatus,
    AuthStatusResponse,
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
from cluster.kv.alarms import Alarm, AlarmAction, AlarmMember, AlarmResponse, AlarmType
from cluster.kv.codec import decode_command, decode_result, encode_command, encode_result, with_user
from cluster.kv.enums import CompareOp, CompareTarget, SortOrder, SortTarget
from cluster.kv.errors import (
    AlarmError,
    Corrupt,
    NoSpace,
    AuthError,
    AuthFailed,
    AuthNotEnabled,
    AuthOldRevision,
    InvalidAuthMgmt,
    InvalidAuthToken,
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
    Compacted,
    DuplicateKey,
    FutureRevision,
    InvalidCommand,
    KeyNotFound,
    KvError,
    LeaseExists,
    LeaseNotFound,
    LeaseProvided,
    LimitExceeded,
    ResultDecodeError,
    SessionExpired,
    SnapshotCorrupt,
    StaleSequence,
    ValueProvided,
)
from cluster.kv.keys import ALL_KEYS_END, prefix_end
from cluster.kv.keyvalue import KeyValue
from cluster.kv.limits import Limits
from cluster.kv.requests import (
    LEASE_QUERIES,
    CloseSession,
    Command,
    AutoCompact,
    Compact,
    Compare,
    DeleteRange,
    LeaseExpire,
    LeaseGrant,
    LeaseKeepAlive,
    LeaseLeases,
    LeaseRequest,
    LeaseRevoke,
    LeaseTimeToLive,
    Op,
    OpenSession,
    Put,
    Range,
    Request,
    Txn,
    is_read_only,
)
from cluster.kv.results import (
    CompactResponse,
    DeleteResponse,
    LeaseGrantResponse,
    LeaseKeepAliveResponse,
    LeaseLeasesResponse,
    LeaseRevokeResponse,
    LeaseTimeToLiveResponse,
    OpResult,
    PutResponse,
    RangeResponse,
    Response,
    Result,
    SessionClosed,
    SessionOpened,
    TxnResponse,
)

__all__ = [
    "Alarm",
    "AlarmAction",
    "AlarmError",
    "AlarmMember",
    "AlarmResponse",
    "AlarmType",
    "Corrupt",
    "NoSpace",
    "AUTH_READS", "AUTH_REQUESTS", "PASSWORD_REQUESTS", "ROOT", "AuthDisable", "AuthDone", "AuthEnable",
    "AuthError", "AuthFailed", "AuthIssue", "AuthNotEnabled", "AuthOldRevision", "AuthRequest", "AuthResult",
    "AuthStatus", "AuthStatusResponse", "Authenticate", "AuthenticateResponse", "InvalidAuthMgmt",
    "InvalidAuthToken", "PermType", "Permission", "PermissionDenied", "PermissionNotGranted", "RoleAdd",
    "RoleAlreadyExists", "RoleDelete", "RoleEmpty", "RoleGet", "RoleGetResponse", "RoleGrantPermission",
    "RoleList", "RoleListResponse", "RoleNotFound", "RoleNotGranted", "RoleRevokePermission",
    "RootRoleNotExist", "RootUserNotExist", "UserAdd", "UserAlreadyExists", "UserChangePassword",
    "UserDelete", "UserEmpty", "UserGet", "UserGetResponse", "UserGrantRole", "UserList",
    "UserListResponse", "UserNotFound", "UserRevokeRole", "with_user",
    "ALL_KEYS_END", "CloseSession", "Command", "AutoCompact", "Compact", "CompactResponse", "Compacted", "Compare",
    "CompareOp", "CompareTarget", "DeleteRange", "DeleteResponse", "DuplicateKey", "FutureRevision",
    "InvalidCommand", "KeyNotFound", "KeyValue", "KvError", "LEASE_QUERIES", "LeaseExists", "LeaseExpire", "LeaseGrant",
    "LeaseGrantResponse", "LeaseKeepAlive", "LeaseKeepAliveResponse", "LeaseLeases",
    "LeaseLeasesResponse", "LeaseNotFound", "LeaseProvided", "LeaseRequest", "LeaseRevoke", "LeaseRevokeResponse",
    "LeaseTimeToLive", "LeaseTimeToLiveResponse", "LimitExceeded", "Limits", "Op", "OpResult",
    "OpenSession", "Put", "PutResponse", "Range", "RangeResponse", "Request", "Response", "Result",
    "ResultDecodeError", "SessionClosed", "SessionExpired", "SessionOpened", "SnapshotCorrupt",
    "SortOrder", "SortTarget", "StaleSequence", "Txn", "TxnResponse", "ValueProvided", "decode_command",
    "decode_result", "encode_command", "encode_result", "is_read_only", "prefix_end",
]
