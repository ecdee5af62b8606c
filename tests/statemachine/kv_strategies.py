"""Hypothesis strategies for requests over a small key space (so that keys
collide, ranges overlap and histories grow)."""
from __future__ import annotations

from functools import lru_cache

from hypothesis import strategies as st

from cluster.kv import (
    ALL_KEYS_END,
    Compact,
    Compare,
    CompareOp,
    CompareTarget,
    DeleteRange,
    Op,
    Put,
    Range,
    Request,
    SortOrder,
    SortTarget,
    Txn,
    prefix_end,
)

KEYS = [b"a", b"ab", b"abc", b"b", b"b\xff", b"c", b"d\x00", b"e"]
keys = st.sampled_from(KEYS)
values = st.sampled_from([b"", b"0", b"1", b"22", b"x" * 40])
revisions = st.integers(min_value=0, max_value=40)


@st.composite
def key_ranges(draw: st.DrawFn) -> tuple[bytes, bytes]:
    """(key, range_end) in each of etcd's three forms."""
    key = draw(keys)
    kind = draw(st.sampled_from(["single", "end", "all", "prefix"]))
    if kind == "single":
        return key, b""
    if kind == "all":
        return key, ALL_KEYS_END
    if kind == "prefix":
        return key, prefix_end(key)
    return key, draw(keys)


rarely = st.sampled_from([False, False, False, True])
puts = st.builds(Put, keys, values, st.sampled_from([0, 0, 3]), st.booleans(), rarely, rarely)


@st.composite
def ranges(draw: st.DrawFn, revision: st.SearchStrategy[int] = revisions) -> Range:
    key, range_end = draw(key_ranges())
    return Range(key, range_end, draw(revision), draw(st.integers(0, 3)), draw(st.booleans()),
                 draw(st.booleans()), draw(st.sampled_from(SortTarget)),
                 draw(st.sampled_from(SortOrder)))


@st.composite
def deletes(draw: st.DrawFn) -> DeleteRange:
    key, range_end = draw(key_ranges())
    return DeleteRange(key, range_end, draw(st.booleans()))


@st.composite
def compares(draw: st.DrawFn) -> Compare:
    target = draw(st.sampled_from(CompareTarget))
    operand = draw(values) if target == CompareTarget.VALUE else draw(st.integers(-1, 12))
    key, range_end = draw(key_ranges()) if draw(rarely) else (draw(keys), b"")
    return Compare(key, target, draw(st.sampled_from(CompareOp)), operand, range_end)


def txns(depth: int = 2, revision: st.SearchStrategy[int] = st.just(0)) -> st.SearchStrategy[Txn]:
    ops: st.SearchStrategy[Op] = st.one_of(puts, deletes(), ranges(revision))
    if depth > 1:
        ops = st.one_of(ops, txns(depth - 1, revision))
    branch = st.lists(ops, max_size=4).map(tuple)
    return st.builds(Txn, st.lists(compares(), max_size=3).map(tuple), branch, branch)


@lru_cache(maxsize=None)  # building and validating strategies is slow; reuse them
def requests_at(revision: int) -> st.SearchStrategy[Request]:
    """Requests for a store at `revision`: the revisions they name are mostly
    readable (0 = latest, or at most one past the current one), sometimes not."""
    near = st.one_of(st.just(0), st.integers(0, revision + 1))
    inner = st.one_of(st.just(0), st.just(0), st.just(0), near)
    return st.one_of(
        puts, puts, deletes(), ranges(near), txns(2, inner),
        st.builds(Compact, st.integers(max(0, revision - 4), revision + 1)),
    )


requests = requests_at(20)
