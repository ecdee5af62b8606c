"""AuthStore: etcd 3.4's auth rules (auth/store.go, range_perm_cache.go,
apply_auth.go's admin and self rules), with etcd's errors."""
from __future__ import annotations

import pytest

from cluster.kv import (
    ROOT, AuthDisable, AuthDone, AuthEnable, Authenticate, AuthFailed, AuthIssue, AuthNotEnabled, AuthStatus,
    AuthStatusResponse, InvalidAuthMgmt, InvalidCommand, Permission, PermissionDenied, PermissionNotGranted,
    PermType, RoleAdd, RoleAlreadyExists, RoleDelete, RoleEmpty, RoleGet, RoleGetResponse, RoleGrantPermission,
    RoleList, RoleListResponse, RoleNotFound, RoleNotGranted, RoleRevokePermission, RootRoleNotExist,
    RootUserNotExist, UserAdd, UserAlreadyExists, UserChangePassword, UserDelete, UserEmpty, UserGet,
    UserGetResponse, UserGrantRole, UserList, UserListResponse, UserNotFound, UserRevokeRole,
)
from node.statemachine.auth_store import FIRST_REVISION, AuthStore, User

READ, WRITE, READWRITE = PermType.READ, PermType.WRITE, PermType.READWRITE


def apply(auth: AuthStore, *requests: object, user: str = "") -> object:
    result: object = None
    for request in requests:
        result = auth.apply(user, request, 0)
    return result


def with_root(enabled: bool = True) -> AuthStore:
    auth = AuthStore()
    apply(auth, UserAdd(ROOT, hashed="h"), UserGrantRole(ROOT, ROOT))
    if enabled:
        apply(auth, AuthEnable())
    return auth


def test_a_fresh_store_is_disabled_at_etcds_first_revision() -> None:
    auth = AuthStore()
    assert not auth.enabled and auth.revision == FIRST_REVISION == 1
    assert auth.read("", AuthStatus(), 7) == AuthStatusResponse(7, False, 1)


def test_enable_needs_root_with_the_root_role() -> None:
    auth = AuthStore()
    with pytest.raises(RootUserNotExist):
        apply(auth, AuthEnable())
    apply(auth, UserAdd(ROOT, hashed="h"))
    with pytest.raises(RootRoleNotExist):
        apply(auth, AuthEnable())
    apply(auth, UserGrantRole(ROOT, ROOT))  # the root role need not exist as a role (etcd)
    revision = auth.revision
    assert apply(auth, AuthEnable()) == AuthDone(0, revision)  # etcd: enabling keeps the revision
    assert auth.enabled and auth.drain_events() == [("enabled",)]


def test_enable_when_enabled_and_disable_when_disabled_change_nothing() -> None:
    auth = with_root()
    auth.drain_events()
    revision = auth.revision
    apply(auth, AuthEnable(), user=ROOT)
    assert auth.revision == revision and auth.drain_events() == []
    apply(auth, AuthDisable(), user=ROOT)
    assert not auth.enabled and auth.revision == revision + 1 and auth.drain_events() == [("disabled",)]
    apply(auth, AuthDisable())
    assert auth.revision == revision + 1 and auth.drain_events() == []


def test_the_revision_moves_on_every_change() -> None:
    auth = AuthStore()
    steps = [UserAdd("ann", hashed="h"), RoleAdd("r"), UserGrantRole("ann", "r"),
             RoleGrantPermission("r", Permission(READ, b"k")), RoleRevokePermission("r", b"k"),
             UserRevokeRole("ann", "r"), UserChangePassword("ann", hashed="h2"), RoleDelete("r"), UserDelete("ann")]
    for number, step in enumerate(steps, start=2):
        assert apply(auth, step) == AuthDone(0, number)


def test_failures_change_nothing() -> None:
    auth = AuthStore()
    apply(auth, UserAdd("ann", hashed="h"))
    before = auth.revision
    for step, error in [(UserAdd("ann", hashed="x"), UserAlreadyExists), (UserGrantRole("ann", "nope"), RoleNotFound),
                        (UserGrantRole("bob", ROOT), UserNotFound), (UserRevokeRole("ann", "r"), RoleNotGranted),
                        (RoleDelete("nope"), RoleNotFound), (UserDelete("bob"), UserNotFound),
                        (UserChangePassword("bob", hashed="h"), UserNotFound),
                        (RoleGrantPermission("nope", Permission(READ, b"k")), RoleNotFound),
                        (RoleRevokePermission("nope", b"k"), RoleNotFound)]:
        with pytest.raises(error):
            apply(auth, step)
    apply(auth, RoleAdd("r"))
    with pytest.raises(RoleAlreadyExists):
        apply(auth, RoleAdd("r"))
    with pytest.raises(PermissionNotGranted):
        apply(auth, RoleRevokePermission("r", b"k"))
    assert auth.revision == before + 1


def test_empty_names_are_etcds_user_empty_and_role_empty() -> None:
    with pytest.raises(UserEmpty):
        apply(AuthStore(), UserAdd("", hashed="h"))
    with pytest.raises(RoleEmpty):
        apply(AuthStore(), RoleAdd(""))


def test_granting_a_granted_role_is_a_success_that_changes_nothing() -> None:
    auth = AuthStore()
    apply(auth, UserAdd("ann", hashed="h"), RoleAdd("r"), UserGrantRole("ann", "r"))
    revision = auth.revision
    assert apply(auth, UserGrantRole("ann", "r")) == AuthDone(0, revision)


def test_roles_are_kept_sorted() -> None:
    auth = AuthStore()
    apply(auth, UserAdd("ann", hashed="h"), RoleAdd("b"), RoleAdd("a"), UserGrantRole("ann", "b"),
          UserGrantRole("ann", "a"), UserGrantRole("ann", ROOT))
    assert auth.user("ann") == User("ann", "h", ("a", "b", ROOT))


def test_root_cannot_be_deleted_nor_lose_the_root_role_while_enabled() -> None:
    auth = with_root()
    apply(auth, RoleAdd(ROOT), user=ROOT)
    for step in (UserDelete(ROOT), UserRevokeRole(ROOT, ROOT), RoleDelete(ROOT)):
        with pytest.raises(InvalidAuthMgmt):
            apply(auth, step, user=ROOT)
    apply(auth, AuthDisable(), user=ROOT)
    apply(auth, UserRevokeRole(ROOT, ROOT), RoleDelete(ROOT), UserDelete(ROOT))
    assert auth.user(ROOT) is None


def test_deleting_a_role_takes_it_from_every_user() -> None:
    auth = AuthStore()
    apply(auth, UserAdd("ann", hashed="h"), UserAdd("bob", hashed="h"), RoleAdd("r"), RoleAdd("s"),
          UserGrantRole("ann", "r"), UserGrantRole("bob", "r"), UserGrantRole("bob", "s"), RoleDelete("r"))
    assert auth.user("ann").roles == () and auth.user("bob").roles == ("s",)  # type: ignore[union-attr]


def test_granting_the_same_range_again_updates_its_type() -> None:
    auth = AuthStore()
    apply(auth, RoleAdd("r"), RoleGrantPermission("r", Permission(READ, b"b")),
          RoleGrantPermission("r", Permission(READ, b"a", b"c")), RoleGrantPermission("r", Permission(WRITE, b"b")))
    assert auth.read("", RoleGet("r"), 3) == RoleGetResponse(3, (Permission(READ, b"a", b"c"), Permission(WRITE, b"b")))


def test_revoke_needs_the_exact_range() -> None:
    auth = AuthStore()
    apply(auth, RoleAdd("r"), RoleGrantPermission("r", Permission(READ, b"a", b"c")))
    with pytest.raises(PermissionNotGranted):
        apply(auth, RoleRevokePermission("r", b"a"))
    apply(auth, RoleRevokePermission("r", b"a", b"c"))
    assert auth.role("r").perms == ()  # type: ignore[union-attr]


def test_user_changes_are_events_for_the_tokens() -> None:
    auth = AuthStore()
    apply(auth, UserAdd("ann", hashed="h"), UserChangePassword("ann", hashed="h2"), UserDelete("ann"))
    assert auth.drain_events() == [("user-changed", "ann"), ("user-changed", "ann")]
    assert auth.drain_events() == []


def test_clear_passwords_and_authenticate_never_enter_the_store() -> None:
    auth = AuthStore()
    with pytest.raises(InvalidCommand, match="hashed"):
        apply(auth, UserAdd("ann", "secret"))
    with pytest.raises(InvalidCommand, match="hashed"):
        apply(auth, UserChangePassword("ann", "secret"))
    with pytest.raises(InvalidCommand, match="never logged"):
        apply(auth, Authenticate("ann", "secret"))
    apply(auth, UserAdd("bob", "ignored", no_password=True))  # etcd ignores it: nothing is stored
    assert auth.user("bob") == User("bob", "", (), True)


def test_issue_needs_auth_on_and_the_user() -> None:
    auth = AuthStore()
    with pytest.raises(AuthNotEnabled):
        apply(auth, AuthIssue(ROOT, "t", 5))
    auth = with_root()
    auth.drain_events()
    with pytest.raises(AuthFailed):
        apply(auth, AuthIssue("ghost", "t", 5))
    assert apply(auth, AuthIssue(ROOT, "t", 5)).token == "t"  # type: ignore[attr-defined]
    assert auth.drain_events() == [("issue", "t", ROOT, 5)]


# --- admin ---------------------------------------------------------------------------------

ADMIN = [AuthDisable(), UserAdd("x", hashed="h"), UserDelete("ann"), UserChangePassword("ann", hashed="h"),
         UserGrantRole("ann", "r"), UserRevokeRole("ann", "r"), RoleAdd("x"), RoleDelete("r"),
         RoleGrantPermission("r", Permission(READ, b"k")), RoleRevokePermission("r", b"k"), UserList(), RoleList(),
         AuthEnable()]


def enabled_with_ann() -> AuthStore:
    auth = with_root(enabled=False)
    apply(auth, UserAdd("ann", hashed="h"), RoleAdd("r"), RoleAdd("other"), UserGrantRole("ann", "r"),
          RoleGrantPermission("r", Permission(READ, b"k")), AuthEnable())
    return auth


@pytest.mark.parametrize("request_", ADMIN, ids=repr)
def test_admin_requests_need_root_while_enabled(request_: object) -> None:
    auth = enabled_with_ann()
    with pytest.raises(UserEmpty):
        apply(auth, request_, user="")
    with pytest.raises(UserNotFound):
        apply(auth, request_, user="ghost")
    with pytest.raises(PermissionDenied):
        apply(auth, request_, user="ann")
    apply(auth, request_, user=ROOT)


def test_anyone_may_ask_the_status() -> None:
    assert apply(enabled_with_ann(), AuthStatus(), user="").enabled  # type: ignore[attr-defined]


def test_a_user_may_get_itself_and_its_own_roles() -> None:
    auth = enabled_with_ann()
    assert auth.read("ann", UserGet("ann"), 1) == UserGetResponse(1, ("r",))
    assert auth.read("ann", RoleGet("r"), 1) == RoleGetResponse(1, (Permission(READ, b"k"),))
    with pytest.raises(PermissionDenied):
        auth.read("ann", UserGet(ROOT), 1)
    with pytest.raises(PermissionDenied):
        auth.read("ann", RoleGet("other"), 1)
    with pytest.raises(UserEmpty):
        auth.read("", UserGet("ann"), 1)
    assert auth.read(ROOT, UserGet("ann"), 1) == UserGetResponse(1, ("r",))
    assert auth.read(ROOT, UserList(), 1) == UserListResponse(1, ("ann", ROOT))
    assert auth.read(ROOT, RoleList(), 1) == RoleListResponse(1, ("other", "r"))
    with pytest.raises(UserNotFound):
        auth.read(ROOT, UserGet("ghost"), 1)
    with pytest.raises(RoleNotFound):
        auth.read(ROOT, RoleGet("ghost"), 1)


def test_everything_is_allowed_while_disabled() -> None:
    auth = AuthStore()
    auth.check_admin("")
    auth.check_read("", b"k")
    auth.check_write("nobody", b"a", b"\0")
    auth.check_user("")
    assert auth.read("", UserList(), 1) == UserListResponse(1, ())


# --- key permissions (range_perm_cache.go) ---------------------------------------------------------


def user_with(*perms: Permission) -> AuthStore:
    auth = with_root(enabled=False)
    apply(auth, UserAdd("u", hashed="h"), RoleAdd("r"), UserGrantRole("u", "r"))
    for perm in perms:
        apply(auth, RoleGrantPermission("r", perm))
    apply(auth, AuthEnable())
    return auth


def allowed(auth: AuthStore, kind: str, key: bytes, range_end: bytes = b"", user: str = "u") -> bool:
    check = auth.check_read if kind == "r" else auth.check_write
    try:
        check(user, key, range_end)
    except PermissionDenied:
        return False
    return True


def test_a_single_key_permission() -> None:
    auth = user_with(Permission(READ, b"k"))
    assert allowed(auth, "r", b"k")
    assert not allowed(auth, "r", b"k0") and not allowed(auth, "r", b"j") and not allowed(auth, "w", b"k")
    assert allowed(auth, "r", b"k", b"k\0")
    assert not allowed(auth, "r", b"k", b"l")


def test_a_range_permission_covers_subranges_only() -> None:
    auth = user_with(Permission(READ, b"/app/", b"/app0"))
    assert allowed(auth, "r", b"/app/x") and allowed(auth, "r", b"/app/", b"/app0")
    assert allowed(auth, "r", b"/app/a", b"/app/b")
    assert not allowed(auth, "r", b"/app/", b"/app1") and not allowed(auth, "r", b"/ap", b"/app/x")
    assert not allowed(auth, "r", b"/app0") and not allowed(auth, "r", b"/app/", b"\0")
    assert not allowed(auth, "r", b"/other/x")


def test_the_union_of_permissions_covers_a_range() -> None:
    auth = user_with(Permission(READ, b"a", b"c"), Permission(READWRITE, b"c", b"e"), Permission(READ, b"f", b"g"))
    assert allowed(auth, "r", b"a", b"e")  # [a,c) + [c,e) touch
    assert not allowed(auth, "r", b"a", b"f")  # the gap [e,f)
    assert allowed(auth, "w", b"c", b"e") and not allowed(auth, "w", b"b", b"d")


def test_readwrite_counts_for_both() -> None:
    auth = user_with(Permission(READWRITE, b"k"))
    assert allowed(auth, "r", b"k") and allowed(auth, "w", b"k")


def test_from_key_and_everything() -> None:
    auth = user_with(Permission(WRITE, b"m", b"\0"))
    assert allowed(auth, "w", b"m") and allowed(auth, "w", b"zzz", b"\0") and allowed(auth, "w", b"m", b"\xff" * 9)
    assert not allowed(auth, "w", b"l", b"\0") and not allowed(auth, "r", b"m")
    auth = user_with(Permission(READ, b"\0", b"\0"))  # etcdctl's "every key"
    assert allowed(auth, "r", b"\0", b"\0") and allowed(auth, "r", b"anything")


def test_root_may_do_everything_and_strangers_nothing() -> None:
    auth = user_with()
    assert allowed(auth, "w", b"\0", b"\0", user=ROOT) and allowed(auth, "r", b"k", user=ROOT)
    assert not allowed(auth, "r", b"k", user="ghost") and not allowed(auth, "r", b"k")
    with pytest.raises(UserEmpty):
        auth.check_read("", b"k")


def test_the_permission_cache_follows_changes() -> None:
    auth = user_with(Permission(READ, b"k"))
    assert allowed(auth, "r", b"k")
    apply(auth, RoleRevokePermission("r", b"k"), user=ROOT)
    assert not allowed(auth, "r", b"k")
    apply(auth, RoleGrantPermission("r", Permission(READ, b"k")), user=ROOT)
    assert allowed(auth, "r", b"k")
    apply(auth, UserRevokeRole("u", "r"), user=ROOT)
    assert not allowed(auth, "r", b"k")


def test_equality_is_the_state() -> None:
    a, b = user_with(Permission(READ, b"k")), user_with(Permission(READ, b"k"))
    assert a == b
    apply(b, RoleAdd("x"), user=ROOT)
    assert a != b
