"""cluster/etcdpb is etcd 3.4's v3 wire contract: the committed modules are what the
committed .proto files generate, and names, numbers and method paths are etcd's.

etcdctl, Go clientv3 and the Python etcd clients were compiled from etcd's own .proto
files; they agree with us only on what reaches the wire — gRPC method paths, field
numbers and types — so that is what these tests pin, against a table written here and,
where etcd's sources are installed, against etcd's .proto text itself.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from google.protobuf.message import Message

from cluster.etcdpb import (
    auth_pb2,
    kv_pb2,
    regen,
    rpc_pb2,
    rpc_pb2_grpc,
    v3election_pb2,
    v3election_pb2_grpc,
    v3lock_pb2,
    v3lock_pb2_grpc,
)
from tests.etcdpb.etcd_reference import contract_mismatches, parse

ETCD_SRC = Path("/usr/share/gocode/src/go.etcd.io/etcd")
#: etcd 3.4's file for each of our modules.
REFERENCE_FILES = {
    "mvcc/mvccpb/kv.proto": kv_pb2,
    "auth/authpb/auth.proto": auth_pb2,
    "etcdserver/etcdserverpb/rpc.proto": rpc_pb2,
    "etcdserver/api/v3lock/v3lockpb/v3lock.proto": v3lock_pb2,
    "etcdserver/api/v3election/v3electionpb/v3election.proto": v3election_pb2,
}

# etcd 3.4's every RPC as (method path, streaming kind), written from its rpc.proto,
# v3lock.proto and v3election.proto: "uu" unary, "us" server-streaming, "ss" bidirectional.
ETCD_METHODS = {
    "/etcdserverpb.KV/Range": "uu",
    "/etcdserverpb.KV/Put": "uu",
    "/etcdserverpb.KV/DeleteRange": "uu",
    "/etcdserverpb.KV/Txn": "uu",
    "/etcdserverpb.KV/Compact": "uu",
    "/etcdserverpb.Watch/Watch": "ss",
    "/etcdserverpb.Lease/LeaseGrant": "uu",
    "/etcdserverpb.Lease/LeaseRevoke": "uu",
    "/etcdserverpb.Lease/LeaseKeepAlive": "ss",
    "/etcdserverpb.Lease/LeaseTimeToLive": "uu",
    "/etcdserverpb.Lease/LeaseLeases": "uu",
    "/etcdserverpb.Cluster/MemberAdd": "uu",
    "/etcdserverpb.Cluster/MemberRemove": "uu",
    "/etcdserverpb.Cluster/MemberUpdate": "uu",
    "/etcdserverpb.Cluster/MemberList": "uu",
    "/etcdserverpb.Cluster/MemberPromote": "uu",
    "/etcdserverpb.Maintenance/Alarm": "uu",
    "/etcdserverpb.Maintenance/Status": "uu",
    "/etcdserverpb.Maintenance/Defragment": "uu",
    "/etcdserverpb.Maintenance/Hash": "uu",
    "/etcdserverpb.Maintenance/HashKV": "uu",
    "/etcdserverpb.Maintenance/Snapshot": "us",
    "/etcdserverpb.Maintenance/MoveLeader": "uu",
    "/etcdserverpb.Auth/AuthEnable": "uu",
    "/etcdserverpb.Auth/AuthDisable": "uu",
    "/etcdserverpb.Auth/Authenticate": "uu",
    "/etcdserverpb.Auth/UserAdd": "uu",
    "/etcdserverpb.Auth/UserGet": "uu",
    "/etcdserverpb.Auth/UserList": "uu",
    "/etcdserverpb.Auth/UserDelete": "uu",
    "/etcdserverpb.Auth/UserChangePassword": "uu",
    "/etcdserverpb.Auth/UserGrantRole": "uu",
    "/etcdserverpb.Auth/UserRevokeRole": "uu",
    "/etcdserverpb.Auth/RoleAdd": "uu",
    "/etcdserverpb.Auth/RoleGet": "uu",
    "/etcdserverpb.Auth/RoleList": "uu",
    "/etcdserverpb.Auth/RoleDelete": "uu",
    "/etcdserverpb.Auth/RoleGrantPermission": "uu",
    "/etcdserverpb.Auth/RoleRevokePermission": "uu",
    "/v3lockpb.Lock/Lock": "uu",
    "/v3lockpb.Lock/Unlock": "uu",
    "/v3electionpb.Election/Campaign": "uu",
    "/v3electionpb.Election/Proclaim": "uu",
    "/v3electionpb.Election/Leader": "uu",
    "/v3electionpb.Election/Observe": "us",
    "/v3electionpb.Election/Resign": "uu",
}

# (message class, field, etcd's number) for the fields most likely to be misnumbered:
# late additions, gaps, and camelCase names.
ETCD_FIELD_NUMBERS = [
    (rpc_pb2.RangeRequest, "serializable", 7),
    (rpc_pb2.RangeRequest, "max_create_revision", 13),
    (rpc_pb2.PutRequest, "ignore_lease", 6),
    (rpc_pb2.WatchCreateRequest, "fragment", 8),
    (rpc_pb2.WatchResponse, "fragment", 7),
    (rpc_pb2.WatchResponse, "events", 11),
    (rpc_pb2.ResponseHeader, "raft_term", 4),
    (rpc_pb2.Compare, "range_end", 64),
    (rpc_pb2.Compare, "lease", 8),
    (rpc_pb2.Member, "isLearner", 5),
    (rpc_pb2.StatusResponse, "isLearner", 10),
    (rpc_pb2.StatusResponse, "dbSizeInUse", 9),
    (rpc_pb2.LeaseTimeToLiveResponse, "grantedTTL", 4),
    (rpc_pb2.AuthUserGrantRoleRequest, "user", 1),
    (auth_pb2.Permission, "permType", 1),
    (kv_pb2.KeyValue, "lease", 6),
    (v3election_pb2.LeaderKey, "rev", 3),
]


class RecordingChannel:
    """A grpc.Channel stand-in that records the method paths a stub registers."""

    def __init__(self) -> None:
        self.methods: dict[str, str] = {}

    def _recorder(self, kind: str) -> Any:
        def register(path: str, **_serializers: Any) -> None:
            self.methods[path] = kind
        return register

    def __getattr__(self, name: str) -> Any:
        kinds = {"unary_unary": "uu", "unary_stream": "us", "stream_unary": "su", "stream_stream": "ss"}
        if name not in kinds:
            raise AttributeError(name)
        return self._recorder(kinds[name])


def _stub_methods() -> dict[str, str]:
    channel = RecordingChannel()
    stubs = [rpc_pb2_grpc.KVStub, rpc_pb2_grpc.WatchStub, rpc_pb2_grpc.LeaseStub, rpc_pb2_grpc.ClusterStub,
             rpc_pb2_grpc.MaintenanceStub, rpc_pb2_grpc.AuthStub, v3lock_pb2_grpc.LockStub,
             v3election_pb2_grpc.ElectionStub]
    for stub in stubs:
        stub(channel)
    return channel.methods


def _descriptor_methods() -> dict[str, str]:
    methods = {}
    for module in (rpc_pb2, v3lock_pb2, v3election_pb2):
        for service in module.DESCRIPTOR.services_by_name.values():
            for method in service.methods:
                kind = ("s" if method.client_streaming else "u") + ("s" if method.server_streaming else "u")
                methods[f"/{service.full_name}/{method.name}"] = kind
    return methods


# --- the committed modules are current ----------------------------------------------


def test_committed_modules_are_what_the_protos_generate() -> None:
    stale = regen.stale_files(regen.fresh_modules(), regen.committed())
    assert stale == [], f"stale generated modules {stale}: run python -m cluster.etcdpb.regen"


def test_the_check_names_the_modules_of_an_edited_proto(tmp_path: Path) -> None:
    """The currency check can fail: a field added to a copy of kv.proto makes kv's modules stale."""
    copy = tmp_path / "src" / regen.PACKAGE_PATH
    copy.mkdir(parents=True)
    for proto in regen.proto_files():
        (copy / proto.name).write_bytes(proto.read_bytes())
    kv = copy / "kv.proto"
    kv.write_text(kv.read_text().replace("int64 lease = 6;", "int64 lease = 6;\n  bytes extra = 7;"))
    out = tmp_path / "out"
    out.mkdir()
    fresh = regen.generate(out, source_root=tmp_path / "src")
    assert regen.stale_files(fresh, regen.committed()) == ["kv_pb2.py", "kv_pb2.pyi"]


def test_the_check_names_missing_and_orphaned_modules() -> None:
    current = regen.committed()
    fresh = dict(current)
    del fresh["rpc_pb2_grpc.py"]
    fresh["gone_pb2.py"] = b""
    assert regen.stale_files(fresh, current) == ["gone_pb2.py", "rpc_pb2_grpc.py"]


def test_a_different_compiler_is_named_as_the_likely_cause() -> None:
    current = regen.committed()
    assert regen.compiler_mismatch(current) is None
    old = {name: text.replace(b"GRPC_GENERATED_VERSION = '", b"GRPC_GENERATED_VERSION = '0.") for name, text in current.items()}
    message = regen.compiler_mismatch(old)
    assert message is not None and "0.1.85.4" in message and "setup.cfg" in message


def test_regen_check_exits_0_from_any_cwd(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(regen.REPO_ROOT)}
    done = subprocess.run([sys.executable, "-m", "cluster.etcdpb.regen", "--check"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert (done.returncode, done.stderr) == (0, "")


def test_only_files_with_services_get_grpc_modules() -> None:
    names = set(regen.committed())
    assert {"rpc_pb2_grpc.py", "v3lock_pb2_grpc.py", "v3election_pb2_grpc.py"} <= names
    assert not {"kv_pb2_grpc.py", "auth_pb2_grpc.py"} & names


# --- gRPC method paths -----------------------------------------------------------------


def test_every_etcd_rpc_has_etcds_method_path_and_streaming_kind() -> None:
    assert _descriptor_methods() == ETCD_METHODS


def test_the_generated_stubs_call_etcds_method_paths() -> None:
    assert _stub_methods() == ETCD_METHODS


# --- field numbers ---------------------------------------------------------------------


@pytest.mark.parametrize(("message", "name", "number"), ETCD_FIELD_NUMBERS,
                         ids=[f"{m.DESCRIPTOR.name}.{n}" for m, n, _ in ETCD_FIELD_NUMBERS])
def test_field_has_etcds_number(message: type[Message], name: str, number: int) -> None:
    assert message.DESCRIPTOR.fields_by_name[name].number == number


def test_alarm_type_is_top_level_and_sort_order_nested_as_in_etcd() -> None:
    assert rpc_pb2.AlarmType.Value("NOSPACE") == 1
    assert rpc_pb2.RangeRequest.SortOrder.Value("DESCEND") == 2
    assert rpc_pb2.Compare.CompareTarget.Value("LEASE") == 4
    assert kv_pb2.Event.EventType.Value("DELETE") == 1


# --- bytes -----------------------------------------------------------------------------


def test_put_request_bytes_are_etcds_encoding() -> None:
    """Written by hand from the proto3 wire format: key=1 and value=2 length-delimited,
    lease=3 varint, ignore_lease=6 varint."""
    request = rpc_pb2.PutRequest(key=b"foo", value=b"bar", lease=0x7F, ignore_lease=True)
    assert request.SerializeToString() == b"\x0a\x03foo\x12\x03bar\x18\x7f\x30\x01"


def test_compare_range_end_is_field_64() -> None:
    """Field 64's tag needs two varint bytes: (64 << 3 | 2) = 0x202 -> 0x82 0x04."""
    assert rpc_pb2.Compare(range_end=b"z").SerializeToString() == b"\x82\x04\x01z"


def test_a_nested_txn_round_trips_with_its_values_and_oneofs() -> None:
    inner = rpc_pb2.TxnRequest(success=[rpc_pb2.RequestOp(request_range=rpc_pb2.RangeRequest(key=b"k", limit=3))])
    txn = rpc_pb2.TxnRequest(
        compare=[rpc_pb2.Compare(result=rpc_pb2.Compare.GREATER, target=rpc_pb2.Compare.MOD,
                                 key=b"a", mod_revision=42, range_end=b"b")],
        success=[rpc_pb2.RequestOp(request_put=rpc_pb2.PutRequest(key=b"a", value=b"\x00\xff", prev_kv=True))],
        failure=[rpc_pb2.RequestOp(request_delete_range=rpc_pb2.DeleteRangeRequest(key=b"a", range_end=b"\x00")),
                 rpc_pb2.RequestOp(request_txn=inner)],
    )
    parsed = rpc_pb2.TxnRequest.FromString(txn.SerializeToString())
    assert parsed == txn
    compare = parsed.compare[0]
    assert (compare.WhichOneof("target_union"), compare.mod_revision, compare.range_end) == ("mod_revision", 42, b"b")
    assert parsed.success[0].request_put.value == b"\x00\xff"
    assert [op.WhichOneof("request") for op in parsed.failure] == ["request_delete_range", "request_txn"]
    assert parsed.failure[1].request_txn.success[0].request_range.limit == 3


def test_a_watch_response_round_trips_with_its_events() -> None:
    kv = kv_pb2.KeyValue(key=b"k", value=b"v", create_revision=2, mod_revision=5, version=3, lease=7)
    response = rpc_pb2.WatchResponse(
        header=rpc_pb2.ResponseHeader(cluster_id=2**64 - 1, member_id=9, revision=5, raft_term=3),
        watch_id=1, events=[kv_pb2.Event(type=kv_pb2.Event.DELETE, kv=kv, prev_kv=kv)], fragment=True,
    )
    parsed = rpc_pb2.WatchResponse.FromString(response.SerializeToString())
    assert parsed == response
    assert parsed.header.cluster_id == 2**64 - 1
    assert (parsed.events[0].type, parsed.events[0].prev_kv.lease) == (kv_pb2.Event.DELETE, 7)


def test_lock_and_election_messages_carry_etcdserverpb_headers() -> None:
    header = rpc_pb2.ResponseHeader(revision=11)
    lock = v3lock_pb2.LockResponse(header=header, key=b"lock/1")
    leader = v3election_pb2.LeaderResponse(header=header, kv=kv_pb2.KeyValue(key=b"e/1", value=b"me"))
    assert v3lock_pb2.LockResponse.FromString(lock.SerializeToString()).header.revision == 11
    assert v3election_pb2.LeaderResponse.FromString(leader.SerializeToString()).kv.value == b"me"


# --- the whole contract against etcd's own .proto text --------------------------------


@pytest.mark.parametrize("relative", sorted(REFERENCE_FILES))
def test_every_etcd_message_field_enum_and_rpc_matches_ours(relative: str) -> None:
    path = ETCD_SRC / relative
    if not path.exists():
        pytest.skip(f"etcd 3.4's sources are not installed: no {path}")
    reference = parse(path.read_text(encoding="utf-8"))
    assert reference.messages, f"read no messages from {path}: the reference parser is broken"
    assert contract_mismatches(reference, REFERENCE_FILES[relative].DESCRIPTOR) == []


def test_the_contract_comparison_reports_each_kind_of_drift() -> None:
    """The guard itself can fail: a reference that differs from kv.proto in a number,
    a type, a label, a missing field, an enum value, a message and a package."""
    drifted = parse("""
        syntax = "proto3";
        package mvccpb;
        import "gogoproto/gogo.proto";
        option (gogoproto.marshaler_all) = true;
        message KeyValue {
          bytes key = 1;
          int64 create_revision = 2;
          int64 mod_revision = 3;
          uint64 version = 4;             // type differs
          repeated bytes value = 5;       // label differs
          int64 lease = 16 [(gogoproto.nullable) = false];  // number differs
          string owner = 7;               // we lack it
        }
        message Event {
          enum EventType {
            PUT = 0;
            DELETE = 1;
            EXPIRE = 2;                   // we lack it
          }
          EventType type = 1;
          KeyValue kv = 2;
          oneof previous { KeyValue prev_kv = 3; }  // oneof differs
        }
        message Gone {}
    """)
    problems = contract_mismatches(drifted, kv_pb2.DESCRIPTOR)
    assert problems == [
        "KeyValue.version: type int64, etcd uint64",
        "KeyValue.value: repeated differs from etcd",
        "KeyValue.lease: number 6, etcd 16",
        "KeyValue.owner: missing",
        "Event.prev_kv: oneof None, etcd previous",
        "message Gone: missing",
        "Event.EventType: values {'PUT': 0, 'DELETE': 1}, etcd {'PUT': 0, 'DELETE': 1, 'EXPIRE': 2}",
    ]
    drifted.package = "etcdserverpb"
    assert contract_mismatches(drifted, kv_pb2.DESCRIPTOR)[0] == "package mvccpb, etcd etcdserverpb"


def test_the_contract_comparison_reports_rpc_drift() -> None:
    drifted = parse("""
        package v3lockpb;
        service Lock {
          rpc Lock(LockRequest) returns (stream LockResponse) {
            option (google.api.http) = { post: "/v3/lock/lock" body: "*" };
          }
          rpc Steal(LockRequest) returns (LockResponse) {}
        }
        message LockRequest { bytes name = 1; int64 lease = 2; }
        message LockResponse { etcdserverpb.ResponseHeader header = 1; bytes key = 2; }
        message UnlockRequest { bytes key = 1; }
        message UnlockResponse { etcdserverpb.ResponseHeader header = 1; }
    """)
    problems = contract_mismatches(drifted, v3lock_pb2.DESCRIPTOR)
    assert [p.split(":")[0] for p in problems] == ["Lock.Lock", "Lock.Steal", "Lock.Unlock"]
    assert problems[1:] == ["Lock.Steal: missing", "Lock.Unlock: not in etcd"]
