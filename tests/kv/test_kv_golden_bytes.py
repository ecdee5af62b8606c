"""The wire format of the KV API, pinned byte for byte.

Command bytes are what Raft log entries hold (and so what every existing data
directory holds); result bytes are what clients and snapshots read. Neither may
change by accident: each request and result kind has its exact bytes written
out here (taken from the build before the KV API moved to `cluster.kv`, when two
implementations agreed on them). A deliberate format change bumps
`codec.FORMAT` and rewrites this table. Fields added since (Put's ignore_value
and ignore_lease, Compare's range_end) are written only when not default, so
the older rows stay as they were; their own rows follow them.
"""
from __future__ import annotations

import pytest

from cluster.kv.alarms import Alarm, AlarmAction, AlarmMember, AlarmResponse, AlarmType
from cluster.kv.errors import Corrupt, NoSpace
from cluster.kv import (
    AutoCompact,
    CloseSession,
    Command,
    Compact,
    CompactResponse,
    Compacted,
    Compare,
    CompareOp,
    CompareTarget,
    DeleteRange,
    DeleteResponse,
    DuplicateKey,
    FutureRevision,
    InvalidCommand,
    KeyNotFound,
    KeyValue,
    LeaseExists,
    LeaseExpire,
    LeaseGrant,
    LeaseGrantResponse,
    LeaseKeepAlive,
    LeaseKeepAliveResponse,
    LeaseLeases,
    LeaseLeasesResponse,
    LeaseNotFound,
    LeaseProvided,
    LeaseRevoke,
    LeaseRevokeResponse,
    LeaseTimeToLive,
    LeaseTimeToLiveResponse,
    LimitExceeded,
    OpenSession,
    Put,
    PutResponse,
    Range,
    RangeResponse,
    Request,
    Result,
    SessionClosed,
    SessionExpired,
    SessionOpened,
    SnapshotCorrupt,
    SortOrder,
    SortTarget,
    StaleSequence,
    Txn,
    TxnResponse,
    ValueProvided,
    decode_command,
    decode_result,
    encode_command,
    encode_result,
    prefix_end,
)
from cluster.kv import requests, results
from cluster.kv.auth import (
    AuthDisable, AuthDone, AuthEnable, Authenticate, AuthenticateResponse, AuthIssue, AuthStatus,
    AuthStatusResponse, Permission, PermType, RoleAdd, RoleDelete, RoleGet, RoleGetResponse,
    RoleGrantPermission, RoleList, RoleListResponse, RoleRevokePermission, UserAdd, UserChangePassword,
    UserDelete, UserGet, UserGetResponse, UserGrantRole, UserList, UserListResponse, UserRevokeRole,
)
from cluster.kv.errors import (
    ERROR_TYPES, AuthFailed, AuthNotEnabled, AuthOldRevision, InvalidAuthMgmt, InvalidAuthToken,
    PermissionDenied, PermissionNotGranted, RoleAlreadyExists, RoleEmpty, RoleNotFound, RoleNotGranted,
    RootRoleNotExist, RootUserNotExist, UserAlreadyExists, UserEmpty, UserNotFound,
)

REQUESTS = [  # (name, request, its command bytes as client 7, seq 3)
    ("put", Put(b"k", b"v"),
     "940107039501c4016bc4017600c2"),
    ("put_lease_prev_kv", Put(b"key", b"value", 7, True),
     "940107039501c4036b6579c40576616c756507c3"),
    ("range_one_key", Range(b"k"),
     "940107039902c4016bc4000000c2c20000"),
    ("range_every_option", Range(b"a", b"z", 3, 10, True, False, SortTarget.VERSION, SortOrder.DESCEND),
     "940107039902c40161c4017a030ac3c20102"),
    ("range_prefix_sorted",
     Range(b"/p/", prefix_end(b"/p/"), limit=1, sort_target=SortTarget.CREATE, sort_order=SortOrder.ASCEND),
     "940107039902c4032f702fc4032f70300001c2c20201"),
    ("delete_range", DeleteRange(b"a", b"\0", True),
     "940107039403c40161c40100c3"),
    ("txn", Txn((Compare.value(b"k", "=", b"v"), Compare.version(b"k", ">", 2),
                 Compare.create_revision(b"k", "<", 5), Compare.mod_revision(b"k", "!=", 4),
                 Compare.lease(b"k", "=", 9)),
                (Put(b"k", b"w", 9), Range(b"k")),
                (DeleteRange(b"k"), Txn((), (Range(b"x"),), ()))),
     "9401070394049594c4016b0300c4017694c4016b00010294c4016b01020594c4016b02030494c4016b040009929501"
     "c4016bc4017709c29902c4016bc4000000c2c20000929403c4016bc400c2940490919902c40178c4000000c2c2000090"),
    ("compact", Compact(5),
     "94010703920505"),
    ("open_session", OpenSession(),
     "940107039106"),
    ("close_session", CloseSession(42),
     "9401070392072a"),
    ("lease_grant", LeaseGrant(5),
     "9401070393080500"),
    ("lease_grant_with_id", LeaseGrant(5, 99),
     "9401070393080563"),
    ("lease_revoke", LeaseRevoke(99),
     "94010703920963"),
    ("lease_keepalive", LeaseKeepAlive(99),
     "94010703920a63"),
    ("lease_time_to_live", LeaseTimeToLive(99, True),
     "94010703930b63c3"),
    ("lease_leases", LeaseLeases(),
     "94010703910c"),
    ("lease_expire", LeaseExpire(99, 12),
     "94010703930d630c"),
    # Added with alarms (etcd's Maintenance.Alarm): [14, action, member_id, alarm]
    ("alarm_get", Alarm(AlarmAction.GET),
     "94010703940e000000"),
    ("alarm_activate_nospace", Alarm(AlarmAction.ACTIVATE, 3, AlarmType.NOSPACE),
     "94010703940e010301"),
    # Added with auto-compaction (the leader node's Compact): [15, revision]
    ("auto_compact", AutoCompact(42),
     "94010703920f2a"),
    # Added with etcd's ignore_value/ignore_lease: [1, key, value, lease, prev_kv, ignore_value, ignore_lease]
    ("put_ignore_value", Put(b"k", b"", ignore_value=True),
     "940107039701c4016bc40000c2c3c2"),
    ("put_ignore_lease_prev_kv", Put(b"k", b"v", prev_kv=True, ignore_lease=True),
     "940107039701c4016bc4017600c3c2c3"),
    # Added with etcd's Compare.range_end: [key, target, op, operand, range_end]
    ("txn_range_compares", Txn((Compare(b"a", CompareTarget.VERSION, CompareOp.GREATER, 0, b"\0"),
                                Compare(b"a", CompareTarget.VALUE, CompareOp.EQUAL, b"v", b"b"),
                                Compare.version(b"a", ">", 0))),
     "9401070394049395c40161000100c4010095c401610300c40176c4016294c401610001009090"),
    # issue 15: the auth requests (cluster/kv/auth.py)
    ("auth_enable", AuthEnable(),
     "940107039114"),
    ("auth_disable", AuthDisable(),
     "940107039115"),
    ("auth_status", AuthStatus(),
     "940107039116"),
    ("authenticate", Authenticate("ann", "pw"),
     "940107039317a3616e6ea27077"),
    ("auth_issue", AuthIssue("ann", "tok", 1700000000000),
     "940107039418a3616e6ea3746f6bcf0000018bcfe56800"),
    ("user_add", UserAdd("ann", "", "h"),
     "940107039519a3616e6ea0a168c2"),
    ("user_add_no_password", UserAdd("ann", no_password=True),
     "940107039519a3616e6ea0a0c3"),
    ("user_get", UserGet("ann"),
     "94010703921aa3616e6e"),
    ("user_list", UserList(),
     "94010703911b"),
    ("user_delete", UserDelete("ann"),
     "94010703921ca3616e6e"),
    ("user_change_password", UserChangePassword("ann", "", "h"),
     "94010703941da3616e6ea0a168"),
    ("user_grant_role", UserGrantRole("ann", "r"),
     "94010703931ea3616e6ea172"),
    ("user_revoke_role", UserRevokeRole("ann", "r"),
     "94010703931fa3616e6ea172"),
    ("role_add", RoleAdd("r"),
     "940107039220a172"),
    ("role_get", RoleGet("r"),
     "940107039221a172"),
    ("role_list", RoleList(),
     "940107039122"),
    ("role_delete", RoleDelete("r"),
     "940107039223a172"),
    ("role_grant_permission", RoleGrantPermission("r", Permission(PermType.READWRITE, b"a", b"b")),
     "940107039324a1729302c40161c40162"),
    ("role_revoke_permission", RoleRevokePermission("r", b"a", b"b"),
     "940107039425a172c40161c40162"),
]

KV = KeyValue(b"a", b"1", 2, 3, 2, 0)
RESULTS = [  # (name, result, its bytes)
    ("put", PutResponse(3),
     "930103c0"),
    ("put_prev_kv", PutResponse(3, KV),
     "93010396c40161c4013102030200"),
    ("range", RangeResponse(4, (KV, KeyValue(b"b", b"", 4, 4, 1, 9)), 5, True),
     "9502049296c40161c401310203020096c40162c4000404010905c3"),
    ("delete", DeleteResponse(5, 1, (KV,)),
     "940305019196c40161c4013102030200"),
    ("txn", TxnResponse(5, False, (PutResponse(5), RangeResponse(5, (), 0, False), DeleteResponse(5, 0),
                                   TxnResponse(5, True, ()))),
     "940405c294930105c09502059000c29403050090940405c390"),
    ("compact", CompactResponse(6, 4),
     "93050604"),
    ("session_opened", SessionOpened(9),
     "920609"),
    ("session_closed", SessionClosed(9, True),
     "930709c3"),
    ("lease_grant", LeaseGrantResponse(7, 99, 5),
     "9408076305"),
    ("lease_revoke", LeaseRevokeResponse(8, 2),
     "93090802"),
    ("lease_keepalive", LeaseKeepAliveResponse(8, 99, 5),
     "940a086305"),
    ("lease_time_to_live", LeaseTimeToLiveResponse(8, 99, 5, 3, (b"a", b"b")),
     "960b0863050392c40161c40162"),
    ("lease_time_to_live_expired", LeaseTimeToLiveResponse(8, 99, 5, -1),
     "960b086305ff90"),
    ("lease_leases", LeaseLeasesResponse(8, (1, 99)),
     "930c08920163"),
    ("error_invalid_command", InvalidCommand("why"),
     "930001a3776879"),
    ("error_limit_exceeded", LimitExceeded("max_key_bytes", 9000, 8192),
     "950002ad6d61785f6b65795f6279746573cd2328cd2000"),
    ("error_compacted", Compacted(3, 4),
     "9400030304"),
    ("error_future_revision", FutureRevision(9, 4),
     "9400040904"),
    ("error_session_expired", SessionExpired(7),
     "93000507"),
    ("error_stale_sequence", StaleSequence(7, 1, 2),
     "950006070102"),
    ("error_lease_not_found", LeaseNotFound(99),
     "93000763"),
    ("error_lease_exists", LeaseExists(99),
     "93000963"),
    ("error_snapshot_corrupt", SnapshotCorrupt("torn"),
     "930008a4746f726e"),
    ("error_key_not_found", KeyNotFound(),
     "92000a"),
    ("error_value_provided", ValueProvided(),
     "92000b"),
    ("error_lease_provided", LeaseProvided(),
     "92000c"),
    ("error_duplicate_key", DuplicateKey(),
     "92000d"),
    # issue 15: auth results and errors
    ("auth_done", AuthDone(8, 2),
     "93140802"),
    ("auth_status", AuthStatusResponse(8, True, 2),
     "941608c302"),
    ("authenticate", AuthenticateResponse(8, "tok"),
     "931708a3746f6b"),
    ("user_get", UserGetResponse(8, ("r", "root")),
     "931a0892a172a4726f6f74"),
    ("user_list", UserListResponse(8, ("ann", "root")),
     "931b0892a3616e6ea4726f6f74"),
    ("role_get", RoleGetResponse(8, (Permission(PermType.READ, b"a"), Permission(PermType.WRITE, b"b", b"\0"))),
     "932108929300c40161c4009301c40162c40100"),
    ("role_list", RoleListResponse(8, ("r", "root")),
     "93220892a172a4726f6f74"),
    ("error_auth_not_enabled", AuthNotEnabled(),
     "920014"),
    ("error_auth_failed", AuthFailed(),
     "920015"),
    ("error_invalid_auth_token", InvalidAuthToken(),
     "920016"),
    ("error_permission_denied", PermissionDenied(),
     "920017"),
    ("error_user_empty", UserEmpty(),
     "920018"),
    ("error_user_already_exists", UserAlreadyExists(),
     "920019"),
    ("error_user_not_found", UserNotFound(),
     "92001a"),
    ("error_role_already_exists", RoleAlreadyExists(),
     "92001b"),
    ("error_role_not_found", RoleNotFound(),
     "92001c"),
    ("error_role_empty", RoleEmpty(),
     "92001d"),
    ("error_role_not_granted", RoleNotGranted(),
     "92001e"),
    ("error_permission_not_granted", PermissionNotGranted(),
     "92001f"),
    ("error_root_user_not_exist", RootUserNotExist(),
     "920020"),
    ("error_root_role_not_exist", RootRoleNotExist(),
     "920021"),
    ("error_invalid_auth_mgmt", InvalidAuthMgmt(),
     "920022"),
    ("error_auth_old_revision", AuthOldRevision(),
     "920023"),
    ("alarm_response", AlarmResponse(7, (AlarmMember(3, AlarmType.CORRUPT),)),
     "930e0791920302"),
    ("error_no_space", NoSpace(),
     "920028"),
    ("error_corrupt", Corrupt(),
     "920029"),
]


@pytest.mark.parametrize("name, request_, golden", REQUESTS, ids=[r[0] for r in REQUESTS])
def test_a_request_encodes_to_its_pinned_bytes(name: str, request_: Request, golden: str) -> None:
    assert encode_command(request_, 7, 3).hex() == golden


@pytest.mark.parametrize("name, request_, golden", REQUESTS, ids=[r[0] for r in REQUESTS])
def test_pinned_request_bytes_decode_to_the_request(name: str, request_: Request, golden: str) -> None:
    assert decode_command(bytes.fromhex(golden)) == Command(request_, 7, 3)


@pytest.mark.parametrize("name, result, golden", RESULTS, ids=[r[0] for r in RESULTS])
def test_a_result_encodes_to_its_pinned_bytes(name: str, result: Result, golden: str) -> None:
    assert encode_result(result).hex() == golden


@pytest.mark.parametrize("name, result, golden", RESULTS, ids=[r[0] for r in RESULTS])
def test_pinned_result_bytes_decode_to_the_result(name: str, result: Result, golden: str) -> None:
    assert decode_result(bytes.fromhex(golden)) == result


def test_every_request_and_result_kind_is_pinned() -> None:
    """A new request or result kind must come with its bytes in this table."""
    requests_pinned = {type(r) for _, r, _ in REQUESTS}
    results_pinned = {type(r) for _, r, _ in RESULTS}
    assert requests_pinned == set(requests.Request.__args__)  # type: ignore[attr-defined]
    assert results_pinned >= set(results.Response.__args__)  # type: ignore[attr-defined]
    assert {t for t in results_pinned if issubclass(t, Exception)} == set(ERROR_TYPES.values())
