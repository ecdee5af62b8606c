"""How the CLI shows results: `-w simple`, `-w table` and `-w json`.

Keys and values are bytes. `simple` writes them raw, as etcdctl does: `get
--print-value-only` gives back the exact bytes that were put, UTF-8 or not (the
lines are bytes, written to the binary stdout). `table` shows printable UTF-8 as
text and anything else base64-encoded with a `base64:` prefix, so that a table
stays readable on a terminal. The JSON form says which encoding each string uses
(`"key_encoding": "utf-8" | "base64"`), so a script can always recover the exact
bytes. Lease ids are hex everywhere but in JSON, where they are numbers (etcd's
JSON) with an `id_hex` beside them. The JSON shapes are documented in
docs/operations.md and are stable: tests and scripts parse them.
"""
from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from typing import Any, TextIO

from cluster.kv.auth import (
    AuthDone, AuthStatusResponse, Permission, PermType, RoleGetResponse, RoleListResponse, UserGetResponse,
    UserListResponse,
)
from cluster.kv import (
    ALL_KEYS_END, CompactResponse, DeleteResponse, KeyValue, LeaseGrantResponse, LeaseKeepAliveResponse,
    LeaseLeasesResponse, LeaseRevokeResponse, LeaseTimeToLiveResponse, PutResponse, RangeResponse,
    Response, TxnResponse, prefix_end,
)

FORMATS = ("simple", "table", "json")


def printable_text(data: bytes) -> str | None:
    """`data` as text if it is UTF-8 whose characters are printable (or ordinary
    whitespace), else None."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return text if all(c.isprintable() or c in "\n\t\r" for c in text) else None


def show_bytes(data: bytes) -> str:
    text = printable_text(data)
    return text if text is not None else "base64:" + base64.b64encode(data).decode("ascii")


def bytes_json(name: str, data: bytes) -> dict[str, str]:
    text = printable_text(data)
    if text is not None:
        return {name: text, f"{name}_encoding": "utf-8"}
    return {name: base64.b64encode(data).decode("ascii"), f"{name}_encoding": "base64"}


def kv_json(kv: KeyValue, keys_only: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {**bytes_json("key", kv.key)}
    if not keys_only:
        out.update(bytes_json("value", kv.value))
    out.update(create_revision=kv.create_revision, mod_revision=kv.mod_revision, version=kv.version,
               lease=kv.lease)
    return out


def response_json(response: Response, keys_only: bool = False) -> dict[str, Any]:
    """The JSON object for one response (etcdctl-like, with a `header.revision`)."""
    head: dict[str, Any] = {"header": {"revision": response.revision}} if hasattr(response, "revision") else {}
    match response:
        case PutResponse(_, prev_kv):
            return {**head, "prev_kv": kv_json(prev_kv) if prev_kv else None}
        case RangeResponse(_, kvs, count, more, serializable):
            return {**head, "kvs": [kv_json(kv, keys_only) for kv in kvs], "count": count, "more": more,
                    "serializable": serializable}
        case DeleteResponse(_, deleted, prev_kvs):
            return {**head, "deleted": deleted, "prev_kvs": [kv_json(kv) for kv in prev_kvs]}
        case TxnResponse(_, succeeded, responses):
            return {**head, "succeeded": succeeded,
                    "responses": [{"type": _kind(r), **response_json(r)} for r in responses]}
        case CompactResponse(_, compact_revision):
            return {**head, "compact_revision": compact_revision}
    return head


def _kind(response: Response) -> str:
    return {PutResponse: "put", RangeResponse: "range", DeleteResponse: "delete",
            TxnResponse: "txn"}.get(type(response), type(response).__name__)


def response_simple(response: Response, keys_only: bool = False, count_only: bool = False,
                    value_only: bool = False) -> list[bytes]:
    """etcdctl's simple form, in bytes: get prints key and value lines (raw), put
    prints OK, del prints the number deleted, txn prints SUCCESS/FAILURE then each
    response."""
    match response:
        case PutResponse(_, prev_kv):
            return [b"OK"] + ([prev_kv.key, prev_kv.value] if prev_kv else [])
        case RangeResponse(_, kvs, count):
            if count_only:
                return [str(count).encode()]
            lines: list[bytes] = []
            for kv in kvs:
                if not value_only:
                    lines.append(kv.key)
                if not keys_only:
                    lines.append(kv.value)
            return lines
        case DeleteResponse(_, deleted, prev_kvs):
            out = [str(deleted).encode()]
            for kv in prev_kvs:
                out += [kv.key, kv.value]
            return out
        case TxnResponse(_, succeeded, responses):
            out = [b"SUCCESS" if succeeded else b"FAILURE"]
            for r in responses:
                out += [b""] + response_simple(r)
            return out
        case CompactResponse(revision, compact_revision):
            return [f"compacted revision {compact_revision}".encode()]
    return [repr(response).encode()]


def write_lines(out: TextIO, lines: Sequence[bytes]) -> None:
    """Raw bytes, one line each, to the binary buffer under the text stream `out`
    (flushing the text layer first, so that the order of the output holds). A
    stream with no buffer (io.StringIO) gets them decoded with surrogateescape."""
    data = b"".join(line + b"\n" for line in lines)
    buffer = getattr(out, "buffer", None)
    if buffer is None:
        out.write(data.decode("utf-8", "surrogateescape"))
        return
    out.flush()
    buffer.write(data)
    buffer.flush()


KV_HEADERS = ["KEY", "VALUE", "CREATE_REV", "MOD_REV", "VERSION", "LEASE"]


def response_table(response: Response, keys_only: bool = False, count_only: bool = False) -> str:
    match response:
        case RangeResponse(revision, kvs, count, more):
            if count_only:
                return format_table(["COUNT", "REVISION"], [[str(count), str(revision)]])
            rows = [[show_bytes(kv.key), "" if keys_only else show_bytes(kv.value), str(kv.create_revision),
                     str(kv.mod_revision), str(kv.version), f"{kv.lease:x}"] for kv in kvs]
            return format_table(KV_HEADERS, rows)
        case TxnResponse(revision, succeeded, responses):
            parts = [format_table(["RESULT", "REVISION"], [["SUCCESS" if succeeded else "FAILURE", str(revision)]])]
            return "\n".join(parts + [response_table(r) for r in responses])
        case DeleteResponse(revision, deleted):
            return format_table(["DELETED", "REVISION"], [[str(deleted), str(revision)]])
        case PutResponse(revision):
            return format_table(["RESULT", "REVISION"], [["OK", str(revision)]])
        case CompactResponse(revision, compact_revision):
            return format_table(["COMPACT_REVISION", "REVISION"], [[str(compact_revision), str(revision)]])
    return repr(response)


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """An ASCII table in etcdctl's style (deterministic: no terminal width games)."""
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row)]
    rule = "+" + "+".join("-" * (w + 2) for w in widths) + "+"

    def line(cells: Sequence[str]) -> str:
        return "|" + "|".join(f" {cell:<{w}} " for cell, w in zip(cells, widths)) + "|"
    return "\n".join([rule, line(headers), rule, *(line(r) for r in rows), rule])


def dumps(obj: Any) -> str:
    return json.dumps(obj, indent=2, sort_keys=False)


# -- leases (etcdctl's wording; ids in hex as etcdctl prints them) ----------------------------


def lease_json(response: Response) -> dict[str, Any]:
    """The JSON object for a lease response: ids as integers plus `id_hex`."""
    out: dict[str, Any] = {"header": {"revision": getattr(response, "revision", 0)}}
    match response:
        case LeaseGrantResponse(_, lease_id, ttl) | LeaseKeepAliveResponse(_, lease_id, ttl):
            out.update(id=lease_id, id_hex=f"{lease_id:x}", ttl=ttl)
        case LeaseRevokeResponse(_, deleted):
            out.update(deleted=deleted)
        case LeaseTimeToLiveResponse(_, lease_id, granted_ttl, ttl, keys):
            out.update(id=lease_id, id_hex=f"{lease_id:x}", granted_ttl=granted_ttl, ttl=ttl,
                       keys=[bytes_json("key", k) for k in keys])
        case LeaseLeasesResponse(_, ids):
            out.update(leases=[{"id": i, "id_hex": f"{i:x}"} for i in ids])
    return out


def lease_simple(response: Response, lease_id: int = 0) -> list[str]:
    match response:
        case LeaseGrantResponse(_, granted, ttl):
            return [f"lease {granted:x} granted with TTL({ttl}s)"]
        case LeaseKeepAliveResponse(_, renewed, ttl):
            return [f"lease {renewed:x} keepalived with TTL({ttl})"]
        case LeaseRevokeResponse(_, deleted):
            return [f"lease {lease_id:x} revoked ({deleted} keys deleted)"]
        case LeaseTimeToLiveResponse(_, found, granted_ttl, ttl, keys):
            line = f"lease {found:x} granted with TTL({granted_ttl}s), remaining({ttl}s)"
            if keys:
                line += ", attached keys([" + " ".join(show_bytes(k) for k in keys) + "])"
            return [line]
        case LeaseLeasesResponse(_, ids):
            return [f"found {len(ids)} leases"] + [f"{i:x}" for i in ids]
    return [repr(response)]


def lease_table(response: Response, lease_id: int = 0) -> str:
    match response:
        case LeaseGrantResponse(revision, granted, ttl) | LeaseKeepAliveResponse(revision, granted, ttl):
            return format_table(["ID", "TTL", "REVISION"], [[f"{granted:x}", str(ttl), str(revision)]])
        case LeaseRevokeResponse(revision, deleted):
            return format_table(["ID", "DELETED", "REVISION"], [[f"{lease_id:x}", str(deleted), str(revision)]])
        case LeaseTimeToLiveResponse(_, found, granted_ttl, ttl, keys):
            return format_table(["ID", "GRANTED_TTL", "REMAINING", "KEYS"],
                                [[f"{found:x}", str(granted_ttl), str(ttl), " ".join(show_bytes(k) for k in keys)]])
        case LeaseLeasesResponse(_, ids):
            return format_table(["ID"], [[f"{i:x}"] for i in ids])
    return repr(response)


# -- users, roles and authentication (etcdctl 3.4's simple printer, word for word) ------------
#
# etcdctl prints keys in permissions as raw strings; so do these (show_bytes for
# bytes that are not printable text).


def role_get_lines(role: str, perms: Sequence[Permission]) -> list[str]:
    """`role get`: the role, then its readable and its writable keys and ranges."""
    def shown(perm: Permission) -> str:
        key = show_bytes(perm.key)
        if not perm.range_end:
            return f"\t{key}"
        line = (f"\t[{key}, {show_bytes(perm.range_end)})" if perm.range_end != ALL_KEYS_END
                else f"\t[{key}, <open ended>")
        if prefix_end(perm.key) == perm.range_end:
            line += f" (prefix {key})"
        return line

    lines = [f"Role {role}", "KV Read:"]
    lines += [shown(p) for p in perms if p.perm_type in (PermType.READ, PermType.READWRITE)]
    lines.append("KV Write:")
    lines += [shown(p) for p in perms if p.perm_type in (PermType.WRITE, PermType.READWRITE)]
    return lines


def user_get_lines(user: str, roles: Sequence[str]) -> list[str]:
    return [f"User: {user}", "Roles:" + "".join(f" {role}" for role in roles)]


def revoked_permission_line(role: str, key: bytes, range_end: bytes) -> str:
    if not range_end:
        return f"Permission of key {show_bytes(key)} is revoked from role {role}"
    if range_end != ALL_KEYS_END:
        return f"Permission of range [{show_bytes(key)}, {show_bytes(range_end)}) is revoked from role {role}"
    return f"Permission of range [{show_bytes(key)}, <open ended> is revoked from role {role}"


def auth_status_lines(status: AuthStatusResponse) -> list[str]:
    """`auth status` (etcdctl 3.5's wording; 3.4 has no such command)."""
    return [f"Authentication Status: {str(status.enabled).lower()}", f"AuthRevision: {status.auth_revision}"]


AuthResponse = AuthDone | AuthStatusResponse | UserGetResponse | UserListResponse | RoleGetResponse | RoleListResponse


def permission_json(perm: Permission) -> dict[str, Any]:
    return {"perm_type": perm.perm_type.name, **bytes_json("key", perm.key), **bytes_json("range_end", perm.range_end)}


def auth_json(response: AuthResponse) -> dict[str, Any]:
    """The JSON object of an auth response: a header with the store revision (and,
    after a change, the auth revision), then its body."""
    head: dict[str, Any] = {"revision": response.revision}
    match response:
        case AuthDone(_, auth_revision):
            return {"header": {**head, "auth_revision": auth_revision}}
        case AuthStatusResponse(_, enabled, auth_revision):
            return {"header": head, "enabled": enabled, "auth_revision": auth_revision}
        case UserGetResponse(_, roles):
            return {"header": head, "roles": list(roles)}
        case UserListResponse(_, users):
            return {"header": head, "users": list(users)}
        case RoleGetResponse(_, perms):
            return {"header": head, "perms": [permission_json(p) for p in perms]}
        case RoleListResponse(_, roles):
            return {"header": head, "roles": list(roles)}
    return {"header": head}
