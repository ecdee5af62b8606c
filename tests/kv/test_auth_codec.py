"""The bytes of the auth requests and results, Command.user and `with_user`
(cluster/kv/codec.py), and the static limits of auth requests (limits.py)."""
from __future__ import annotations

import msgpack
import pytest

from cluster.kv import (
    AuthDisable, AuthDone, AuthEnable, Authenticate, AuthenticateResponse, AuthIssue, AuthStatus,
    AuthStatusResponse, Command, InvalidCommand, LimitExceeded, Limits, Permission, PermType, Put, Range,
    ResultDecodeError, RoleAdd, RoleDelete, RoleGet, RoleGetResponse, RoleGrantPermission, RoleList,
    RoleListResponse, RoleRevokePermission, Txn, UserAdd, UserChangePassword, UserDelete, UserGet,
    UserGetResponse, UserGrantRole, UserList, UserListResponse, UserRevokeRole, decode_command, decode_result,
    encode_command, encode_result, is_read_only, with_user,
)
from cluster.kv.codec import MAX_STRING_CHARS
from cluster.kv.limits import check_request

REQUESTS = [
    AuthEnable(), AuthDisable(), AuthStatus(), Authenticate("ann", "pw"), AuthIssue("ann", "t0k", 1_700_000_000_000),
    UserAdd("ann", "", "pbkdf2-sha256$1$c2FsdA==$aGFzaA=="), UserAdd("bob", no_password=True), UserGet("ann"),
    UserList(), UserDelete("ann"), UserChangePassword("ann", "", "h"), UserGrantRole("ann", "r"),
    UserRevokeRole("ann", "r"), RoleAdd("r"), RoleGet("r"), RoleList(), RoleDelete("r"),
    RoleGrantPermission("r", Permission(PermType.READ, b"/app/", b"/app0")),
    RoleGrantPermission("r", Permission(PermType.WRITE, b"k")),
    RoleGrantPermission("r", Permission(PermType.READWRITE, b"\0", b"\0")),
    RoleRevokePermission("r", b"/app/", b"/app0"), RoleRevokePermission("r", b"k"),
    UserAdd("ünïcødé", "", "h"),
]

RESULTS = [
    AuthDone(5, 2), AuthStatusResponse(5, True, 9), AuthStatusResponse(0, False, 1), AuthenticateResponse(5, "t"),
    UserGetResponse(5, ()), UserGetResponse(5, ("a", "root")), UserListResponse(5, ("ann", "root")),
    RoleGetResponse(5, ()), RoleGetResponse(5, (Permission(PermType.READ, b"a"),
                                                Permission(PermType.READWRITE, b"b", b"\0"))),
    RoleListResponse(5, ("r",)),
]


@pytest.mark.parametrize("request_", REQUESTS, ids=repr)
@pytest.mark.parametrize("user", ["", "ann"])
def test_every_auth_request_round_trips(request_: object, user: str) -> None:
    data = encode_command(request_, 7, 3, user)  # type: ignore[arg-type]
    assert decode_command(data) == Command(request_, 7, 3, user)  # type: ignore[arg-type]


@pytest.mark.parametrize("result", RESULTS, ids=repr)
def test_every_auth_result_round_trips(result: object) -> None:
    assert decode_result(encode_result(result)) == result  # type: ignore[arg-type]


def test_the_four_element_form_is_the_hot_path_unchanged() -> None:
    put = Put(b"k", b"v")
    data = encode_command(put, 7, 3)
    assert data == msgpack.packb([1, 7, 3, [1, b"k", b"v", 0, False]], use_bin_type=True)
    assert data[0] == 0x94
    assert decode_command(data) == Command(put, 7, 3, "")


def test_a_user_is_a_fifth_element_only_when_set() -> None:
    data = encode_command(Put(b"k", b"v"), 7, 3, "ann")
    assert data == msgpack.packb([1, 7, 3, [1, b"k", b"v", 0, False], "ann"], use_bin_type=True)
    assert decode_command(data).user == "ann"


def test_with_user_splices_without_re_encoding() -> None:
    for request in (Put(b"k", b"v"), Range(b"a", b"b"), RoleAdd("r"), Txn()):
        plain = encode_command(request, 7, 3)
        spliced = with_user(plain, "ann")
        assert spliced == encode_command(request, 7, 3, "ann")
        assert spliced[1:len(plain)] == plain[1:]
        assert decode_command(spliced) == Command(request, 7, 3, "ann")


@pytest.mark.parametrize("data, why", [
    (b"", "not a 4-element command"),
    (b"\x93\x01\x00\x00", "not a 4-element command"),
    (encode_command(Put(b"k", b"v"), user="bob"), "already names a user"),
    (b"\x94\x01\x00\x00", "not a msgpack value"),  # truncated: the user would finish the request
    (b"\x94\x01\x00\x00\x92\x20", "not a msgpack value"),  # RoleAdd missing its name: would take the user
    (encode_command(Put(b"k", b"v")) + b"\xa3bob", "not a msgpack value"),  # trailing bytes
])
def test_with_user_refuses_anything_but_one_whole_4_element_command(data: bytes, why: str) -> None:
    with pytest.raises(InvalidCommand, match=why):
        with_user(data, "ann")


def test_with_user_needs_a_user() -> None:
    with pytest.raises(InvalidCommand):
        with_user(encode_command(Put(b"k", b"v")), "")


def _command(*fields: object) -> bytes:
    return msgpack.packb([1, 0, 0, *fields], use_bin_type=True)


@pytest.mark.parametrize("data", [
    _command([1, b"k", b"v", 0, False], ""),  # an empty user must be left out
    _command([1, b"k", b"v", 0, False], b"ann"),  # bytes, not str
    _command([1, b"k", b"v", 0, False], 5),
    _command([1, b"k", b"v", 0, False], "x" * (MAX_STRING_CHARS + 1)),
    _command([1, b"k", b"v", 0, False], "ann", "extra"),
    _command([32, b"r"]),  # RoleAdd with a bytes name
    _command([32]),  # RoleAdd without a name
    _command([32, "r", "s"]),
    _command([25, "ann", "", "h"]),  # UserAdd missing no_password
    _command([25, "ann", "", "h", 1]),  # no_password not a bool
    _command([24, "ann", "t", -1]),  # AuthIssue: negative issued_ms
    _command([36, "r", [3, b"k", b""]]),  # unknown perm type
    _command([36, "r", [0, "k", b""]]),  # perm key as str
    _command([36, "r", [0, b"k"]]),
    _command([36, "r", "perm"]),
    _command([37, "r", b"k"]),
    _command([38]),  # unknown tag
    _command([19]),
    _command([23, "ann", None]),
    _command([26, "x" * (MAX_STRING_CHARS + 1)]),
])
def test_malformed_auth_commands_are_invalid(data: bytes) -> None:
    with pytest.raises(InvalidCommand):
        decode_command(data)


@pytest.mark.parametrize("fields", [
    [20, 5], [20, 5, -1], [22, 5, 1, 2], [23, 5, b"t"], [26, 5, [b"r"]], [27, 5, "ann"],
    [33, 5, [[9, b"k", b""]]], [34, 5, [1]], [20, 5, 2, 3], [99, 1],
])
def test_malformed_auth_results_are_refused(fields: list[object]) -> None:
    with pytest.raises(ResultDecodeError):
        decode_result(msgpack.packb(fields, use_bin_type=True))


def test_auth_reads_are_read_only_and_changes_are_not() -> None:
    for request in (AuthStatus(), UserGet("a"), UserList(), RoleGet("r"), RoleList()):
        assert is_read_only(request)
    for request in (AuthEnable(), AuthDisable(), Authenticate("a", "b"), AuthIssue("a", "t", 1), UserAdd("a"),
                    UserDelete("a"), UserChangePassword("a"), UserGrantRole("a", "r"), UserRevokeRole("a", "r"),
                    RoleAdd("r"), RoleDelete("r"), RoleGrantPermission("r", Permission(PermType.READ, b"k")),
                    RoleRevokePermission("r", b"k")):
        assert not is_read_only(request)
    assert is_read_only(Range(b"k")) and not is_read_only(Put(b"k", b"v"))


# --- static limits ------------------------------------------------------------------------

LIMITS = Limits(max_name_chars=8, max_secret_chars=16, max_key_bytes=4)


@pytest.mark.parametrize("request_", [
    UserAdd("x" * 9), UserGet("x" * 9), UserDelete("x" * 9), RoleAdd("x" * 9), RoleGet("x" * 9),
    RoleDelete("x" * 9), UserGrantRole("a", "x" * 9), UserRevokeRole("x" * 9, "r"),
    UserAdd("a", hashed="h" * 17), UserChangePassword("a", "p" * 17), Authenticate("a", "p" * 17),
    AuthIssue("a", "t" * 17, 1), RoleGrantPermission("r", Permission(PermType.READ, b"kkkkk")),
    RoleGrantPermission("r", Permission(PermType.READ, b"k", b"zzzzzz")), RoleRevokePermission("r", b"kkkkk"),
], ids=repr)
def test_oversize_names_secrets_and_keys_exceed_limits(request_: object) -> None:
    with pytest.raises(LimitExceeded):
        check_request(request_, LIMITS)  # type: ignore[arg-type]


@pytest.mark.parametrize("perm", [
    Permission(PermType.READ, b""), Permission(PermType.READ, b"b", b"a"), Permission(PermType.READ, b"b", b"b"),
])
def test_a_permission_whose_range_holds_no_key_is_refused(perm: Permission) -> None:
    with pytest.raises(InvalidCommand):
        check_request(RoleGrantPermission("r", perm), LIMITS)


@pytest.mark.parametrize("perm", [
    Permission(PermType.READ, b"a"), Permission(PermType.WRITE, b"a", b"b"),
    Permission(PermType.READWRITE, b"b", b"\0"), Permission(PermType.READ, b"\0", b"\0"),
])
def test_etcds_permission_forms_pass(perm: Permission) -> None:
    check_request(RoleGrantPermission("r", perm), LIMITS)


def test_an_issue_needs_a_token() -> None:
    with pytest.raises(InvalidCommand):
        check_request(AuthIssue("a", "", 1), LIMITS)


def test_empty_names_pass_the_static_checks_for_the_state_machine_to_refuse_in_etcds_order() -> None:
    check_request(UserAdd(""), LIMITS)
    check_request(RoleAdd(""), LIMITS)


def test_garbage_with_auth_tags_is_invalid_or_decodes_to_its_own_bytes() -> None:
    """Random fields under every auth tag: decoding raises InvalidCommand (never
    anything else), or yields a command that encodes back to the same bytes
    (one value, one encoding)."""
    import random

    pool: list[object] = [None, 0, -1, 7, 2**64 - 1, True, False, "", "ann", b"", b"k", [], [0, b"k", b""],
                          [2, b"a", b"\0"], [9, b"k", b""], {"a": 1}, 1.5]
    rng = random.Random(15)
    decoded = 0
    for _ in range(4000):
        tag = rng.randrange(19, 39)
        fields = [tag] + [rng.choice(pool) for _ in range(rng.randrange(0, 6))]
        user = rng.choice([None, "ann", "", b"ann"])
        data = _command(fields) if user is None else _command(fields, user)
        try:
            command = decode_command(data)
        except InvalidCommand:
            continue
        assert encode_command(command.request, command.client_id, command.seq, command.user) == data
        decoded += 1
    assert decoded > 20  # the pool does hit well-formed commands
