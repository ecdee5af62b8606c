"""Every unary request type of etcd's KV, Lease, Cluster and Maintenance services,
with random field values, through a real gRPC channel to a jangada member (and,
where etcd 3.4 has an HTTP path for it, as JSON through the member's gateway):
the answer is OK or an etcd-style error, never UNKNOWN (a Python exception's
text) and never a hang.

The messages are built from rpc_pb2's descriptors (any field, nested messages a
few levels deep, enums with values outside their declared set), so a field a
handler forgets to check shows up here. The garbage on the wire (undecodable
bytes, bad HTTP) is tests/integration/test_garbage_and_determinism.py's."""
from __future__ import annotations

import http.client
import json
from collections.abc import Callable
from typing import Any

import grpc
import pytest
from google.protobuf import json_format
from google.protobuf.descriptor import FieldDescriptor, MethodDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cluster.etcdpb import rpc_pb2
from node.etcd.routes import ROUTES_3_4
from node.localcluster import LocalCluster

pytestmark = [pytest.mark.timeout(240), pytest.mark.slow]

SERVICES = ("KV", "Lease", "Cluster", "Maintenance")
EXAMPLES_PER_METHOD = 20
CALL_SECONDS = 10.0
#: Nested messages (RequestOp -> TxnRequest -> ...) are built this deep at most.
MAX_DEPTH = 3

F = FieldDescriptor
_INTS: dict[int, tuple[int, int]] = {
    F.TYPE_INT32: (-2**31, 2**31 - 1), F.TYPE_SINT32: (-2**31, 2**31 - 1), F.TYPE_SFIXED32: (-2**31, 2**31 - 1),
    F.TYPE_INT64: (-2**63, 2**63 - 1), F.TYPE_SINT64: (-2**63, 2**63 - 1), F.TYPE_SFIXED64: (-2**63, 2**63 - 1),
    F.TYPE_UINT32: (0, 2**32 - 1), F.TYPE_FIXED32: (0, 2**32 - 1),
    F.TYPE_UINT64: (0, 2**64 - 1), F.TYPE_FIXED64: (0, 2**64 - 1),
}


def _scalar(field: FieldDescriptor, depth: int) -> st.SearchStrategy[Any] | None:
    if field.type in _INTS:
        low, high = _INTS[field.type]
        # Small values hit real ids, revisions and TTLs; the bounds hit overflows.
        return st.one_of(st.integers(-3, 1000).filter(lambda n: low <= n <= high), st.integers(low, high))
    if field.type == F.TYPE_BOOL:
        return st.booleans()
    if field.type == F.TYPE_STRING:
        return st.text(max_size=30)
    if field.type == F.TYPE_BYTES:
        return st.one_of(st.binary(max_size=30), st.sampled_from([b"", b"\0", b"a", b"\xff"]))
    if field.type in (F.TYPE_DOUBLE, F.TYPE_FLOAT):
        return st.floats(width=32)
    if field.type == F.TYPE_ENUM:
        declared = [v.number for v in field.enum_type.values]
        return st.one_of(st.sampled_from(declared), st.integers(-5, 100))  # open enums: unknown numbers too
    if field.type == F.TYPE_MESSAGE:
        return message_of(field.message_type, depth + 1) if depth < MAX_DEPTH else None
    raise AssertionError(f"unhandled field type {field.type} of {field.full_name}")


def message_of(descriptor: Any, depth: int = 0) -> st.SearchStrategy[Message]:
    """Messages of `descriptor`'s type with any subset of fields set at random."""
    cls = GetMessageClass(descriptor)
    fields: dict[str, st.SearchStrategy[Any]] = {}
    for field in descriptor.fields:
        value = _scalar(field, depth)
        if value is None:
            continue
        repeated = field.is_repeated
        fields[field.name] = st.lists(value, max_size=3) if repeated else value

    def build(values: dict[str, Any]) -> Message:
        message = cls()
        for name, value in values.items():
            field = descriptor.fields_by_name[name]
            if field.is_repeated:
                target = getattr(message, name)
                if field.type == F.TYPE_MESSAGE:
                    for item in value:
                        target.add().CopyFrom(item)
                else:
                    target.extend(value)
            elif field.type == F.TYPE_MESSAGE:
                getattr(message, name).CopyFrom(value)
            else:
                setattr(message, name, value)
        return message

    return st.fixed_dictionaries({}, optional=fields).map(build)


def unary_methods() -> list[MethodDescriptor]:
    return [method for name in SERVICES for method in rpc_pb2.DESCRIPTOR.services_by_name[name].methods
            if not method.client_streaming and not method.server_streaming]


def _refused_on_real_members(member_ids: set[int]) -> Callable[[str, Message], bool]:
    """Requests that would take the test's own cluster apart (removing a real
    member): not sent. Everything else is."""

    def refused(method: str, request: Message) -> bool:
        return method == "MemberRemove" and getattr(request, "ID") in member_ids

    return refused


def _http_paths() -> dict[tuple[str, str], str]:
    """etcd 3.4's first HTTP path of each (service, method)."""
    paths: dict[tuple[str, str], str] = {}
    for path, _attribute, service, name in ROUTES_3_4:
        paths.setdefault((service, name), f"/v3/{path}")
    return paths


def _through_gateway(gateway: str, path: str, request: Message) -> tuple[int, dict[str, Any]]:
    """POST `request` as JSON to `path`; the HTTP status and the decoded body."""
    host, port = gateway.removeprefix("http://").rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=CALL_SECONDS)
    try:
        body = json_format.MessageToJson(request, preserving_proto_field_name=True)
        connection.request("POST", path, body=body, headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, json.loads(response.read() or b"{}")
    finally:
        connection.close()


def test_every_unary_request_type_with_random_fields_gets_ok_or_an_etcd_error(
        make_etcd_cluster: Callable[..., LocalCluster]) -> None:
    cluster = make_etcd_cluster(size=1)
    skip = _refused_on_real_members(set(cluster.ids))
    seen: dict[str, dict[str, int]] = {}
    gateway = cluster.gateway_url(cluster.ids[0])
    http_paths = _http_paths()
    through_gateway: dict[str, int] = {}  # HTTP status -> count
    with grpc.insecure_channel(cluster.grpc_endpoint(cluster.ids[0])) as channel:
        for method in unary_methods():
            path = f"/{method.containing_service.full_name}/{method.name}"
            call = channel.unary_unary(path, request_serializer=lambda m: m.SerializeToString(),
                                       response_deserializer=GetMessageClass(method.output_type).FromString)
            codes = seen.setdefault(path, {})
            http_path = http_paths.get((method.containing_service.name, method.name))

            @settings(max_examples=EXAMPLES_PER_METHOD, deadline=None, database=None, derandomize=True,
                      suppress_health_check=list(HealthCheck))
            @given(request=message_of(method.input_type))
            def answers(request: Message) -> None:
                if skip(method.name, request):
                    return
                try:
                    call(request, timeout=CALL_SECONDS)
                except grpc.RpcError as error:
                    code, details = error.code(), error.details() or ""
                    assert code is not grpc.StatusCode.UNKNOWN, f"{path} {request}: {details}"
                    assert code is not grpc.StatusCode.DEADLINE_EXCEEDED, f"{path} hung on {request}"
                    assert "Traceback" not in details and "Unexpected <class" not in details, details
                    codes[code.name] = codes.get(code.name, 0) + 1
                else:
                    codes["OK"] = codes.get("OK", 0) + 1
                if http_path is not None:
                    status, answer = _through_gateway(gateway, http_path, request)
                    assert answer.get("code") != grpc.StatusCode.UNKNOWN.value[0], (http_path, request, answer)
                    assert status != 504, f"{http_path} hung on {request}"
                    through_gateway[str(status)] = through_gateway.get(str(status), 0) + 1

            answers()
    assert len(seen) == len(unary_methods()) >= 20
    assert all(seen.values()), seen  # every method was called
    assert sum(through_gateway.values()) >= 100 and "200" in through_gateway, through_gateway
    log = cluster.log_text(cluster.ids[0])
    assert "Traceback" not in log, log[log.index("Traceback"):][:3000]
