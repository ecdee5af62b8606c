"""Joint consensus (Raft §6, thesis §4.3; etcd-io/raft's confchange): the paper's
rules, each at the step where it applies."""
from __future__ import annotations

import pytest

from node.raft import (
    ConfChange, ConfChangeKind, ConfChangeSingle, ConfState, InvalidConfChange, Role, TimeoutNow,
    check_conf_change, decode_conf_change, encode_conf_change, enter_joint, leave_joint,
)
from node.raft.errors import ConfChangePending, LearnerLagging
from tests.raft.harness import Harness

T = 10
ADD, PROMOTE, REMOVE = ConfChangeKind.ADD_LEARNER, ConfChangeKind.PROMOTE, ConfChangeKind.REMOVE
ADD_VOTER = ConfChangeKind.ADD_VOTER


def joint(*changes: tuple[ConfChangeKind, int], auto_leave: bool = True) -> ConfChange:
    return enter_joint([ConfChangeSingle(k, n, b"ctx%d" % n) for k, n in changes], auto_leave)


def test_codec_round_trips_version_2_and_still_reads_version_1() -> None:
    result = ConfState((1, 4, 5), (6,), (1, 2, 3), (3,), True)
    for c in (ConfChange(ConfChangeKind.ENTER_JOINT, 4, b"", result,
                         (ConfChangeSingle(PROMOTE, 4), ConfChangeSingle(ADD_VOTER, 5, b"addr"),
                          ConfChangeSingle(ADD, 3), ConfChangeSingle(REMOVE, 2)), True),
              ConfChange(ConfChangeKind.LEAVE_JOINT, 1, b"", ConfState((1, 4, 5), (3, 6)), (), False),
              joint((REMOVE, 2))):
        data = encode_conf_change(c)
        assert data[0] == 2 and decode_conf_change(data) == c
    # A version-1 entry as written before joint consensus (add learner 4 to voters 1):
    # byte for byte the same today, and it still decodes.
    v1 = bytes.fromhex("0101000000000000000400000003637478000100010000000000000001"
                       "0000000000000004")
    simple = ConfChange(ADD, 4, b"ctx", ConfState((1,), (4,)))
    assert encode_conf_change(simple) == v1 and decode_conf_change(v1) == simple
    good = encode_conf_change(joint((REMOVE, 2)))
    for garbage in (good[:-1], good + b"x", b"\x01" + good[1:]):  # v1 cannot carry a joint kind
        with pytest.raises(ValueError):
            decode_conf_change(garbage)


def test_entering_and_leaving_follow_etcds_rules() -> None:
    conf = ConfState((1, 2, 3), (4,))
    entered = check_conf_change(conf, joint((PROMOTE, 4), (REMOVE, 1), (ADD, 2)))
    # Outgoing = the voters before; a demoted voter waits in learners_next.
    assert entered == ConfState((3, 4), (), (1, 2, 3), (2,), True)
    assert check_conf_change(entered, leave_joint(1)) == ConfState((3, 4), (2,))
    for bad, why in ((ConfChange(REMOVE, 3), "leave it first"), (joint((REMOVE, 3)), "already joint")):
        with pytest.raises(InvalidConfChange, match=why):
            check_conf_change(entered, bad)
    for bad in (joint((ADD, 9)),  # voters unchanged: use a single change
                joint((REMOVE, 1), (REMOVE, 2), (REMOVE, 3)),  # no voter left
                joint((PROMOTE, 2)), joint((REMOVE, 9)), joint((REMOVE, 1), (ADD_VOTER, 1))):
        with pytest.raises(InvalidConfChange):
            check_conf_change(conf, bad)
    with pytest.raises(InvalidConfChange, match="not joint"):
        check_conf_change(conf, leave_joint(1))


def _replace_two_with_learners(auto_leave: bool = True, **config: object) -> tuple[Harness, int]:
    """Voters 1-3 with caught-up learners 4, 5; node 1 leads and enters the joint
    configuration that promotes 4 and 5 and removes 2 and 3."""
    h = Harness(3, learners=(4, 5), election_ticks=T, **config)
    h.elect(1)
    h.propose(1, b"x")
    h.stabilize()
    index = h[1].propose_conf_change(joint((PROMOTE, 4), (PROMOTE, 5), (REMOVE, 2), (REMOVE, 3),
                                           auto_leave=auto_leave))
    assert h[1].conf == ConfState((1, 4, 5), (), (1, 2, 3), (), auto_leave)
    return h, index


@pytest.mark.parametrize("cut", [(2, 3), (4, 5)], ids=["old-majority-missing", "new-majority-missing"])
def test_commit_needs_a_majority_of_both_sets(cut: tuple[int, int]) -> None:
    h, index = _replace_two_with_learners(auto_leave=False)
    h.isolate(*cut)
    h.stabilize()
    assert h[1].log.committed < index, "one set's majority alone committed the joint entry"
    h.heal()
    h.tick(1, 2)
    h.stabilize()
    assert h[1].log.committed >= index


def test_election_needs_a_majority_of_both_sets() -> None:
    h, index = _replace_two_with_learners(auto_leave=False)
    h.stabilize()
    assert h[1].log.committed >= index and h[1].conf.joint
    h.isolate(1, 2, 3)  # 4 and 5: the whole incoming majority, no outgoing one
    for _ in range(6 * T):
        h.tick([4, 5])
        h.stabilize()
    assert h[4].role is not Role.LEADER and h[5].role is not Role.LEADER
    assert any(m.src == 5 and m.dst == 4 and getattr(m, "granted", False) for m in h.delivered), \
        "the incoming majority was reached"
    h.heal()
    h.isolate(1)  # now 2 and 3 can give the outgoing majority too
    for _ in range(6 * T):
        h.tick([2, 3, 4, 5])
        h.stabilize()
    assert len([i for i in h.leaders() if i != 1]) == 1


def test_auto_leave_then_the_leader_outside_cnew_hands_over_and_steps_down() -> None:
    h, index = _replace_two_with_learners()
    h.persist(1)
    with pytest.raises(ConfChangePending):
        h[1].propose_conf_change(ConfChange(REMOVE, 4))
    h.stabilize()  # the leader's next input after applying the entry: it proposes leaving
    assert h[1].log.committed > index and not h[1].conf.joint and h[1].conf.voters == (1, 4, 5)
    assert decode_conf_change(h[1].log.entry_at(h[1].conf_index).data).kind is ConfChangeKind.LEAVE_JOINT
    # Node 1 stays (it is incoming); remove it too with a second joint change.
    h.stabilize()
    assert h[1].log.committed == h[1].log.last_index()
    h[1].propose_conf_change(joint((REMOVE, 1), (ADD_VOTER, 6)))
    h.join(6)
    h.stabilize()
    h.tick(1)
    h.stabilize()
    assert h[1].role is Role.FOLLOWER and h[1].conf.voters == (4, 5, 6)
    assert any(isinstance(m, TimeoutNow) and m.src == 1 and m.dst in (4, 5, 6) for m in h.delivered)
    assert len(h.leaders()) == 1 and h.leaders()[0] in (4, 5, 6)


def test_promoting_a_lagging_learner_in_a_joint_step_is_refused() -> None:
    h = Harness(3, learners=(4,), election_ticks=T, max_learner_lag=10)
    h.elect(1)
    h.isolate(4)
    h.propose(1, *[b"x"] * 300)
    h.stabilize()
    with pytest.raises(LearnerLagging):
        h[1].propose_conf_change(joint((PROMOTE, 4), (REMOVE, 2)))


@pytest.mark.parametrize("side", ["outgoing", "incoming"])
def test_leader_crash_while_joint_on_either_side(side: str) -> None:
    """The leader dies with the joint entry on a majority of both sets but not
    committed: whichever node wins next -- one only in the old set, or one only in
    the new -- holds it (it needed both majorities' votes) and finishes the change."""
    h, index = _replace_two_with_learners(check_quorum=False)
    h.persist(1)
    h.deliver()  # the joint entry reaches 2, 3, 4, 5 ...
    h.persist_all()
    h.take()  # ... but their acknowledgements are lost with the leader
    del h.cores[1]  # which crashes
    winner = 2 if side == "outgoing" else 4
    h.tick(winner, 3 * T)
    for _ in range(3):
        h.stabilize()
        for i in h.leaders():
            h.tick(i)  # leaders' next input: auto leave
    led = [rd.soft_state.role for rd in h.readies[winner] if rd.soft_state is not None]
    assert Role.LEADER in led, f"node {winner} never led"
    leader = h.leaders()
    assert len(leader) == 1 and leader[0] in (4, 5) if side == "outgoing" else leader == [4]
    conf = h[leader[0]].conf
    assert not conf.joint and conf.voters == (1, 4, 5)
    assert h[leader[0]].log.committed >= index
    if side == "outgoing":  # node 2 is not in Cnew: it handed over once leaving committed
        assert h[2].role is Role.FOLLOWER
        assert any(isinstance(m, TimeoutNow) and m.src == 2 for m in h.delivered)


def test_a_voter_demoted_while_joint_becomes_a_learner_on_leaving() -> None:
    h = Harness(3, election_ticks=T)
    h.elect(1)
    h[1].propose_conf_change(joint((ADD, 3)))
    assert h[1].conf.learners_next == (3,) and 3 in h[1].prs and not h[1].prs[3].is_learner
    h.stabilize()
    h.tick(1)
    h.stabilize()
    assert h[1].conf == ConfState((1, 2), (3,)) and h[1].prs[3].is_learner
    assert all(h[i].conf == h[1].conf for i in (2, 3))


@pytest.mark.parametrize("conf", [ConfState((1, 2, 3), (4,)), ConfState((3, 4), (5,), (1, 2, 3), (2,), True)],
                         ids=["simple", "joint"])
def test_snapshot_metadata_carries_a_joint_configuration(conf: ConfState, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """WAL snapshot marker, snapshot file header and InstallSnapshot metadata: a
    simple conf is written as before (4 fields on the wire), a joint one round-trips."""
    from pathlib import Path

    import msgpack

    from node.raft import SnapshotMeta
    from node.storage import records, snapshot_file
    from node.wire import _meta, _meta_fields

    meta = SnapshotMeta(7, 2, conf)
    marker = records.SnapshotMarker(meta, b"sum")
    assert records.decode(records.RecordKind.SNAPSHOT, records.encode_marker(marker)) == marker
    assert _meta(_meta_fields(meta)) == meta
    assert len(_meta_fields(meta)) == (7 if conf.joint else 4)
    prefix = snapshot_file._encode_prefix("c", meta)
    packed = prefix[len(snapshot_file.MAGIC) + 4:]
    assert snapshot_file._decode_meta(Path(tmp_path), packed, 0) == (meta, "c")
    assert len(msgpack.unpackb(packed)) == (8 if conf.joint else 5)
