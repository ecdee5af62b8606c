"""Transport.receive_batch (node/transport.py): a batch is what is queued, up to the
limit, and ends when the socket says nothing more is (no zmq.Again needed)."""
from __future__ import annotations

import time

import pytest
import zmq

from cluster.ports import free_ports
from node.transport import Transport, TransportOptions

pytestmark = pytest.mark.timeout(30)


def test_a_batch_takes_what_is_queued_up_to_the_limit() -> None:
    peer, client = free_ports(2)
    t = Transport(1, f"tcp://127.0.0.1:{peer}", f"tcp://127.0.0.1:{client}", {}, TransportOptions())
    ctx = zmq.Context()
    dealer = ctx.socket(zmq.DEALER)
    dealer.setsockopt(zmq.LINGER, 0)
    try:
        dealer.connect(f"tcp://127.0.0.1:{client}")
        for i in range(5):
            dealer.send(b"request %d" % i)
        got: list[list[bytes]] = []
        deadline = time.monotonic() + 10
        while len(got) < 5 and time.monotonic() < deadline:
            _, client_ready = t.poll(20)
            if client_ready:
                batch = t.receive_batch(t.client_router, 3)
                assert 1 <= len(batch) <= 3
                got += batch
        assert [frames[-1] for frames in got] == [b"request %d" % i for i in range(5)]
        assert len({frames[0] for frames in got}) == 1  # one routing identity: the dealer's
        assert t.receive_batch(t.client_router, 3) == []  # nothing queued: an empty batch, no error
    finally:
        dealer.close()
        t.close()
        ctx.destroy(linger=0)
