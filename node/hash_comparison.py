"""Which member's state diverged: the pure part of the corruption checks
(node/corruption_check.py), comparing members' HashKV at one revision.

Only hashes taken at the same revision over the same retained history compare:
a HashKV covers the records a compaction keeps, so two members whose compact
revisions differ (one applied a later Compact entry, which does not move the
revision) hash differently without anything being wrong. etcd compares a peer's
hash only when its compact revision equals the checker's; so do we (`comparable`).
Members that are behind (have not applied the revision), compacted past it or
silent give no hash and are skipped, as in etcd.

Who is named. etcd 3.4's leader trusts itself: it raises CORRUPT for every
follower whose hash differs from its own. With three or more comparable hashes
we do better and take the majority: the members not holding the hash more than
half of them hold are named, the leader included (a leader whose own store
diverged would otherwise accuse every healthy follower). Without a strict
majority (two members, or a three-way split) etcd's rule decides: the leader's
hash is the reference.

The start-up check (etcd's --experimental-initial-corrupt-check) is the same
comparison seen from the starting member: it finds itself corrupt when some
comparable peer disagrees and its hash is not the strict majority's -- so, as in
etcd, a member that disagrees with its only comparable peer does not serve.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class MemberHash:
    """One member's HashKV at the revision being checked."""

    member_id: int
    hash: int
    compact_revision: int


def comparable(reference: MemberHash, answers: Iterable[MemberHash]) -> list[MemberHash]:
    """`reference` and the answers taken over the same retained history (the same
    compact revision as `reference`'s), reference first."""
    return [reference] + [a for a in answers
                          if a.compact_revision == reference.compact_revision and a.member_id != reference.member_id]


def majority_hash(hashes: Sequence[MemberHash]) -> int | None:
    """The hash more than half of `hashes` hold, or None."""
    if not hashes:
        return None
    value, count = Counter(h.hash for h in hashes).most_common(1)[0]
    return value if count * 2 > len(hashes) else None


def odd_members(leader: MemberHash, answers: Iterable[MemberHash]) -> list[int]:
    """The periodic check's verdict: the ids (ascending) of the comparable members
    whose hash differs from the strict majority's, or from the leader's when
    there is no strict majority (see the module docstring)."""
    group = comparable(leader, answers)
    reference = majority_hash(group)
    if reference is None:
        reference = leader.hash
    return sorted(h.member_id for h in group if h.hash != reference)


def start_up_mismatch(own: MemberHash, answers: Iterable[MemberHash]) -> list[int]:
    """The start-up check's verdict: the comparable peers (ascending ids) that
    disagree with `own`, if `own` is the odd one out -- some comparable peer
    disagrees and `own` does not hold the strict majority's hash; else []."""
    group = comparable(own, answers)
    disagreeing = sorted(h.member_id for h in group if h.hash != own.hash)
    if not disagreeing or majority_hash(group) == own.hash:
        return []
    return disagreeing
