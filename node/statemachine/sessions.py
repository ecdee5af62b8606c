"""Client sessions: the dedup table that makes writes exactly-once.

The rules (Raft thesis §6.3, with log indexes in place of the leader's clock so
that every replica expires the same sessions at the same entry):

1. A client opens a session with an `OpenSession` command; its `client_id` is
   the log index of that command, so it is unique and the same everywhere.
2. Each write carries (client_id, seq) with seq >= 1 increasing; a session
   has at most one write outstanding. The table keeps per session the last
   applied seq and its result:
   - seq == last seq: a retry; the cached result is returned, nothing is applied;
   - seq <  last seq: StaleSequence (that result is gone);
   - seq >  last seq: the write is applied and its result cached.
   Reads through the log (Range) are never cached; they only refresh the session.
3. A session expires when more than `session_ttl_entries` log entries have
   been applied since a command last used it (index - last_index > ttl):
   checked at every applied index, before the command runs.
   Opening a session beyond `max_sessions` evicts the least recently used one.
   `CloseSession` forgets one explicitly. A command naming an unknown session
   gets SessionExpired: its client cannot know whether its outstanding write
   was applied, and must say so and open a new session (never silently
   re-apply, which an implicitly re-created session would do).

Activity indexes are unique (one command per log index), so "least recently
used" is a total order and restoring a snapshot rebuilds the same table.
"""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from cluster.kv.errors import SessionExpired, StaleSequence
from cluster.kv.results import Result


@dataclass(frozen=True, slots=True)
class Session:
    client_id: int
    last_seq: int  # 0 until the first write
    last_index: int  # log index of the last command that used the session
    last_result: Result | None  # result of the write numbered last_seq


class SessionTable:
    """Sessions by client id, least recently used first."""

    def __init__(self, max_sessions: int, ttl_entries: int) -> None:
        self._max = max_sessions
        self._ttl = ttl_entries
        self._sessions: OrderedDict[int, Session] = OrderedDict()

    def expire(self, index: int) -> None:
        """Forget the sessions last used more than `ttl_entries` entries
        before `index`."""
        sessions = self._sessions
        while sessions:
            oldest = next(iter(sessions.values()))
            if index - oldest.last_index <= self._ttl:
                return
            sessions.popitem(last=False)

    def open(self, index: int) -> int:
        """A new session whose id is `index`; evicts the LRU one if full."""
        assert index not in self._sessions, "log indexes are unique"
        if len(self._sessions) >= self._max:
            self._sessions.popitem(last=False)
        self._sessions[index] = Session(index, 0, index, None)
        return index

    def close(self, client_id: int) -> bool:
        return self._sessions.pop(client_id, None) is not None

    def cached(self, client_id: int, seq: int, index: int) -> Result | None:
        """The result of a retried write (the session refreshed), None for a new
        one; raises SessionExpired or StaleSequence. A new write is not refreshed
        here: the caller `record`s it at `index` next, which refreshes it (one
        Session object per applied write instead of two: replay applies millions)."""
        session = self._sessions.get(client_id)
        if session is None:
            raise SessionExpired(client_id)
        if seq < session.last_seq:
            raise StaleSequence(client_id, seq, session.last_seq)
        if seq == session.last_seq:
            self.touch(client_id, index)
            return session.last_result
        return None

    def touch(self, client_id: int, index: int) -> None:
        """Mark the session used at `index` (no-op if unknown)."""
        session = self._sessions.get(client_id)
        if session is not None:
            self._store(Session(client_id, session.last_seq, index, session.last_result))

    def record(self, client_id: int, seq: int, index: int, result: Result) -> None:
        """Cache `result` as the outcome of write `seq` of an open session."""
        assert client_id in self._sessions
        self._store(Session(client_id, seq, index, result))

    def _store(self, session: Session) -> None:
        self._sessions[session.client_id] = session
        self._sessions.move_to_end(session.client_id)

    def __iter__(self) -> Iterator[Session]:
        """Least recently used first: the order snapshots keep."""
        return iter(list(self._sessions.values()))

    def __len__(self) -> int:
        return len(self._sessions)

    def load(self, sessions: Iterable[Session]) -> None:
        """Restore sessions given least recently used first."""
        for session in sessions:
            self._store(session)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SessionTable):
            return NotImplemented
        return list(self._sessions.values()) == list(other._sessions.values())

    __hash__ = None  # type: ignore[assignment]  # mutable
