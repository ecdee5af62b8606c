"""The drop-traffic request's encoding and validation (bytes from anyone)."""
from __future__ import annotations

import msgpack
import pytest

from cluster.protocol import DropTrafficRequest, ProtocolError, decode_request, encode_request


def test_round_trip() -> None:
    request = DropTrafficRequest(7, (2, 3), 2.5, "in")
    assert decode_request(encode_request(request)) == request


@pytest.mark.parametrize(("field", "value"), [
    ("peers", []), ("peers", [0]), ("peers", [True]), ("peers", "2"),
    ("seconds", -1), ("seconds", 3601), ("seconds", True), ("seconds", "1"),
    ("direction", "sideways"), ("direction", None),
])
def test_bad_fields_are_refused_with_the_field_name(field: str, value: object) -> None:
    frame = {"v": 1, "id": 1, "op": "drop", "peers": [2], "seconds": 1.0, "direction": "both"}
    frame[field] = value
    with pytest.raises(ProtocolError, match=field):
        decode_request(msgpack.packb(frame))
