"""What the native garbage test throws at a member's ZeroMQ ports (client and
peer): random bytes, malformed and oversized messages, and raw TCP junk. Shared by
the plaintext garbage test and the secure-cluster one (test_curve_cluster.py),
which sends the same frames over plaintext, unknown-key and member-key CURVE
connections."""
from __future__ import annotations

import random
import socket
from collections.abc import Callable

import msgpack
import zmq

MAX_MESSAGE = 1 << 20


def garbage_frames(cluster_id: str, rng: random.Random) -> list[list[bytes]]:
    pack = msgpack.packb
    frames: list[list[bytes]] = [[rng.randbytes(rng.randrange(0, 300))] for _ in range(40)]
    frames += [
        [b""], [b"\xc1"], [pack(None)], [pack({"v": 1})], [pack([1, 2, 3])],
        [pack([99, cluster_id, 2, 1, []])],                       # unknown version
        [pack([1, "another-cluster", 2, 1, [1, 1, 0, 0, False, False]])],
        [pack([1, cluster_id, 2, 77, []])],                       # unknown type
        [pack([1, cluster_id, 2, 1, [1]])],                        # wrong arity
        [pack([1, cluster_id, 2, 3, [1, 1, 0, 0, [[1, 1, 9, b""]], 0]])],  # bad entry kind
        [pack([1, cluster_id, -5, 5, [1, 1, 0, b""]])],            # negative sender
        [pack([1, cluster_id, 2, 5, [1, "x", 0, b""]])],           # string term
        [pack([1, cluster_id, 2, 11, [1, 1, [5, 1, [1], [1]], 0, b"junk", True]])],  # snapshot chunk
        [pack([1, cluster_id, 2, 7, [1, 99, [1000, 99, [1, 2, 3], []]]])],  # bare InstallSnapshot
        [pack([1, cluster_id, 2, 7, [2, 99, [1000, 99, [1, 2, 3], []]]])],
        [pack([1, cluster_id, 2, 7, [3, 99, [1000, 99, [1, 2, 3], []]]])],
        [b"a", b"b", b"c"],                                        # wrong frame count
        [pack({"v": 1, "id": 7, "op": "nope"})],
        [pack({"v": 1, "id": 8, "op": "kv", "cmd": b"\x00garbage", "ser": False})],
        [pack({"v": 1, "id": "x", "op": "kv"})],
        # lease commands: malformed, out of range, and the leader-only expiry
        *[[pack({"v": 1, "id": 20 + i, "op": "kv", "cmd": pack([1, 0, 0, fields]), "ser": False})]
          for i, fields in enumerate([[8, -5, 0], [8, 2**62, 0], [8, 5, -1], [8, "5", 0], [9, None],
                                      [10, 2**63 - 1], [10, [1]], [11, 1, "yes"], [12, 1], [13, 1, 1],
                                      [13, "a", 1], [{}, 1]])],
        [pack([])], [pack([{"v": 1, "id": 9, "op": "status"}] * 1025)],  # empty / too big a batch
        [pack([{"v": 1, "id": 10, "op": "nope"}, 5, {"v": 1, "id": "y"}])],  # a batch of bad elements
        # watch requests: malformed, over a limit, for an unknown watch, from a far future revision
        [pack({"v": 1, "id": 19, "op": "watch", "wid": 1, "key": b"", "end": b""})],
        [pack({"v": 1, "id": 20, "op": "watch", "wid": -1, "key": b"k", "end": b"", "start": 0,
               "prev_kv": False, "progress_ms": 1000})],
        [pack({"v": 1, "id": 11, "op": "watch", "wid": 2, "key": b"k" * 9000, "end": b"", "start": 0,
               "prev_kv": False, "progress_ms": 1000})],
        [pack({"v": 1, "id": 12, "op": "watch", "wid": 3, "key": b"k", "end": b"\0", "start": 2**62,
               "prev_kv": True, "progress_ms": 60000})],
        [pack({"v": 1, "id": 13, "op": "watch-progress", "wid": 12345, "ack": 99, "notify": True})],
        [pack({"v": 1, "id": 14, "op": "watch-progress", "wid": 3, "ack": 2**62, "notify": True})],
        [pack({"v": 1, "id": 15, "op": "watch-cancel", "wid": "x"})],
        [pack([{"v": 1, "id": 16, "op": "watch-progress", "wid": 1, "ack": 0, "notify": False},
               {"v": 1, "id": 17, "op": "watch", "wid": 4}])],             # watch requests in a batch
        [b"\xff" * (MAX_MESSAGE + 10)],                            # oversized
    ]
    return frames


def spray(endpoint: str, frames: list[list[bytes]], identity: bytes | None, wait: float,
          secure: Callable[[zmq.Socket[bytes]], None] | None = None) -> list[bytes]:
    """Send every frame from one DEALER and return what comes back within `wait`
    seconds of the last; then the oversized ones from another (ZeroMQ disconnects
    whoever sends them, which would lose our replies). `secure` sets a socket up
    before it connects (CURVE keys)."""
    small = [f for f in frames if sum(map(len, f)) <= MAX_MESSAGE]
    large = [f for f in frames if sum(map(len, f)) > MAX_MESSAGE]
    ctx = zmq.Context()
    replies: list[bytes] = []
    try:
        s = ctx.socket(zmq.DEALER)
        s.setsockopt(zmq.LINGER, 0)
        # A connection that never completes its handshake (plaintext to a CURVE
        # port, a wrong key) takes frames only up to the high-water mark, then a
        # send would block for ever: give up on what does not leave in a second.
        s.setsockopt(zmq.SNDTIMEO, 1000)
        if identity is not None:
            s.setsockopt(zmq.IDENTITY, identity)
        if secure is not None:
            secure(s)
        s.connect(endpoint)
        _send_all(s, small)
        while s.poll(int(wait * 1000), zmq.POLLIN):
            replies.append(s.recv())
        s.close(linger=0)
        s = ctx.socket(zmq.DEALER)
        s.setsockopt(zmq.LINGER, 0)
        s.setsockopt(zmq.SNDTIMEO, 1000)
        if secure is not None:
            secure(s)
        s.connect(endpoint)
        _send_all(s, large)
        s.close(linger=200)
    finally:
        # destroy, not term: term waits for every socket, and one whose CURVE
        # handshake never ends (a wrong key, a refused ZAP) held it forever, past
        # pytest-timeout (a C call) and the module's teardown
        ctx.destroy(linger=0)
    return replies


def _send_all(socket: zmq.Socket[bytes], frames: list[list[bytes]]) -> None:
    """Send `frames` until one cannot leave within the socket's send timeout."""
    for frame in frames:
        try:
            socket.send_multipart(frame)
        except zmq.Again:
            return


def raw_tcp_garbage(endpoint: str, rng: random.Random) -> None:
    host, port = endpoint.removeprefix("tcp://").rsplit(":", 1)
    for _ in range(5):
        with socket.create_connection((host, int(port)), timeout=2) as s:
            s.sendall(rng.randbytes(rng.randrange(1, 2000)))
