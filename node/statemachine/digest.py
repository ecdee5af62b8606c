"""Digests of the state machine, for etcd's Maintenance.HashKV and Hash: numbers
that are equal on every replica holding the same state, so an operator (or
`etcdctl endpoint hashkv --cluster`) can check the replicas agree.

`hash_kv(store, revision)` follows etcd's HashByRev: a CRC-32 over the key-value
history up to `revision` (every retained record - each version and tombstone - of
every key, in key order then revision order), with etcd's checks: a revision at or
below the compact revision is compacted, one above the current revision is in the
future, 0 means the current revision. The history used is the *logical* one (what
a compaction keeps, whether or not its deferred physical drop has run), so
replicas at one revision agree whatever their snapshot streaming did.

`hash_all` digests the whole replicated state: that history up to the current
revision, the revision counters, the lease table and the auth state (users with
their password hashes, roles, enabled, auth revision: replicas whose auth state
diverged differ). Like etcd's Hash (which
skips its consistent index) it leaves out the applied Raft index, and it leaves
out the client session table (jangada's exactly-once bookkeeping, not data).

The checksum is zlib's CRC-32 (IEEE); etcd uses CRC-32C, so values differ from
etcd's for the same data (they are only ever compared between replicas of one
cluster). Cost: O(retained records), computed on the node's loop; a store
holding more than `MAX_RECORDS` records is refused rather than stall the node.
"""
from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable

from cluster.kv.alarms import AlarmMember
from cluster.kv.codec import pack
from cluster.kv.errors import Compacted, FutureRevision
from node.statemachine.auth_store import AuthStore
from node.statemachine.lease_table import Lease
from node.statemachine.snapshot_stream import auth_fields
from node.statemachine.mvcc import MvccStore

#: Most history records one hash walks (a few hundred milliseconds of work).
MAX_RECORDS = 1_000_000
_RECORD = struct.Struct(">QQQQQqI")  # main, sub, create, mod, version, lease, len(value)
_KEY = struct.Struct(">I")
_COUNTERS = struct.Struct(">QQ")
_LEASE = struct.Struct(">qqQ")


class TooLargeToHash(ValueError):
    """The store holds more history than one hash may walk."""


def hash_kv(store: MvccStore, revision: int, max_records: int | None = None) -> tuple[int, int, int]:
    """(hash, current revision, compact revision) of the history up to `revision`
    (0: the current one). Raises Compacted, FutureRevision or TooLargeToHash (over
    `max_records`, default MAX_RECORDS: an offline tool, which stalls no loop, may
    pass more)."""
    current, compact = store.revision, store.compact_revision
    if revision > 0 and revision <= compact:
        raise Compacted(revision, compact)
    if revision > current:
        raise FutureRevision(revision, current)
    return _history_crc(store, revision or current, zlib.crc32(b"key"), max_records), current, compact


def hash_all(store: MvccStore, leases: Iterable[Lease], auth: AuthStore,
             alarms: Iterable[AlarmMember] = ()) -> tuple[int, int]:
    """(hash, current revision) of the whole replicated state (see the module
    docstring). Raises TooLargeToHash."""
    crc = zlib.crc32(_COUNTERS.pack(store.revision, store.compact_revision))
    crc = _history_crc(store, store.revision, crc)
    for lease in sorted(leases, key=lambda lease: lease.id):
        crc = zlib.crc32(_LEASE.pack(lease.id, lease.ttl, lease.granted_index), crc)
    crc = zlib.crc32(pack(auth_fields(auth)), crc)
    raised = [[a.member_id, int(a.alarm)] for a in alarms]
    if raised:  # (the digest of a state without alarms is what it was before they existed)
        crc = zlib.crc32(pack(raised), crc)
    return crc, store.revision


def _history_crc(store: MvccStore, upto: int, crc: int, max_records: int | None = None) -> int:
    max_records = MAX_RECORDS if max_records is None else max_records
    walked = 0
    for key, mains, subs, kvs in store.records():
        key_written = False
        for main, sub, kv in zip(mains, subs, kvs):
            if main > upto:
                break
            walked += 1
            if walked > max_records:
                raise TooLargeToHash(f"the store holds more than {max_records} history records to hash")
            if not key_written:
                crc = zlib.crc32(_KEY.pack(len(key)) + key, crc)
                key_written = True
            crc = zlib.crc32(_RECORD.pack(main, sub, kv.create_revision, kv.mod_revision, kv.version,
                                          kv.lease, len(kv.value)), crc)
            crc = zlib.crc32(kv.value, crc)
    return crc
