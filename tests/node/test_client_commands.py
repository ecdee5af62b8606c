"""cluster.commands (the client's side) and node.statemachine.codec (the node's)
implement one documented format: the same bytes both ways."""
from __future__ import annotations

import pytest

from cluster import commands as client
from node import statemachine as sm

PAIRS = [
    (client.Put(b"k", b"v"), sm.Put(b"k", b"v")),
    (client.Put(b"k", b"v", lease=0, prev_kv=True), sm.Put(b"k", b"v", prev_kv=True)),
    (client.Range(b"a", b"z", 3, 10, True, False, 1, 2),
     sm.Range(b"a", b"z", 3, 10, True, False, sm.SortTarget.VERSION, sm.SortOrder.DESCEND)),
    (client.DeleteRange(b"a", b"\0", True), sm.DeleteRange(b"a", b"\0", True)),
    (client.Txn((client.Compare.value(b"k", "=", b"v"), client.Compare.version(b"k", ">", 2)),
                (client.Put(b"k", b"w"), client.Range(b"k")), (client.DeleteRange(b"k"),)),
     sm.Txn((sm.Compare.value(b"k", "=", b"v"), sm.Compare.version(b"k", ">", 2)),
            (sm.Put(b"k", b"w"), sm.Range(b"k")), (sm.DeleteRange(b"k"),))),
    (client.Compact(5), sm.Compact(5)),
    (client.OpenSession(), sm.OpenSession()),
    (client.LeaseGrant(5), sm.LeaseGrant(5)),
    (client.LeaseGrant(5, 99), sm.LeaseGrant(5, 99)),
    (client.LeaseRevoke(99), sm.LeaseRevoke(99)),
    (client.LeaseKeepAlive(99), sm.LeaseKeepAlive(99)),
    (client.LeaseTimeToLive(99, True), sm.LeaseTimeToLive(99, True)),
    (client.LeaseLeases(), sm.LeaseLeases()),
    (client.Txn((client.Compare.lease(b"k", "=", 9),), (client.Put(b"k", b"v", 9),)),
     sm.Txn((sm.Compare.lease(b"k", "=", 9),), (sm.Put(b"k", b"v", 9),))),
]


@pytest.mark.parametrize("mine, theirs", PAIRS, ids=lambda r: type(r).__name__)
def test_client_commands_encode_exactly_as_the_state_machine_does(mine: object, theirs: object) -> None:
    assert client.encode_command(mine, 7, 3) == sm.encode_command(theirs, 7, 3)  # type: ignore[arg-type]
    assert sm.decode_command(client.encode_command(mine, 7, 3)) == sm.Command(theirs, 7, 3)  # type: ignore[arg-type]


def test_client_decodes_every_result_the_state_machine_produces() -> None:
    machine = sm.StateMachine()
    index = 0

    def run(request: sm.Request) -> client.Response:
        nonlocal index
        index += 1
        result = machine.apply(index, sm.encode_command(request))
        return client.decode_result(sm.encode_result(result))

    assert run(sm.OpenSession()) == client.SessionOpened(1)
    assert run(sm.Put(b"a", b"1")) == client.PutResponse(2)
    assert run(sm.Put(b"a", b"2", prev_kv=True)) == client.PutResponse(3, client.KeyValue(b"a", b"1", 2, 2, 1))
    assert run(sm.Range(b"a")) == client.RangeResponse(3, (client.KeyValue(b"a", b"2", 2, 3, 2),), 1, False)
    txn = run(sm.Txn((sm.Compare.value(b"a", "=", b"2"),), (sm.Put(b"b", b"x"), sm.Range(b"b"))))
    assert isinstance(txn, client.TxnResponse) and txn.succeeded and len(txn.responses) == 2
    assert run(sm.DeleteRange(b"a", b"\0")) == client.DeleteResponse(5, 2)
    assert run(sm.Compact(4)) == client.CompactResponse(5, 4)
    granted = run(sm.LeaseGrant(5, 9))
    assert granted == client.LeaseGrantResponse(5, 9, 5)
    run(sm.Put(b"k", b"v", lease=9))
    assert run(sm.LeaseRevoke(9)) == client.LeaseRevokeResponse(7, 1)
    for result, mine in ((sm.LeaseKeptAlive(7, 9, 5), client.LeaseKeepAliveResponse(7, 9, 5)),
                         (sm.LeaseTimeToLiveResult(7, 9, 5, 2, (b"a",)),
                          client.LeaseTimeToLiveResponse(7, 9, 5, 2, (b"a",))),
                         (sm.LeaseList(7, (1, 9)), client.LeaseLeasesResponse(7, (1, 9)))):
        assert client.decode_result(sm.encode_result(result)) == mine


def test_read_only_classification_agrees() -> None:
    from node.answers import is_read
    for mine, theirs in PAIRS:
        assert client.is_read_only(mine) == is_read(theirs)  # type: ignore[arg-type]
    assert client.prefix_end(b"a\xff") == sm.prefix_end(b"a\xff") == b"b"
