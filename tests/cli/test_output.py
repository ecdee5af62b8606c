"""Output formats: printable UTF-8 as text, other bytes as base64 (flagged), stable JSON."""
from __future__ import annotations

import base64
import json

from cluster.kv import CompactResponse, DeleteResponse, KeyValue, PutResponse, RangeResponse, TxnResponse
from cluster.output import (
    format_table, kv_json, printable_text, response_json, response_simple, response_table, show_bytes,
)

KV = KeyValue(b"greeting", b"hello", 2, 3, 2, 0)
BINARY = KeyValue(b"bin", b"\x00\xff\x10", 4, 4, 1, 0)


def test_printable_utf8_is_text_and_other_bytes_are_base64() -> None:
    assert printable_text("olá\tmundo\n".encode()) == "olá\tmundo\n"
    assert printable_text(b"\x00\xff") is None
    assert printable_text(b"bell\x07") is None
    assert show_bytes(b"\x00\xff\x10") == "base64:" + base64.b64encode(b"\x00\xff\x10").decode()


def test_kv_json_flags_each_encoding() -> None:
    assert kv_json(KV) == {"key": "greeting", "key_encoding": "utf-8", "value": "hello", "value_encoding": "utf-8",
                           "create_revision": 2, "mod_revision": 3, "version": 2, "lease": 0}
    binary = kv_json(BINARY)
    assert binary["value_encoding"] == "base64"
    assert base64.b64decode(binary["value"]) == b"\x00\xff\x10"
    assert "value" not in kv_json(KV, keys_only=True)


def test_get_simple_prints_key_then_value_like_etcdctl() -> None:
    response = RangeResponse(5, (KV, BINARY), 2, False)
    assert response_simple(response) == [b"greeting", b"hello", b"bin", b"\x00\xff\x10"]  # raw, as etcdctl
    assert response_simple(response, keys_only=True) == [b"greeting", b"bin"]
    assert response_simple(response, value_only=True)[0] == b"hello"
    assert response_simple(response, count_only=True) == [b"2"]


def test_json_shapes_are_stable() -> None:
    doc = response_json(RangeResponse(5, (KV,), 1, True))
    assert json.loads(json.dumps(doc)) == {"header": {"revision": 5}, "kvs": [kv_json(KV)], "count": 1,
                                           "more": True, "serializable": False}
    assert response_json(PutResponse(6)) == {"header": {"revision": 6}, "prev_kv": None}
    assert response_json(DeleteResponse(7, 1, (KV,))) == {"header": {"revision": 7}, "deleted": 1,
                                                          "prev_kvs": [kv_json(KV)]}
    assert response_json(CompactResponse(8, 4)) == {"header": {"revision": 8}, "compact_revision": 4}
    txn = response_json(TxnResponse(9, True, (PutResponse(9), RangeResponse(9, (), 0, False))))
    assert txn["succeeded"] is True and [r["type"] for r in txn["responses"]] == ["put", "range"]


def test_simple_forms_of_writes() -> None:
    assert response_simple(PutResponse(3)) == [b"OK"]
    assert response_simple(DeleteResponse(3, 2)) == [b"2"]
    assert response_simple(TxnResponse(3, False, (PutResponse(3),))) == [b"FAILURE", b"", b"OK"]
    assert response_simple(CompactResponse(3, 2)) == [b"compacted revision 2"]


def test_tables_align_columns() -> None:
    table = format_table(["A", "LONGER"], [["xyz", "1"], ["", "22"]])
    lines = table.splitlines()
    assert len({len(line) for line in lines}) == 1
    assert lines[1] == "| A   | LONGER |"
    assert "| greeting | hello |" in response_table(RangeResponse(5, (KV,), 1, False))
