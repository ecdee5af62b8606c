"""Exactly-once client sessions: the rules of node/statemachine/sessions.py."""
from __future__ import annotations

from kv_driver import Driver

from cluster.kv import (
    CloseSession,
    Compact,
    Compacted,
    DeleteRange,
    Limits,
    OpenSession,
    Put,
    PutResponse,
    Range,
    SessionClosed,
    SessionExpired,
    SessionOpened,
    StaleSequence,
)


def open_session(kv: Driver) -> int:
    result = kv(OpenSession())
    assert isinstance(result, SessionOpened)
    return result.client_id


def test_session_id_is_the_log_index_of_the_open_command() -> None:
    kv = Driver()
    kv.skip(4)
    assert kv(OpenSession()) == SessionOpened(5)


def test_a_retried_write_returns_the_original_result_and_applies_once() -> None:
    kv = Driver()
    client = open_session(kv)
    first = kv(Put(b"a", b"1"), client, 1)
    kv(Put(b"b", b"1"))  # someone else writes in between
    assert kv(Put(b"a", b"1"), client, 1) == first == PutResponse(2)
    assert kv.machine.get(b"a").version == 1  # type: ignore[union-attr]
    assert kv.machine.revision == 3


def test_a_retried_failed_write_returns_the_same_error() -> None:
    kv = Driver()
    client = open_session(kv)
    kv(Put(b"a", b"1"))
    kv(Compact(2))
    assert kv(Compact(2), client, 1) == Compacted(2, 2)
    kv(Put(b"a", b"2"))
    kv(Compact(3))
    assert kv(Compact(2), client, 1) == Compacted(2, 2)


def test_a_higher_sequence_is_applied() -> None:
    kv = Driver()
    client = open_session(kv)
    kv(Put(b"a", b"1"), client, 1)
    assert kv(Put(b"a", b"2"), client, 5) == PutResponse(3)


def test_a_lower_sequence_fails_stale() -> None:
    kv = Driver()
    client = open_session(kv)
    kv(Put(b"a", b"1"), client, 1)
    kv(Put(b"a", b"2"), client, 2)
    assert kv(Put(b"a", b"1"), client, 1) == StaleSequence(client, 1, 2)
    assert kv.machine.revision == 3


def test_an_unknown_session_fails_expired_and_applies_nothing() -> None:
    kv = Driver()
    assert kv(Put(b"a", b"1"), 42, 1) == SessionExpired(42)
    assert kv.machine.revision == 1


def test_reads_through_the_log_are_not_cached() -> None:
    kv = Driver()
    client = open_session(kv)
    kv(Put(b"a", b"1"), client, 1)
    kv(Range(b"a"), client, 1)
    assert kv(Put(b"a", b"1"), client, 1) == PutResponse(2)  # still the write's result


def test_close_session_forgets_it() -> None:
    kv = Driver()
    client = open_session(kv)
    assert kv(CloseSession(client)) == SessionClosed(client, True)
    assert kv(CloseSession(client)) == SessionClosed(client, False)
    assert kv(Put(b"a", b"1"), client, 1) == SessionExpired(client)


def test_a_session_expires_when_more_than_ttl_entries_pass_unused() -> None:
    kv = Driver(Limits(session_ttl_entries=10))
    client = open_session(kv)  # index 1
    kv.skip(9)  # indexes 2..10
    assert kv(Put(b"a", b"1"), client, 1) == PutResponse(2)  # index 11: 10 since, alive
    kv.skip(10)  # indexes 12..21
    assert kv(Put(b"a", b"2"), client, 2) == SessionExpired(client)  # index 22: 11 since


def test_a_read_refreshes_the_session() -> None:
    kv = Driver(Limits(session_ttl_entries=5))
    client = open_session(kv)
    for _ in range(3):
        kv.skip(3)
        kv(Range(b"a"), client, 1)
    assert kv(DeleteRange(b"a"), client, 1).revision == 1  # type: ignore[union-attr]


def test_opening_beyond_max_sessions_evicts_the_least_recently_used() -> None:
    kv = Driver(Limits(max_sessions=2))
    first, second = open_session(kv), open_session(kv)
    kv(Put(b"a", b"1"), first, 1)  # second is now the least recently used
    third = open_session(kv)
    assert kv(Put(b"a", b"1"), second, 1) == SessionExpired(second)
    assert kv(Put(b"a", b"1"), first, 1) == PutResponse(2)
    assert kv(Put(b"b", b"1"), third, 1) == PutResponse(3)
    assert len(kv.machine._sessions) == 2  # noqa: SLF001
