"""One part of a session of the `pyetcd` client (PyPI etcd-sdk-python) against an
etcd v3 endpoint, printed as one JSON object on stdout.

Run as a script (`python pyetcd_session.py HOST:PORT PART PREFIX`), never
imported by the tests: pyetcd's generated modules register etcd's proto names
(mvccpb.KeyValue, etcdserverpb.*) in protobuf's default descriptor pool, and so
do jangada's cluster.etcdpb modules, so the two cannot live in one process
("duplicate symbol 'mvccpb.KeyValue'", whichever is imported first). Only what
the client returns is printed, and no absolute revision or id (they differ
between systems), so outputs from jangada and from etcd compare as they are.
"""
from __future__ import annotations

import json
import sys
import threading
from typing import Any

import pyetcd

TIMEOUT = 10.0


def _meta(meta: Any) -> dict[str, Any] | None:
    if meta is None:
        return None
    return {"key": meta.key.decode(), "version": meta.version,
            "mod_minus_create": meta.mod_revision - meta.create_revision, "has_lease": bool(meta.lease_id)}


def _value(got: tuple[bytes | None, Any]) -> list[Any]:
    value, meta = got
    return [value.decode() if value is not None else None, _meta(meta)]


def kv(client: pyetcd.Etcd3Client, p: str) -> dict[str, Any]:
    client.put(f"{p}a", "1")
    previous = client.put(f"{p}a", "2", prev_kv=True)
    client.put(f"{p}b", b"\x00bin")
    client.put(f"{p}c", "3")
    return {
        "prev_kv": previous.prev_kv.value.decode(),
        "get": _value(client.get(f"{p}a")),
        "get_missing": _value(client.get(f"{p}zz")),
        "get_prefix": [[m.key.decode(), v.hex()] for v, m in client.get_prefix(p)],
        "get_prefix_desc": [m.key.decode() for _, m in client.get_prefix(p, sort_order="descend")],
        "get_range": [m.key.decode() for _, m in client.get_range(f"{p}a", f"{p}c")],
        "delete": client.delete(f"{p}a"),
        "delete_missing": client.delete(f"{p}a"),
        "delete_prev": [x.key.decode() for x in client.delete(f"{p}b", prev_kv=True, return_response=True).prev_kvs],
        "delete_prefix": client.delete_prefix(p).deleted,
        "after": [m.key.decode() for _, m in client.get_prefix(p)],
    }


def txn(client: pyetcd.Etcd3Client, p: str) -> dict[str, Any]:
    t = client.transactions
    client.put(f"{p}k", "v1")
    first = client.transaction(
        compare=[t.value(f"{p}k") == "v1", t.version(f"{p}k") > 0, t.create(f"{p}k") != 0, t.mod(f"{p}k") > 0],
        success=[t.put(f"{p}k", "v2"), t.get(f"{p}k")], failure=[t.put(f"{p}k", "failed")])
    second = client.transaction(compare=[t.value(f"{p}k") == "v1"], success=[t.put(f"{p}k", "v3")],
                                failure=[t.get(f"{p}k"), t.delete(f"{p}other")])
    third = client.transaction(compare=[t.version(f"{p}new") < 1], success=[t.put(f"{p}new", "n")], failure=[])
    nested = client.transaction(compare=[], success=[t.txn(compare=[t.value(f"{p}new") != "n"],
                                                            success=[t.put(f"{p}x", "1")],
                                                            failure=[t.get(f"{p}new")])], failure=[])
    return {
        "first": [first[0], [[v.decode(), m.version] for v, m in first[1][1]]],
        "second": [second[0], [[v.decode(), m.version] for v, m in second[1][0]],
                   second[1][1].response_delete_range.deleted],
        "third": third[0],
        "nested": [nested[0], nested[1][0].response_txn.succeeded,
                   [r.WhichOneof("response") for r in nested[1][0].response_txn.responses]],
        "replace": [client.replace(f"{p}k", "v2", "v4"), client.replace(f"{p}k", "v2", "v5")],
        "put_if_not_exists": [client.put_if_not_exists(f"{p}k", "x"), client.put_if_not_exists(f"{p}fresh", "x")],
        "final": [[m.key.decode(), v.decode()] for v, m in client.get_prefix(p)],
    }


def watch(client: pyetcd.Etcd3Client, p: str) -> dict[str, Any]:
    seen: list[list[str]] = []
    done = threading.Event()

    def callback(response: Any) -> None:
        for event in getattr(response, "events", []):
            seen.append([type(event).__name__, event.key.decode(), event.value.decode()])
        if len(seen) >= 2:
            done.set()

    watch_id = client.add_watch_prefix_callback(p, callback)
    client.put(f"{p}w", "1")
    client.delete(f"{p}w")
    finished = done.wait(TIMEOUT)
    client.cancel_watch(watch_id)
    events, cancel = client.watch(f"{p}it")
    timer = threading.Timer(TIMEOUT, cancel)
    timer.start()
    client.put(f"{p}it", "x")
    first = next(iter(events), None)
    cancel()
    timer.cancel()
    return {"callback_done": finished, "callback": seen[:2],
            "iterator": None if first is None else [type(first).__name__, first.key.decode(), first.value.decode()]}


def lease(client: pyetcd.Etcd3Client, p: str) -> dict[str, Any]:
    granted = client.lease(30)
    client.put(f"{p}l", "v", lease=granted)
    info = client.get_lease_info(granted.id)
    refreshed = granted.refresh()
    ttl_after = granted.remaining_ttl
    held = _value(client.get(f"{p}l"))
    granted.revoke()
    return {"granted_ttl": info.grantedTTL, "ttl_in_range": 0 < info.TTL <= 30,
            "keys": [k.decode() for k in info.keys],
            "refresh_ttl": refreshed[0].TTL, "remaining_in_range": 0 < ttl_after <= 30,
            "held": held, "after_revoke": _value(client.get(f"{p}l"))}


def lock(client: pyetcd.Etcd3Client, p: str) -> dict[str, Any]:
    first = client.lock(f"{p}lock", ttl=10)
    second = client.lock(f"{p}lock", ttl=10)
    got_first = first.acquire(timeout=5)
    got_second = second.acquire(timeout=1)
    held = first.is_acquired()
    first.release()
    after_release = first.is_acquired()
    got_second_later = second.acquire(timeout=5)
    second.release()
    return {"first": got_first, "second_while_held": got_second, "held": held, "after_release": after_release,
            "second_after_release": got_second_later}


def members(client: pyetcd.Etcd3Client, p: str) -> dict[str, Any]:
    listed = list(client.members)
    return {"count": len(listed), "named": all(m.name for m in listed),
            "peer_urls": all(m.peer_urls for m in listed), "client_urls": all(m.client_urls for m in listed)}


def status(client: pyetcd.Etcd3Client, p: str) -> dict[str, Any]:
    found = client.status()
    return {"version_3_4": found.version.startswith("3.4."), "leader_known": found.leader is not None,
            "raft_term_positive": found.raft_term > 0, "raft_index_positive": found.raft_index > 0}


PARTS = {"kv": kv, "txn": txn, "watch": watch, "lease": lease, "lock": lock, "members": members, "status": status}


def main() -> None:
    endpoint, part, prefix = sys.argv[1:4]
    host, port = endpoint.rsplit(":", 1)
    client = pyetcd.client(host=host, port=int(port), timeout=TIMEOUT)
    try:
        print(json.dumps(PARTS[part](client, prefix), sort_keys=True))
    finally:
        client.close()


if __name__ == "__main__":
    main()
