"""The CLI's `auth`, `user` and `role` commands: etcdctl 3.4's, with its flags,
its password prompts and its output, word for word (etcdctl/ctlv3/command/
{auth,user,role}_command.go and printer_simple.go).

    python -m cluster user add root                  # asks for the password twice
    python -m cluster auth enable                    # adds the root role if missing
    python -m cluster --user root role add reader
    python -m cluster --user root:secret role grant-permission reader read /app/ --prefix
    python -m cluster --user root user grant-role alice reader

Every command's arguments are checked, and every password read, before any
connection is made (`prepare`); the returned `AuthCall` then runs against a
client. `-w json` prints one object (shapes in docs/operations.md); etcdctl has
no table for these commands, nor has this CLI.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

from cluster.client import Client
from cluster.kv import ALL_KEYS_END, prefix_end
from cluster.kv.auth import ROOT, PermType
from cluster.kv.errors import RootRoleNotExist
from cluster.output import (
    AuthResponse, auth_json, auth_status_lines, dumps, revoked_permission_line, role_get_lines, user_get_lines,
)
from cluster.usage import BadFeatureError, UsageError

#: The top-level commands this module parses and runs.
AUTH_COMMANDS = ("auth", "user", "role")

#: Asks for a password without echoing it (getpass.getpass; tests pass their own).
Ask = Callable[[str], str]


@dataclass(frozen=True, slots=True)
class Printer:
    """Where and how a command prints: etcdctl's simple lines, or (-w json) one
    JSON object per response."""

    out: TextIO
    as_json: bool = False

    def show(self, response: AuthResponse, lines: list[str]) -> None:
        text = dumps(auth_json(response)) if self.as_json else "\n".join(lines)
        if text:
            print(text, file=self.out)


#: A prepared command: runs against a client, prints, returns the exit status.
AuthCall = Callable[[Client, Printer], int]


def _flag(text: str) -> bool:
    """A boolean flag's value as cobra takes it: `--interactive=false`."""
    lowered = text.lower()
    if lowered in ("true", "t", "1"):
        return True
    if lowered in ("false", "f", "0"):
        return False
    raise argparse.ArgumentTypeError(f"{text!r} is not a boolean (true or false)")


def add_parsers(sub: Any, common: argparse.ArgumentParser, parser_class: type[argparse.ArgumentParser]) -> None:
    """The `auth`, `user` and `role` command groups under the CLI's subparsers."""
    auth = sub.add_parser("auth", parents=[common], help="auth enable | disable | status")
    auth_actions = auth.add_subparsers(dest="action", metavar="enable|disable|status", parser_class=parser_class)
    auth_actions.required = True
    auth_actions.add_parser("enable", parents=[common], help="enable authentication (adds the root role if missing)")
    auth_actions.add_parser("disable", parents=[common], help="disable authentication")
    auth_actions.add_parser("status", parents=[common], help="whether authentication is enabled")

    user = sub.add_parser("user", parents=[common], help="user add|delete|get|list|passwd|grant-role|revoke-role")
    users = user.add_subparsers(dest="action", metavar="ACTION", parser_class=parser_class)
    users.required = True
    add = users.add_parser("add", parents=[common], help="add <user name or user:password>")
    add.add_argument("name", metavar="NAME[:PASSWORD]")
    add.add_argument("--interactive", type=_flag, nargs="?", const=True, default=True, metavar="true|false",
                     help="ask for the password on the terminal (false: read it from stdin)")
    add.add_argument("--new-user-password", default="", metavar="PASSWORD",
                     help="supply the password from the command line")
    add.add_argument("--no-password", action="store_true",
                     help="create a user without password (TLS client certificate CN based auth only)")
    users.add_parser("delete", parents=[common], help="delete <user name>").add_argument("name", metavar="NAME")
    get = users.add_parser("get", parents=[common], help="get <user name> [--detail]")
    get.add_argument("name", metavar="NAME")
    get.add_argument("--detail", action="store_true", help="show the permissions of the roles granted to the user")
    users.add_parser("list", parents=[common], help="list all users")
    passwd = users.add_parser("passwd", parents=[common], help="passwd <user name>: change a user's password")
    passwd.add_argument("name", metavar="NAME")
    passwd.add_argument("--interactive", type=_flag, nargs="?", const=True, default=True, metavar="true|false",
                        help="ask for the password on the terminal (false: read it from stdin)")
    for action, text in (("grant-role", "grant a role to a user"), ("revoke-role", "revoke a role from a user")):
        parser = users.add_parser(action, parents=[common], help=f"{action} <user name> <role name>: {text}")
        parser.add_argument("name", metavar="USER")
        parser.add_argument("role", metavar="ROLE")

    role = sub.add_parser("role", parents=[common], help="role add|delete|get|list|grant-permission|revoke-permission")
    roles = role.add_subparsers(dest="action", metavar="ACTION", parser_class=parser_class)
    roles.required = True
    for action, text in (("add", "add a new role"), ("delete", "delete a role"), ("get", "a role's permissions")):
        roles.add_parser(action, parents=[common], help=f"{action} <role name>: {text}").add_argument(
            "role", metavar="ROLE")
    roles.add_parser("list", parents=[common], help="list all roles")
    grant = roles.add_parser("grant-permission", parents=[common],
                             help="grant-permission [--prefix|--from-key] <role> read|write|readwrite <key> [endkey]")
    grant.add_argument("role", metavar="ROLE")
    grant.add_argument("perm_type", metavar="read|write|readwrite")
    _permission_range_args(grant, "grant")
    revoke = roles.add_parser("revoke-permission", parents=[common],
                              help="revoke-permission [--prefix|--from-key] <role> <key> [endkey]")
    revoke.add_argument("role", metavar="ROLE")
    _permission_range_args(revoke, "revoke")


def _permission_range_args(parser: argparse.ArgumentParser, verb: str) -> None:
    parser.add_argument("key", metavar="KEY")
    parser.add_argument("range_end", metavar="ENDKEY", nargs="?")
    parser.add_argument("--prefix", action="store_true", help=f"{verb} a prefix permission")
    parser.add_argument("--from-key", action="store_true",
                        help=f"{verb} a permission of the keys greater than or equal to KEY (byte compare)")


def permission_range(key: str, range_end: str | None, prefix: bool, from_key: bool) -> tuple[bytes, bytes]:
    """etcdctl's permRange: an empty key is b"\\0" (with --prefix or --from-key: the
    whole key space), --prefix the prefix's end, --from-key open ended."""
    if prefix and from_key:
        raise UsageError("--from-key and --prefix flags are mutually exclusive")
    if not key:
        if range_end:
            raise UsageError("an empty key takes no endkey")
        return ALL_KEYS_END, (ALL_KEYS_END if prefix or from_key else b"")
    start = key.encode()
    if range_end is None:
        if prefix:
            return start, prefix_end(start)
        return start, (ALL_KEYS_END if from_key else b"")
    if prefix:
        raise UsageError("unexpected endkey argument with --prefix flag")
    if from_key:
        raise UsageError("unexpected endkey argument with --from-key flag")
    return start, range_end.encode()


def perm_type(text: str) -> PermType:
    """etcd's StrToPermissionType: read, write or readwrite, in any case."""
    try:
        return PermType[text.upper()]
    except KeyError:
        raise UsageError(f"invalid permission type: {text}") from None


def ask_new_password(name: str, ask: Ask) -> str:
    """etcdctl's readPasswordInteractive: twice, not empty, the same both times."""
    first = ask(f"Password of {name}: ")
    if not first:
        raise UsageError("empty password")
    if ask(f"Type password of {name} again for confirmation: ") != first:
        raise UsageError("given passwords are different")
    return first


def _password_from_stdin(stdin: TextIO) -> str:
    """etcdctl's `fmt.Scanf("%s")`: the first word on stdin."""
    words = stdin.readline().split()
    return words[0] if words else ""


def _user_add_credentials(args: argparse.Namespace, ask: Ask, stdin: TextIO) -> tuple[str, str]:
    if args.no_password:
        return args.name, ""
    if args.new_user_password:
        return args.name, args.new_user_password
    name, colon, password = args.name.partition(":")
    if colon:
        if not name:
            raise UsageError("empty user name is not allowed")
        return name, password
    return name, (ask_new_password(name, ask) if args.interactive else _password_from_stdin(stdin))


def prepare(args: argparse.Namespace, ask: Ask, stdin: TextIO = sys.stdin) -> AuthCall:
    """Check the command line and read any password now; the command to run."""
    if args.write_out == "table":
        raise BadFeatureError("table not supported as output format")  # etcdctl: ExitBadFeature
    action = args.action
    if args.command == "auth":
        return {"enable": _auth_enable, "disable": _auth_disable, "status": _auth_status}[action]
    if args.command == "user":
        return _prepare_user(args, ask, stdin)
    return _prepare_role(args)


def _prepare_user(args: argparse.Namespace, ask: Ask, stdin: TextIO) -> AuthCall:
    action = args.action
    if action == "add":
        name, password = _user_add_credentials(args, ask, stdin)
        return _change(lambda c: c.user_add(name, password, no_password=args.no_password), f"User {name} created")
    if action == "passwd":
        password = ask_new_password(args.name, ask) if args.interactive else _password_from_stdin(stdin)
        return _change(lambda c: c.user_change_password(args.name, password), "Password updated")
    if action == "delete":
        return _change(lambda c: c.user_delete(args.name), f"User {args.name} deleted")
    if action == "grant-role":
        return _change(lambda c: c.user_grant_role(args.name, args.role),
                       f"Role {args.role} is granted to user {args.name}")
    if action == "revoke-role":
        return _change(lambda c: c.user_revoke_role(args.name, args.role),
                       f"Role {args.role} is revoked from user {args.name}")
    if action == "list":
        return _show(lambda c: c.user_list(), lambda r: list(r.users))
    return _user_get(args.name, args.detail)


def _prepare_role(args: argparse.Namespace) -> AuthCall:
    action = args.action
    if action == "add":
        return _change(lambda c: c.role_add(args.role), f"Role {args.role} created")
    if action == "delete":
        return _change(lambda c: c.role_delete(args.role), f"Role {args.role} deleted")
    if action == "get":
        return _show(lambda c: c.role_get(args.role), lambda r: role_get_lines(args.role, r.perms))
    if action == "list":
        return _show(lambda c: c.role_list(), lambda r: list(r.roles))
    key, end = permission_range(args.key, args.range_end, args.prefix, args.from_key)
    if action == "grant-permission":
        kind = perm_type(args.perm_type)
        return _change(lambda c: c.role_grant_permission(args.role, kind, key, end), f"Role {args.role} updated")
    return _change(lambda c: c.role_revoke_permission(args.role, key, end),
                   revoked_permission_line(args.role, args.key.encode(), end))


# -- running ----------------------------------------------------------------------------


def _change(call: Callable[[Client], AuthResponse], done: str) -> AuthCall:
    def run(client: Client, printer: Printer) -> int:
        printer.show(call(client), [done])
        return 0
    return run


def _show(call: Callable[[Client], Any], lines: Callable[[Any], list[str]]) -> AuthCall:
    def run(client: Client, printer: Printer) -> int:
        response = call(client)
        printer.show(response, lines(response))
        return 0
    return run


def _user_get(name: str, detail: bool) -> AuthCall:
    def run(client: Client, printer: Printer) -> int:
        response = client.user_get(name)
        if not detail or printer.as_json:
            printer.show(response, user_get_lines(name, response.roles))
            return 0
        lines = [f"User: {name}"]  # etcdctl: the user, then each role as `role get` prints it
        for role in response.roles:
            lines += [""] + role_get_lines(role, client.role_get(role).perms)
        print("\n".join(lines), file=printer.out)
        return 0
    return run


def _auth_enable(client: Client, printer: Printer) -> int:
    """etcdctl 3.4's: when AuthEnable says the root user lacks the root role, add
    the role (if missing), grant it to root and enable again."""
    try:
        response = client.auth_enable()
    except RootRoleNotExist:
        if ROOT not in client.role_list().roles:
            client.role_add(ROOT)
        client.user_grant_role(ROOT, ROOT)
        response = client.auth_enable()
    printer.show(response, ["Authentication Enabled"])
    return 0


def _auth_disable(client: Client, printer: Printer) -> int:
    printer.show(client.auth_disable(), ["Authentication Disabled"])
    return 0


def _auth_status(client: Client, printer: Printer) -> int:
    response = client.auth_status()
    printer.show(response, auth_status_lines(response))
    return 0
