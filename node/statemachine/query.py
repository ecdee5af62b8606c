"""Range reads: limit, count, keys-only and sorting on top of `MvccStore.scan`.

Costs match etcd's: a range in key order (ascending or descending) stops
building results at `limit` but still walks the whole range to count it, as
etcd's RangeResponse.count is the total; any other sort order materialises the
range, sorts it (stable, so ties stay in key order) and then applies the limit.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import islice
from operator import attrgetter

from cluster.kv.enums import SortOrder, SortTarget
from cluster.kv.keyvalue import KeyValue
from cluster.kv.requests import Range
from cluster.kv.results import RangeResponse
from node.statemachine.mvcc import LATEST, MvccStore

_SORT_KEYS = {
    SortTarget.KEY: attrgetter("key"),
    SortTarget.VERSION: attrgetter("version"),
    SortTarget.CREATE: attrgetter("create_revision"),
    SortTarget.MOD: attrgetter("mod_revision"),
    SortTarget.VALUE: attrgetter("value"),
}


def run_range(store: MvccStore, request: Range) -> RangeResponse:
    """Answer `request`; raises Compacted or FutureRevision for a bad revision."""
    store.check_revision(request.revision)
    revision = request.revision or LATEST
    if not request.range_end:
        kv = store.get(request.key, revision)
        found: Iterator[KeyValue] = iter(() if kv is None else (kv,))
        kvs, count, more = _take(found, request.limit, request.count_only)
    else:
        kvs, count, more = _range(store, request, revision)
    if request.keys_only:
        kvs = tuple(KeyValue(kv.key, b"", *kv[2:]) for kv in kvs)
    return RangeResponse(store.observed_revision, kvs, count, more)


def _range(
    store: MvccStore, request: Range, revision: int
) -> tuple[tuple[KeyValue, ...], int, bool]:
    target, order = request.sort_target, request.sort_order
    if order == SortOrder.NONE and target != SortTarget.KEY:
        order = SortOrder.ASCEND  # etcd: a sort target without an order sorts ascending
    reverse = order == SortOrder.DESCEND
    found = store.scan(request.key, request.range_end, revision, reverse and target == SortTarget.KEY)
    if target == SortTarget.KEY or request.count_only:
        return _take(found, request.limit, request.count_only)
    ordered = sorted(found, key=_SORT_KEYS[target], reverse=reverse)
    return _take(iter(ordered), request.limit, False)


def _take(
    found: Iterator[KeyValue], limit: int, count_only: bool
) -> tuple[tuple[KeyValue, ...], int, bool]:
    """(kvs up to limit, total count, whether some were left out)."""
    if count_only:
        return (), _count(found), False
    if not limit:
        kvs = tuple(found)
        return kvs, len(kvs), False
    kvs = tuple(islice(found, limit))
    rest = _count(found)
    return kvs, len(kvs) + rest, rest > 0


def _count(found: Iterable[KeyValue]) -> int:
    return len(list(found))  # faster than sum() over a generator
