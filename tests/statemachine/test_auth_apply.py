"""The state machine with auth (machine.py, authorization.py): every logged
command checked at apply time against the auth state of its entry, for the
user it names; reads in query()/read() too; auth state in snapshots, digests
and equality; the hot path untouched while auth is disabled."""
from __future__ import annotations

import msgpack
import pytest
from snapshot_formats import as_record_chunks

from cluster.kv import (
    ROOT, AuthDone, AuthEnable, AuthFailed, AuthNotEnabled, UserListResponse, Authenticate, AuthenticateResponse, AuthIssue, AuthStatus, AuthStatusResponse,
    CloseSession, Compact, LeaseExpire, SnapshotCorrupt, CompactResponse, Compare, DeleteRange, DeleteResponse, InvalidCommand, LeaseGrant,
    LeaseGrantResponse, LeaseRevoke, LeaseRevokeResponse, OpenSession, Permission, PermissionDenied, PermType,
    Put, PutResponse, Range, RangeResponse, Request, Result, RoleAdd, RoleGet, RoleGrantPermission,
    RoleRevokePermission, SessionOpened, Txn, TxnResponse, UserAdd, UserChangePassword, UserDelete, UserEmpty,
    UserGet, UserGetResponse, UserGrantRole, UserList, encode_command, is_read_only,
)
from node.statemachine import StateMachine
from node.statemachine import machine as machine_module

READ, WRITE, READWRITE = PermType.READ, PermType.WRITE, PermType.READWRITE


class Driver:
    """A state machine fed command bytes at increasing indexes, as `user`."""

    def __init__(self, machine: StateMachine | None = None) -> None:
        self.machine = machine or StateMachine()
        self.index = self.machine.applied_index

    def __call__(self, request: Request, user: str = "", client_id: int = 0, seq: int = 0) -> Result:
        self.index += 1
        return self.machine.apply(self.index, encode_command(request, client_id, seq, user))

    def query(self, request: Request, user: str = "") -> Result:
        return self.machine.query(encode_command(request, user=user))


def setup_app_reader(enable: bool = True) -> Driver:
    """root, and `reader` with READ on the prefix /app/; `writer` with READWRITE on /app/."""
    kv = Driver()
    for step in (UserAdd(ROOT, hashed="h"), UserGrantRole(ROOT, ROOT), UserAdd("reader", hashed="h"),
                 UserAdd("writer", hashed="h"), RoleAdd("app-r"), RoleAdd("app-rw"),
                 RoleGrantPermission("app-r", Permission(READ, b"/app/", b"/app0")),
                 RoleGrantPermission("app-rw", Permission(READWRITE, b"/app/", b"/app0")),
                 UserGrantRole("reader", "app-r"), UserGrantRole("writer", "app-rw")):
        assert isinstance(kv(step), AuthDone), step
    kv(Put(b"/app/x", b"1"))
    kv(Put(b"/other/y", b"2"))
    if enable:
        assert isinstance(kv(AuthEnable()), AuthDone)
    return kv


def test_auth_requests_apply_through_the_log() -> None:
    kv = Driver()
    assert kv(UserAdd(ROOT, hashed="h")) == AuthDone(1, 2)
    kv(Put(b"k", b"v"))
    assert kv(UserGrantRole(ROOT, ROOT)) == AuthDone(2, 3)  # the store revision, then the auth revision
    assert kv(AuthEnable()) == AuthDone(2, 3)
    assert kv.machine.auth.enabled and kv.machine.auth.is_root(ROOT)
    assert kv.machine.drain_auth_events() == [("enabled",)]
    assert kv(AuthStatus()) == AuthStatusResponse(2, True, 3)


def test_a_read_only_user_reads_its_prefix_and_nothing_else() -> None:
    kv = setup_app_reader()
    assert isinstance(kv(Range(b"/app/x"), "reader"), RangeResponse)
    assert isinstance(kv(Range(b"/app/", b"/app0"), "reader"), RangeResponse)
    assert kv(Put(b"/app/x", b"new"), "reader") == PermissionDenied()
    assert kv(DeleteRange(b"/app/x"), "reader") == PermissionDenied()
    assert kv(Range(b"/other/y"), "reader") == PermissionDenied()
    assert kv(Range(b"/", b"\0"), "reader") == PermissionDenied()
    assert kv.machine.get(b"/app/x").value == b"1"  # type: ignore[union-attr]


@pytest.mark.parametrize("txn", [
    Txn((), (Put(b"/app/x", b"w"),)),
    Txn((), (), (Put(b"/app/x", b"w"),)),
    Txn((Compare.value(b"/other/y", "=", b"2"),), (Range(b"/app/x"),)),
    Txn((), (Range(b"/other/y"),)),
    Txn((), (Txn((), (Put(b"/app/x", b"w"),)),)),  # nested: etcd 3.4 does not look inside
    Txn((), (Txn((Compare.version(b"/other/y", ">", 0),)),)),
    Txn((), (), (Txn((), (Txn((), (Range(b"/other/y"),)),)),)),
    Txn((), (DeleteRange(b"/app/x"),)),
], ids=repr)
def test_a_read_only_user_can_do_neither_inside_a_txn(txn: Txn) -> None:
    kv = setup_app_reader()
    assert kv(txn, "reader") == PermissionDenied()
    assert kv.machine.get(b"/app/x").value == b"1"  # type: ignore[union-attr]
    if is_read_only(txn):
        assert kv.query(txn, "reader") == PermissionDenied()


def test_a_txn_of_permitted_reads_runs() -> None:
    kv = setup_app_reader()
    txn = Txn((Compare.value(b"/app/x", "=", b"1"),), (Range(b"/app/x"), Txn((), (Range(b"/app/y"),))))
    assert isinstance(kv(txn, "reader"), TxnResponse)
    assert isinstance(kv.query(txn, "reader"), TxnResponse)


def test_prev_kv_needs_read_too() -> None:
    kv = Driver()
    for step in (UserAdd(ROOT, hashed="h"), UserGrantRole(ROOT, ROOT), UserAdd("w", hashed="h"), RoleAdd("wo"),
                 RoleGrantPermission("wo", Permission(WRITE, b"k")), UserGrantRole("w", "wo"), AuthEnable()):
        kv(step)
    assert isinstance(kv(Put(b"k", b"1"), "w"), PutResponse)
    assert kv(Put(b"k", b"2", prev_kv=True), "w") == PermissionDenied()
    assert kv(DeleteRange(b"k", prev_kv=True), "w") == PermissionDenied()
    assert kv(Txn((), (Put(b"k", b"3", prev_kv=True),)), "w") == PermissionDenied()
    assert isinstance(kv(DeleteRange(b"k"), "w"), DeleteResponse)


def test_a_revoke_in_an_earlier_entry_of_the_same_batch_is_honoured() -> None:
    kv = setup_app_reader()
    assert isinstance(kv(Put(b"/app/x", b"2"), "writer"), PutResponse)
    # One batch of committed entries, applied in order: the revoke, then the put.
    kv(RoleRevokePermission("app-rw", b"/app/", b"/app0"), ROOT)
    assert kv(Put(b"/app/x", b"3"), "writer") == PermissionDenied()
    kv(RoleGrantPermission("app-rw", Permission(WRITE, b"/app/", b"/app0")), ROOT)
    assert isinstance(kv(Put(b"/app/x", b"4"), "writer"), PutResponse)
    kv(UserDelete("writer"), ROOT)
    assert kv(Put(b"/app/x", b"5"), "writer") == PermissionDenied()
    assert kv.machine.get(b"/app/x").value == b"4"  # type: ignore[union-attr]


def test_commands_without_a_user_are_refused_while_enabled() -> None:
    kv = setup_app_reader()
    for request in (Put(b"/app/x", b"v"), Range(b"/app/x"), OpenSession(), CloseSession(5), LeaseGrant(60),
                    LeaseRevoke(5), Compact(1), AuthEnable(), UserList()):
        assert kv(request) == UserEmpty(), request
    assert kv.query(Range(b"/app/x")) == UserEmpty()


def test_sessions_and_leases_need_only_a_user_and_compaction_needs_root() -> None:
    kv = setup_app_reader()
    opened = kv(OpenSession(), "reader")
    assert isinstance(opened, SessionOpened)
    assert isinstance(kv(LeaseGrant(60, 9), "reader"), LeaseGrantResponse)
    assert kv(Compact(2), "reader") == PermissionDenied()  # etcd 3.4 lets any user compact: ours is root's
    assert isinstance(kv(Compact(2), ROOT), CompactResponse)


def test_the_lease_rules_of_check_lease_puts() -> None:
    kv = setup_app_reader()
    kv(LeaseGrant(60, 7), ROOT)
    assert isinstance(kv(Put(b"/other/z", b"v", lease=7), ROOT), PutResponse)
    # writer may write /app/x, but lease 7 holds /other/z, which writer may not write:
    assert kv(Put(b"/app/x", b"v", lease=7), "writer") == PermissionDenied()
    assert kv(Txn((), (Put(b"/app/x", b"v", lease=7),)), "writer") == PermissionDenied()
    assert kv(LeaseRevoke(7), "writer") == PermissionDenied()
    assert kv.machine.lease(7) is not None
    kv(LeaseGrant(60, 8), "writer")
    assert isinstance(kv(Put(b"/app/x", b"v", lease=8), "writer"), PutResponse)
    revision = kv.machine.revision
    assert kv(LeaseRevoke(8), "writer") == LeaseRevokeResponse(revision + 1, 1)
    assert isinstance(kv(LeaseRevoke(7), ROOT), LeaseRevokeResponse)


def test_lease_expiry_is_never_checked() -> None:
    kv = setup_app_reader()
    kv(LeaseGrant(60, 7), ROOT)
    granted = kv.index
    kv(Put(b"/other/z", b"v", lease=7), ROOT)
    assert isinstance(kv(LeaseExpire(7, granted)), LeaseRevokeResponse)


def test_a_logged_clear_password_and_authenticate_are_refused() -> None:
    kv = setup_app_reader()
    assert isinstance(kv(UserAdd("eve", "secret"), ROOT), InvalidCommand)
    assert isinstance(kv(UserChangePassword("reader", "secret"), ROOT), InvalidCommand)
    assert isinstance(kv(Authenticate("reader", "h")), InvalidCommand)
    assert kv.machine.auth.user("eve") is None


def test_auth_issue_makes_a_token_event() -> None:
    assert Driver()(AuthIssue(ROOT, "t", 5)) == AuthNotEnabled()
    kv = setup_app_reader()
    kv.machine.drain_auth_events()
    assert kv(AuthIssue("reader", "tok-1", 1234)) == AuthenticateResponse(kv.machine.revision, "tok-1")
    assert kv.machine.drain_auth_events() == [("issue", "tok-1", "reader", 1234)]
    kv(UserChangePassword("reader", hashed="h2"), ROOT)
    kv(UserDelete("reader"), ROOT)
    assert kv.machine.drain_auth_events() == [("user-changed", "reader"), ("user-changed", "reader")]
    assert kv(AuthIssue("reader", "tok-2", 1235)) == AuthFailed()
    assert kv.machine.drain_auth_events() == []


def test_a_retried_auth_command_gets_its_cached_result() -> None:
    kv = setup_app_reader()
    client = kv(OpenSession(), ROOT)
    assert isinstance(client, SessionOpened)
    first = kv(RoleAdd("new"), ROOT, client.client_id, 1)
    assert kv(RoleAdd("new"), ROOT, client.client_id, 1) == first == AuthDone(3, kv.machine.auth.revision)
    restored = Driver(StateMachine.restore(kv.machine.snapshot()))  # the session table keeps auth results
    assert restored.machine == kv.machine
    restored.index = kv.index
    assert restored(RoleAdd("new"), ROOT, client.client_id, 1) == first


def test_query_serves_auth_reads_for_the_commands_user() -> None:
    kv = setup_app_reader()
    assert kv.query(AuthStatus()) == AuthStatusResponse(3, True, kv.machine.auth.revision)
    assert kv.query(UserGet("reader"), "reader") == UserGetResponse(3, ("app-r",))
    assert kv.query(UserGet("writer"), "reader") == PermissionDenied()
    assert kv.query(UserList(), "reader") == PermissionDenied()
    assert kv.query(RoleGet("app-r"), "reader").perms == (Permission(READ, b"/app/", b"/app0"),)  # type: ignore
    assert kv.query(UserList(), ROOT).users == ("reader", ROOT, "writer")  # type: ignore[union-attr]
    assert kv.machine.read(Range(b"/app/x"), "reader").count == 1  # type: ignore[union-attr]
    assert kv.machine.read(Range(b"/other/y"), "reader") == PermissionDenied()
    assert isinstance(kv.query(Put(b"k", b"v"), ROOT), InvalidCommand)
    assert isinstance(kv.query(RoleAdd("x"), ROOT), InvalidCommand)


def test_disabled_auth_checks_nothing() -> None:
    kv = setup_app_reader(enable=False)
    assert isinstance(kv(Put(b"/other/y", b"v"), "reader"), PutResponse)
    assert isinstance(kv(Put(b"/other/y", b"v")), PutResponse)
    assert isinstance(kv.query(Range(b"/other/y"), "nobody"), RangeResponse)
    assert kv(UserList()) == kv.query(UserList()) == UserListResponse(5, ("reader", ROOT, "writer"))


def test_the_put_hot_path_never_calls_the_authorization_while_disabled(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object) -> None:
        raise AssertionError("authorization consulted with auth disabled")

    monkeypatch.setattr(machine_module, "authorize", refuse)
    monkeypatch.setattr(machine_module, "authorize_op", refuse)
    kv = Driver()
    assert kv(Put(b"k", b"v")) == PutResponse(2)
    assert kv(Txn((), (Put(b"k", b"w"),)), "anyone").revision == 3  # type: ignore[union-attr]
    assert kv.query(Range(b"k")).count == 1  # type: ignore[union-attr]


# --- snapshots, digests, equality ----------------------------------------------------------------


def test_snapshot_and_restore_keep_users_roles_and_enabled() -> None:
    kv = setup_app_reader()
    restored = StateMachine.restore(kv.machine.snapshot(chunk_bytes=64))
    assert restored == kv.machine
    auth = restored.auth
    assert auth.enabled and auth.revision == kv.machine.auth.revision
    assert auth.user("reader") == kv.machine.auth.user("reader") and auth.user("reader").hashed == "h"  # type: ignore
    assert auth.role("app-rw") == kv.machine.auth.role("app-rw")
    assert restored.drain_auth_events() == []
    again = Driver(restored)
    assert again(Put(b"/app/x", b"w"), "reader") == PermissionDenied()
    assert isinstance(again(Put(b"/app/x", b"w"), "writer"), PutResponse)
    chunks = [msgpack.unpackb(c) for c in kv.machine.snapshot()]
    (section,) = [c for c in chunks if c[0] == "auth"]
    assert section[1:3] == [True, kv.machine.auth.revision]
    assert ["reader", "h", ["app-r"], False] in section[3]


def test_a_snapshot_from_before_auth_loads_with_auth_off() -> None:
    kv = setup_app_reader(enable=False)
    kv(OpenSession())
    chunks = as_record_chunks([msgpack.unpackb(c) for c in kv.machine.snapshot()], version=2)
    old = chunks[:1] + [c for c in chunks[1:] if c[0] not in ("auth", "alarms")]
    restored = StateMachine.restore(msgpack.packb(c) for c in old)
    assert not restored.auth.enabled and restored.auth.users() == [] and restored.auth.revision == 1
    assert restored.get(b"/app/x").value == b"1"  # type: ignore[union-attr]


@pytest.mark.parametrize("name, mutate", [
    ("no auth chunk in format 3", lambda c: [x for x in c if x[0] != "auth"]),
    ("auth chunk in format 2", lambda c: as_record_chunks(c, 2)),
    ("auth twice", lambda c: [x for y in c for x in ([y, y] if y[0] == "auth" else [y])]),
    ("auth after sessions", lambda c: [x for x in c if x[0] != "auth"][:-1] + [x for x in c if x[0] == "auth"]
     + [c[-1]]),
    ("enabled not a bool", lambda c: [x if x[0] != "auth" else ["auth", 1, *x[2:]] for x in c]),
    ("revision zero", lambda c: [x if x[0] != "auth" else ["auth", x[1], 0, *x[3:]] for x in c]),
    ("users out of order", lambda c: [x if x[0] != "auth" else [*x[:3], x[3][::-1], x[4]] for x in c]),
    ("roles unsorted in a user", lambda c: [x if x[0] != "auth" else [*x[:3], [["u", "h", ["b", "a"], False]], x[4]]
                                            for x in c]),
    ("bad perm type", lambda c: [x if x[0] != "auth" else [*x[:4], [["r", [[7, b"k", b""]]]]] for x in c]),
    ("user not a list", lambda c: [x if x[0] != "auth" else [*x[:3], ["u"], x[4]] for x in c]),
])
def test_corrupt_auth_sections_fail_restore(name: str, mutate: object) -> None:
    kv = setup_app_reader()
    kv(OpenSession(), ROOT)
    chunks = [msgpack.unpackb(c) for c in kv.machine.snapshot()]
    with pytest.raises(SnapshotCorrupt):
        StateMachine.restore(msgpack.packb(c) for c in mutate(chunks))  # type: ignore[operator]


def test_the_digest_and_equality_cover_the_auth_state() -> None:
    a, b = setup_app_reader(), setup_app_reader()
    assert a.machine == b.machine and a.machine.hash_all() == b.machine.hash_all()
    a(RoleAdd("extra"), ROOT)
    b(RoleAdd("other"), ROOT)
    assert a.machine != b.machine and a.machine.hash_all() != b.machine.hash_all()
    c, d = setup_app_reader(enable=False), setup_app_reader(enable=False)
    d.index += 1
    d.machine.apply_empty(d.index)
    c.index += 1
    c.machine.apply_empty(c.index)
    d(AuthEnable())
    c(UserChangePassword("reader", hashed="other"))
    assert c.machine.revision == d.machine.revision and c.machine.hash_all() != d.machine.hash_all()
