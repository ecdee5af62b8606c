"""Distributed locks and leader election on leases and watches: etcd's
`clientv3/concurrency` recipes (docs/recipes.md).

    with Client(endpoints) as client, Session(client, ttl=10) as session:
        with Mutex(client, session, "jobs/nightly"):
            ...                                  # nobody else holds jobs/nightly
        election = Election(client, session, "service/primary")
        election.campaign(b"node-a")            # blocks until leader
        election.resign()

How they work (the same pattern for both):

* a `Session` is a lease kept alive by a background thread (`cluster.client.Lease`);
  if its process dies, the keepalives stop and the lease expires after its TTL,
  deleting the session's keys: a dead holder releases what it held.
* to queue, a contender creates `NAME/<lease id hex>` with that lease, in a txn
  guarded by `create_revision == 0` (so a retry never re-creates it); its place
  in the queue is the key's create revision.
* the contender whose key has the lowest create revision holds the lock (is the
  leader). Every other one watches **only the deletion of its immediate
  predecessor** (the key with the greatest create revision below its own), from
  the revision of the read that found it, so a delete in between is not missed.
  When that key goes it looks again (an earlier one may remain). No herd: a
  release wakes exactly one waiter.
* a waiter that gives up (timeout) deletes its key; holding ends with a delete
  (unlock, resign) or with the session's expiry.
"""
from __future__ import annotations

import time
from collections.abc import Iterator
from types import TracebackType

from cluster.client import Client, ClientError, CompactedError, Key, Lease
from cluster.kv import (
    Compare, DeleteRange, KeyValue, Put, Range, RangeResponse, SortOrder, SortTarget, prefix_end,
)


class ConcurrencyError(ClientError):
    """Base of the recipes' errors."""


class LockTimeout(ConcurrencyError):
    """Not acquired (or not elected) within the time given; nothing is held."""


class SessionLost(ConcurrencyError):
    """The session's lease ended: whatever it held may be held by another now."""


class NotLeader(ConcurrencyError):
    """This election's candidate is not (or no longer) the leader."""


def _b(key: Key) -> bytes:
    return key.encode() if isinstance(key, str) else key


class Session:
    """A lease kept alive for as long as the session is open (etcd's
    concurrency.Session). `lost` is set once the lease is gone."""

    def __init__(self, client: Client, ttl: int = 60) -> None:
        self.lease: Lease = client.lease(ttl)
        self.id = self.lease.id
        self.ttl = ttl

    @property
    def lost(self) -> bool:
        return self.lease.lost.is_set()

    def close(self, revoke: bool = True) -> None:
        """Stop the keepalives; revoke the lease (deleting its keys) unless told not to."""
        self.lease.close(revoke)

    def __enter__(self) -> Session:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


class _Queue:
    """A place in the queue `NAME/`: the shared part of Mutex and Election."""

    def __init__(self, client: Client, session: Session, name: Key) -> None:
        self.client = client
        self.session = session
        self.prefix = _b(name).rstrip(b"/") + b"/"
        self.key = b""  # our key while queued or holding
        self.revision = 0  # its create revision

    def _join(self, value: bytes) -> RangeResponse:
        """Create our key if it does not exist (else keep it); return the queue's head."""
        key = self.prefix + f"{self.session.id:x}".encode()
        head = Range(self.prefix, prefix_end(self.prefix), limit=1, sort_target=SortTarget.CREATE,
                     sort_order=SortOrder.ASCEND)
        response = self.client.txn([Compare.create_revision(key, "=", 0)],
                                   [Put(key, value, self.session.id), head], [Range(key), head])
        if response.succeeded:
            self.revision = response.revision
        else:
            mine = response.responses[0]
            assert isinstance(mine, RangeResponse) and mine.kvs
            self.revision = mine.kvs[0].create_revision
        self.key = key
        owner = response.responses[1]
        assert isinstance(owner, RangeResponse)
        return owner

    def _wait_turn(self, deadline: float | None) -> None:
        """Until no key older than ours remains (watching one predecessor at a time)."""
        while True:
            queue = self.client.range(self.prefix, prefix=True, keys_only=True, sort_target=SortTarget.CREATE,
                                      sort_order=SortOrder.ASCEND)
            older = [kv for kv in queue.kvs if kv.create_revision < self.revision]
            if not any(kv.key == self.key for kv in queue.kvs):
                raise SessionLost(f"{self.key.decode(errors='replace')} is gone: the session's lease ended")
            if not older:
                return
            self._wait_deleted(older[-1].key, queue.revision + 1, deadline)

    def _wait_deleted(self, key: bytes, start_revision: int, deadline: float | None) -> None:
        try:
            with self.client.watch(key, start_revision=start_revision) as watch:
                while True:
                    if self.session.lost:
                        raise SessionLost("the session's lease ended while waiting")
                    left = 0.25 if deadline is None else min(0.25, deadline - time.monotonic())
                    if left <= 0:
                        raise LockTimeout(f"gave up waiting for {self.prefix.decode(errors='replace')}")
                    response = watch.get(timeout=left)
                    if response is not None and any(e.type_name == "DELETE" for e in response.events):
                        return
        except CompactedError:
            return  # history gone: look at the queue again

    def _leave(self) -> None:
        if self.key:
            key, revision = self.key, self.revision
            self.key, self.revision = b"", 0
            self.client.txn([Compare.create_revision(key, "=", revision)], [DeleteRange(key)])

    def _queue_up(self, value: bytes, timeout: float | None) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        owner = self._join(value)
        if owner.kvs and owner.kvs[0].create_revision == self.revision:
            return
        try:
            self._wait_turn(deadline)
        except BaseException:
            try:
                self._leave()
            except ClientError:
                pass  # the lease's expiry removes the key anyway
            raise


class Mutex(_Queue):
    """etcd's concurrency.Mutex: at most one holder among every session using
    `name`, as long as each holder's session is alive."""

    def lock(self, timeout: float | None = None) -> None:
        """Block until held; LockTimeout after `timeout` seconds (nothing held),
        SessionLost if the session's lease ended meanwhile."""
        self._queue_up(b"", timeout)

    def unlock(self) -> None:
        self._leave()

    def __enter__(self) -> Mutex:
        self.lock()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.unlock()


class Election(_Queue):
    """etcd's concurrency.Election: the candidate with the oldest key under
    `name` is the leader; its key's value is the leader's proposal."""

    def campaign(self, value: Key, timeout: float | None = None) -> None:
        """Block until this session is the leader, with `value` published."""
        value = _b(value)
        self._queue_up(value, timeout)
        mine = self.client.get(self.key)
        if mine is None:
            raise SessionLost("our candidacy is gone: the session's lease ended")
        if mine.value != value:
            self.proclaim(value)  # our key existed from an earlier campaign

    def proclaim(self, value: Key) -> None:
        """Publish a new value while leader; NotLeader if not."""
        if not self.key:
            raise NotLeader("not campaigning")
        response = self.client.txn([Compare.create_revision(self.key, "=", self.revision)],
                                   [Put(self.key, _b(value), self.session.id)])
        if not response.succeeded:
            raise NotLeader("our candidacy is gone (session lost or resigned)")

    def resign(self) -> None:
        """Stop being leader (or candidate): the next candidate takes over."""
        self._leave()

    def leader(self) -> KeyValue | None:
        """The current leader's key and value, if there is one."""
        return _head(self.client, self.prefix)[1]

    def observe(self, deadline: float | None = None) -> Iterator[KeyValue]:
        """Yield the leader each time it, or its value, changes (until
        `deadline`, a time.monotonic() value; None: forever). Watches one key at a
        time: the leader's, or the prefix while there is none."""
        return observe(self.client, self.prefix, deadline)


def _head(client: Client, prefix: bytes) -> tuple[int, KeyValue | None]:
    response = client.range(prefix, prefix=True, limit=1, sort_target=SortTarget.CREATE,
                            sort_order=SortOrder.ASCEND)
    return response.revision, (response.kvs[0] if response.kvs else None)


def observe(client: Client, name: Key, deadline: float | None = None) -> Iterator[KeyValue]:
    """The leaders of election `name` as they change (see `Election.observe`)."""
    prefix = _b(name).rstrip(b"/") + b"/"
    last: tuple[bytes, bytes, int] | None = None
    while deadline is None or time.monotonic() < deadline:
        revision, leader = _head(client, prefix)
        if leader is not None and (leader.key, leader.value, leader.create_revision) != last:
            last = (leader.key, leader.value, leader.create_revision)
            yield leader
        watched = client.watch(leader.key if leader else prefix, prefix=leader is None,
                               start_revision=revision + 1)
        try:
            with watched:
                while deadline is None or time.monotonic() < deadline:
                    left = 0.25 if deadline is None else min(0.25, deadline - time.monotonic())
                    response = watched.get(timeout=max(left, 0.001))
                    if response is not None and response.events:
                        break
        except CompactedError:
            continue
