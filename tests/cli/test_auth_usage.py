"""The CLI's auth, user and role commands without a cluster: argument parsing,
password prompting (a fake getpass) and etcdctl's output, word for word (the
expected strings are what etcdctl 3.4's printer_simple.go prints)."""
from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any

import pytest

from cluster import cli, cli_auth
from cluster.kv.auth import (
    AuthDone, AuthStatusResponse, Permission, PermType, RoleGetResponse, RoleListResponse, UserGetResponse,
    UserListResponse,
)
from cluster.kv.errors import PermissionDenied, RoleAlreadyExists, RootRoleNotExist
from cluster.output import auth_json, auth_status_lines, revoked_permission_line, role_get_lines, user_get_lines
from cluster.usage import UsageError

pytestmark = pytest.mark.timeout(10)


def parse(*argv: str) -> Any:
    args = cli.build_parser().parse_args(list(argv))
    if not hasattr(args, "write_out"):
        args.write_out = "simple"
    return args


class Prompts:
    """A fake getpass: answers in order, records the prompts (and never echoes)."""

    def __init__(self, *answers: str) -> None:
        self.answers = list(answers)
        self.prompts: list[str] = []

    def __call__(self, prompt: str) -> str:
        self.prompts.append(prompt)
        return self.answers.pop(0)


class FakeClient:
    """Records the auth calls a prepared command makes and answers them."""

    def __init__(self, **answers: Any) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.answers = answers

    def __getattr__(self, name: str) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls.append((name, args + tuple(kwargs.values())))
            answer = self.answers.get(name, AuthDone(7, 3))
            if isinstance(answer, list):
                answer = answer.pop(0)
            if isinstance(answer, Exception):
                raise answer
            return answer
        return call


def run(argv: list[str], client: FakeClient, ask: Prompts | None = None, stdin: str = "") -> str:
    args = parse(*argv)
    call = cli_auth.prepare(args, ask or Prompts(), io.StringIO(stdin))
    out = io.StringIO()
    assert call(client, cli_auth.Printer(out, args.write_out == "json")) == 0  # type: ignore[arg-type]
    return out.getvalue()


# -- user add: where the password comes from (etcdctl's userAddCommandFunc) ---------------------


def test_user_add_name_colon_password_needs_no_prompt() -> None:
    client, ask = FakeClient(), Prompts()
    assert run(["user", "add", "alice:s3cr:et"], client, ask) == "User alice created\n"
    assert client.calls == [("user_add", ("alice", "s3cr:et", False))]
    assert ask.prompts == []


def test_user_add_prompts_twice_like_etcdctl() -> None:
    client, ask = FakeClient(), Prompts("pw", "pw")
    assert run(["user", "add", "root"], client, ask) == "User root created\n"
    assert ask.prompts == ["Password of root: ", "Type password of root again for confirmation: "]
    assert client.calls == [("user_add", ("root", "pw", False))]


@pytest.mark.parametrize("answers, message", [(("a", "b"), "given passwords are different"),
                                              (("",), "empty password")])
def test_user_add_refuses_a_bad_prompted_password(answers: tuple[str, ...], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        cli_auth.prepare(parse("user", "add", "root"), Prompts(*answers), io.StringIO())


def test_user_add_reads_stdin_when_not_interactive() -> None:
    client = FakeClient()
    run(["user", "add", "bob", "--interactive=false"], client, stdin="hunter2 trailing\n")
    assert client.calls == [("user_add", ("bob", "hunter2", False))]


def test_user_add_new_user_password_flag_and_no_password() -> None:
    client = FakeClient()
    run(["user", "add", "carol:ignored", "--new-user-password", "pw"], client)
    run(["user", "add", "cn-user", "--no-password"], client)
    assert client.calls == [("user_add", ("carol:ignored", "pw", False)), ("user_add", ("cn-user", "", True))]


def test_user_add_empty_name_before_colon_is_refused() -> None:
    with pytest.raises(UsageError, match="empty user name is not allowed"):
        cli_auth.prepare(parse("user", "add", ":pw"), Prompts(), io.StringIO())


def test_interactive_flag_takes_cobra_booleans() -> None:
    assert parse("user", "passwd", "u", "--interactive=false").interactive is False
    assert parse("user", "passwd", "u", "--interactive").interactive is True
    with pytest.raises(UsageError):
        parse("user", "passwd", "u", "--interactive=maybe")


def test_user_passwd_prompts_and_prints_password_updated() -> None:
    client, ask = FakeClient(), Prompts("new", "new")
    assert run(["user", "passwd", "alice"], client, ask) == "Password updated\n"
    assert client.calls == [("user_change_password", ("alice", "new"))]


# -- global --user (etcdctl's authCfgFromCmd) ------------------------------------------------------


def test_global_user_with_password_after_colon() -> None:
    assert cli.credentials(parse("--user", "root:pw", "user", "list"), Prompts()) == {"user": "root", "password": "pw"}


def test_global_user_prompts_password_without_echo() -> None:
    ask = Prompts("typed")
    assert cli.credentials(parse("user", "list", "--user", "root"), ask) == {"user": "root", "password": "typed"}
    assert ask.prompts == ["Password: "]


def test_global_password_flag_takes_the_user_whole() -> None:
    args = parse("--user", "a:b", "--password", "pw", "role", "list")
    assert cli.credentials(args, Prompts()) == {"user": "a:b", "password": "pw"}


def test_no_user_no_credentials_and_password_alone_is_refused() -> None:
    assert cli.credentials(parse("role", "list"), Prompts()) == {}
    with pytest.raises(UsageError, match="--password needs --user"):
        cli.credentials(parse("--password", "x", "role", "list"), Prompts())


# -- role grant-permission / revoke-permission ranges (etcdctl's permRange) -------------------------


@pytest.mark.parametrize("key, end, prefix, from_key, expected", [
    ("k", None, False, False, (b"k", b"")),
    ("k", "m", False, False, (b"k", b"m")),
    ("/app/", None, True, False, (b"/app/", b"/app0")),
    ("k", None, False, True, (b"k", b"\0")),
    ("", None, False, False, (b"\0", b"")),
    ("", None, True, False, (b"\0", b"\0")),
    ("", None, False, True, (b"\0", b"\0")),
])
def test_permission_range(key: str, end: str | None, prefix: bool, from_key: bool,
                          expected: tuple[bytes, bytes]) -> None:
    assert cli_auth.permission_range(key, end, prefix, from_key) == expected


@pytest.mark.parametrize("end, prefix, from_key, message", [
    (None, True, True, "--from-key and --prefix flags are mutually exclusive"),
    ("z", True, False, "unexpected endkey argument with --prefix flag"),
    ("z", False, True, "unexpected endkey argument with --from-key flag"),
])
def test_permission_range_refusals(end: str | None, prefix: bool, from_key: bool, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        cli_auth.permission_range("k", end, prefix, from_key)


def test_grant_permission_builds_the_request_and_prints_role_updated() -> None:
    client = FakeClient()
    out = run(["role", "grant-permission", "reader", "read", "/app/", "--prefix"], client)
    assert out == "Role reader updated\n"
    assert client.calls == [("role_grant_permission", ("reader", PermType.READ, b"/app/", b"/app0"))]
    run(["role", "grant-permission", "rw", "ReadWrite", "a", "b"], client)
    assert client.calls[-1] == ("role_grant_permission", ("rw", PermType.READWRITE, b"a", b"b"))


def test_grant_permission_refuses_an_unknown_type() -> None:
    with pytest.raises(UsageError, match="invalid permission type: admin"):
        cli_auth.prepare(parse("role", "grant-permission", "r", "admin", "k"), Prompts(), io.StringIO())


def test_missing_arguments_are_usage_errors() -> None:
    for argv in (["role", "grant-permission", "r", "read"], ["user", "grant-role", "u"], ["auth"], ["user", "get"]):
        with pytest.raises(UsageError):
            parse(*argv)


@pytest.mark.parametrize("argv, line", [
    (["role", "revoke-permission", "r1", "key"], "Permission of key key is revoked from role r1\n"),
    (["role", "revoke-permission", "r1", "a", "b"], "Permission of range [a, b) is revoked from role r1\n"),
    (["role", "revoke-permission", "r1", "a", "--from-key"],
     "Permission of range [a, <open ended> is revoked from role r1\n"),
])
def test_revoke_permission_lines(argv: list[str], line: str) -> None:
    assert run(argv, FakeClient()) == line


# -- the simple printer's lines ---------------------------------------------------------------


def test_simple_messages_of_the_changes() -> None:
    client = FakeClient()
    assert run(["role", "add", "r1"], client) == "Role r1 created\n"
    assert run(["role", "delete", "r1"], client) == "Role r1 deleted\n"
    assert run(["user", "delete", "u1"], client) == "User u1 deleted\n"
    assert run(["user", "grant-role", "u1", "r1"], client) == "Role r1 is granted to user u1\n"
    assert run(["user", "revoke-role", "u1", "r1"], client) == "Role r1 is revoked from user u1\n"
    assert run(["auth", "disable"], client) == "Authentication Disabled\n"


def test_role_get_lists_read_then_write_as_etcdctl() -> None:
    perms = (Permission(PermType.READ, b"/app/", b"/app0"), Permission(PermType.WRITE, b"solo"),
             Permission(PermType.READWRITE, b"a", b"c"), Permission(PermType.READ, b"from", b"\0"))
    assert role_get_lines("r1", perms) == [
        "Role r1", "KV Read:", "\t[/app/, /app0) (prefix /app/)", "\t[a, c)", "\t[from, <open ended>",
        "KV Write:", "\tsolo", "\t[a, c)"]


def test_user_get_and_lists() -> None:
    assert user_get_lines("u1", ("r1", "r2")) == ["User: u1", "Roles: r1 r2"]
    assert user_get_lines("u1", ()) == ["User: u1", "Roles:"]
    client = FakeClient(user_list=UserListResponse(5, ("alice", "root")), role_list=RoleListResponse(5, ("r", "root")))
    assert run(["user", "list"], client) == "alice\nroot\n"
    assert run(["role", "list"], client) == "r\nroot\n"


def test_user_get_detail_prints_each_role() -> None:
    client = FakeClient(user_get=UserGetResponse(5, ("r1",)),
                        role_get=RoleGetResponse(5, (Permission(PermType.READ, b"k"),)))
    assert run(["user", "get", "u1", "--detail"], client) == "User: u1\n\nRole r1\nKV Read:\n\tk\nKV Write:\n"


def test_auth_status_lines() -> None:
    assert auth_status_lines(AuthStatusResponse(9, True, 4)) == ["Authentication Status: true", "AuthRevision: 4"]


def test_revoked_permission_line_shows_binary_keys_in_base64() -> None:
    assert revoked_permission_line("r", b"\xff", b"") == "Permission of key base64:/w== is revoked from role r"


# -- auth enable (etcdctl 3.4: adds the root role when missing) ---------------------------------


def test_auth_enable_adds_the_root_role_then_enables() -> None:
    client = FakeClient(auth_enable=[RootRoleNotExist(), AuthDone(8, 4)], role_list=RoleListResponse(5, ()))
    assert run(["auth", "enable"], client) == "Authentication Enabled\n"
    assert [name for name, _ in client.calls] == ["auth_enable", "role_list", "role_add", "user_grant_role",
                                                  "auth_enable"]
    assert client.calls[2:4] == [("role_add", ("root",)), ("user_grant_role", ("root", "root"))]


def test_auth_enable_with_an_existing_root_role_only_grants_it() -> None:
    client = FakeClient(auth_enable=[RootRoleNotExist(), AuthDone(8, 4)],
                        role_list=RoleListResponse(5, ("root",)))
    run(["auth", "enable"], client)
    assert [name for name, _ in client.calls] == ["auth_enable", "role_list", "user_grant_role", "auth_enable"]


def test_auth_errors_propagate_to_main() -> None:
    client = FakeClient(role_add=RoleAlreadyExists())
    with pytest.raises(RoleAlreadyExists):
        run(["role", "add", "r1"], client)


# -- json ----------------------------------------------------------------------------------------


def test_json_output() -> None:
    client = FakeClient(role_get=RoleGetResponse(5, (Permission(PermType.READWRITE, b"k", b"\0"),)))
    doc = json.loads(run(["role", "get", "r", "-w", "json"], client))
    assert doc == {"header": {"revision": 5}, "perms": [
        {"perm_type": "READWRITE", "key": "k", "key_encoding": "utf-8", "range_end": "AA==",
         "range_end_encoding": "base64"}]}
    assert json.loads(run(["role", "add", "r", "-w", "json"], client)) == {
        "header": {"revision": 7, "auth_revision": 3}}
    assert auth_json(AuthStatusResponse(2, False, 1)) == {"header": {"revision": 2}, "enabled": False,
                                                          "auth_revision": 1}


def test_table_is_not_supported_as_in_etcdctl() -> None:
    with pytest.raises(UsageError, match="table not supported as output format"):
        cli_auth.prepare(parse("role", "list", "-w", "table"), Prompts(), io.StringIO())


# -- main: etcd's error line and exit status --------------------------------------------------------


def test_main_prints_etcds_error(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    def refused(self: Any) -> Any:
        raise PermissionDenied()
    monkeypatch.setattr(cli.Client, "role_list", refused)
    monkeypatch.setattr(cli, "dial", lambda endpoints, timeout: endpoints[0])  # as if 127.0.0.1:1 listened
    status = cli.main(["--endpoints", "127.0.0.1:1", "role", "list"], io.StringIO(), Prompts())
    assert status == 1
    assert capsys.readouterr().err == "Error: etcdserver: permission denied\n"


def test_main_usage_error_exits_128(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["role", "grant-permission", "r"], io.StringIO(), Prompts()) == 128
    assert capsys.readouterr().err.startswith("Error: ")
