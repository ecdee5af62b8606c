"""Which member the corruption checks name (node/hash_comparison.py): the one not
holding the majority's hash, among members whose retained history is the same."""
from __future__ import annotations

from node.hash_comparison import MemberHash, comparable, odd_members, start_up_mismatch


def h(member: int, digest: int, compact: int = 0) -> MemberHash:
    return MemberHash(member, digest, compact)


def test_agreeing_members_name_nobody() -> None:
    assert odd_members(h(1, 7), [h(2, 7), h(3, 7)]) == []


def test_the_follower_in_the_minority_is_named() -> None:
    assert odd_members(h(1, 7), [h(2, 7), h(3, 9)]) == [3]


def test_a_leader_in_the_minority_names_itself() -> None:
    assert odd_members(h(1, 9), [h(2, 7), h(3, 7)]) == [1]


def test_without_a_strict_majority_the_leaders_hash_is_the_reference_as_in_etcd() -> None:
    assert odd_members(h(1, 7), [h(2, 9)]) == [2]
    assert odd_members(h(1, 7), [h(2, 8), h(3, 9)]) == [2, 3]
    assert odd_members(h(1, 7), [h(2, 8), h(3, 8), h(4, 9), h(5, 9)]) == [2, 3, 4, 5]


def test_members_with_another_compact_revision_are_skipped() -> None:
    # member 3 applied a later compaction: its hash covers less history, and says nothing
    assert comparable(h(1, 7, 5), [h(2, 7, 5), h(3, 9, 6)]) == [h(1, 7, 5), h(2, 7, 5)]
    assert odd_members(h(1, 7, 5), [h(2, 7, 5), h(3, 9, 6)]) == []
    # and they do not count towards the majority either
    assert odd_members(h(1, 7, 5), [h(2, 9, 5), h(3, 9, 6), h(4, 9, 6)]) == [2]


def test_a_member_with_no_comparable_peer_is_not_judged() -> None:
    assert odd_members(h(1, 7), []) == []
    assert start_up_mismatch(h(1, 7), []) == []
    assert start_up_mismatch(h(1, 7, 3), [h(2, 9, 4)]) == []


def test_a_starting_member_outvoted_by_its_peers_is_corrupt() -> None:
    assert start_up_mismatch(h(3, 9), [h(1, 7), h(2, 7)]) == [1, 2]


def test_a_starting_member_that_disagrees_with_its_only_comparable_peer_does_not_serve_as_in_etcd() -> None:
    assert start_up_mismatch(h(3, 9), [h(1, 7)]) == [1]
    assert start_up_mismatch(h(3, 9), [h(1, 7), h(2, 8)]) == [1, 2]


def test_a_starting_member_holding_the_majority_hash_serves() -> None:
    # (peer 2 is the odd one: the leader's periodic check names it)
    assert start_up_mismatch(h(3, 7), [h(1, 7), h(2, 9)]) == []
