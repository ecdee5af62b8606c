"""The txn text format (etcdctl's): compares, blank line, success ops, blank line,
failure ops."""
from __future__ import annotations

import pytest

from cluster.kv import ALL_KEYS_END, Compare, CompareOp, CompareTarget, DeleteRange, Put, Range, prefix_end
from cluster.txnsyntax import TxnSyntaxError, parse_txn


def test_the_documented_example() -> None:
    text = 'mod("config") > "0"\n\nput config v2\nget config\n\nput config v1\n'
    compares, success, failure = parse_txn(text)
    assert compares == [Compare(b"config", CompareTarget.MOD, CompareOp.GREATER, 0)]
    assert success == [Put(b"config", b"v2"), Range(b"config")]
    assert failure == [Put(b"config", b"v1")]


def test_every_compare_target_and_operator() -> None:
    text = '\n'.join(['value("k") = "a b"', "version(k) != 3", 'create("k") < 10', "mod(k) == 2",
                      'lease("k") = "0"'])
    compares, success, failure = parse_txn(text)
    assert [c.target for c in compares] == [CompareTarget.VALUE, CompareTarget.VERSION, CompareTarget.CREATE,
                                            CompareTarget.MOD, CompareTarget.LEASE]
    assert compares[0].operand == b"a b" and compares[1].op is CompareOp.NOT_EQUAL
    assert success == failure == []


def test_ops_with_ranges_and_flags() -> None:
    _, success, failure = parse_txn('\nget app/ --prefix --limit 2 --keys-only\ndel a z\n\n'
                                    'del old --from-key\nput "key with space" "v 1"\n')
    assert success == [Range(b"app/", prefix_end(b"app/"), limit=2, keys_only=True), DeleteRange(b"a", b"z")]
    assert failure == [DeleteRange(b"old", ALL_KEYS_END), Put(b"key with space", b"v 1")]


def test_comments_and_no_compares() -> None:
    assert parse_txn("# unconditional\n\nput a 1\n") == ([], [Put(b"a", b"1")], [])


@pytest.mark.parametrize("text, line, problem", [
    ('size("k") = 1', 1, "not a compare"),
    ('version("k") = "x"', 1, "integer"),
    ('\nput onlykey', 2, "put takes KEY VALUE"),
    ('\nfrobnicate k', 2, "unknown operation"),
    ('\nget k --bogus', 2, "bad get"),
    ('\nget k --limit x', 2, "integer"),
    ('value("k) = "v"', 1, "quoting"),
    ('\nput a 1\n\nput b 2\n\nput c 3', 6, "more than three sections"),
])
def test_errors_name_the_line(text: str, line: int, problem: str) -> None:
    with pytest.raises(TxnSyntaxError, match=problem) as info:
        parse_txn(text)
    assert info.value.line == line
