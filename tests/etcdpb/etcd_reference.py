"""etcd's .proto text read just far enough to compare its wire contract with ours.

Not a protobuf parser: it understands the shapes etcd 3.4's five API files use —
messages with scalar, message and enum fields, `repeated`, oneofs, nested enums, top-level
enums, services of rpcs with `stream` — and skips options and annotation blocks. What it
yields (names, numbers, types) is what a client's bytes depend on, so comparing it with our
generated descriptors (`contract_mismatches`) is what guards the wire contract.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor, FileDescriptor


@dataclass(frozen=True)
class Field:
    name: str
    number: int
    type_name: str  # a scalar keyword ("int64") or a message/enum name as written ("mvccpb.KeyValue")
    repeated: bool
    oneof: str | None


@dataclass(frozen=True)
class Rpc:
    name: str
    request: str
    response: str
    client_streaming: bool
    server_streaming: bool


@dataclass
class ProtoFile:
    package: str = ""
    messages: dict[str, list[Field]] = field(default_factory=dict)  # "RangeRequest" -> fields
    enums: dict[str, dict[str, int]] = field(default_factory=dict)  # "RangeRequest.SortOrder" -> values
    services: dict[str, list[Rpc]] = field(default_factory=dict)


_TOKEN = re.compile(
    r"(?P<package>\bpackage\s+(?P<pkg>[\w.]+)\s*;)"
    r"|(?P<rpc>\brpc\s+(?P<rpc_name>\w+)\s*\(\s*(?P<cstream>stream\s+)?(?P<req>[\w.]+)\s*\)"
    r"\s*returns\s*\(\s*(?P<sstream>stream\s+)?(?P<resp>[\w.]+)\s*\))"
    r"|(?P<scope>\b(?P<kind>message|enum|oneof|service)\s+(?P<scope_name>\w+)\s*\{)"
    r"|(?P<field>(?P<rep>\brepeated\s+)?(?P<ftype>[\w.]+)\s+(?P<fname>\w+)\s*=\s*(?P<fnum>\d+)\s*[;\[])"
    r"|(?P<value>\b(?P<vname>\w+)\s*=\s*(?P<vnum>-?\d+)\s*;)"
    r"|(?P<open>\{)|(?P<close>\})"
)
_COMMENT = re.compile(r"//[^\n]*")
_SCALARS = {
    FieldDescriptor.TYPE_DOUBLE: "double", FieldDescriptor.TYPE_FLOAT: "float",
    FieldDescriptor.TYPE_INT64: "int64", FieldDescriptor.TYPE_UINT64: "uint64",
    FieldDescriptor.TYPE_INT32: "int32", FieldDescriptor.TYPE_UINT32: "uint32",
    FieldDescriptor.TYPE_FIXED64: "fixed64", FieldDescriptor.TYPE_FIXED32: "fixed32",
    FieldDescriptor.TYPE_BOOL: "bool", FieldDescriptor.TYPE_STRING: "string",
    FieldDescriptor.TYPE_BYTES: "bytes", FieldDescriptor.TYPE_SFIXED32: "sfixed32",
    FieldDescriptor.TYPE_SFIXED64: "sfixed64", FieldDescriptor.TYPE_SINT32: "sint32",
    FieldDescriptor.TYPE_SINT64: "sint64",
}


def parse(text: str) -> ProtoFile:
    """The messages, enums and services of one .proto file's text."""
    proto = ProtoFile()
    scopes: list[tuple[str, str]] = []  # (kind, name); kind "block" for option/rpc bodies
    for match in _TOKEN.finditer(_COMMENT.sub("", text)):
        group = match.lastgroup
        names = [name for kind, name in scopes if kind in ("message", "enum")]
        if group == "package":
            proto.package = match["pkg"]
        elif group == "scope":
            kind, name = match["kind"], match["scope_name"]
            scopes.append((kind, name))
            qualified = ".".join([*names, name])
            if kind == "message":
                proto.messages[qualified] = []
            elif kind == "enum":
                proto.enums[qualified] = {}
            elif kind == "service":
                proto.services[name] = []
        elif group == "rpc":
            proto.services[scopes[-1][1]].append(Rpc(
                match["rpc_name"], match["req"], match["resp"],
                match["cstream"] is not None, match["sstream"] is not None))
        elif group == "field" and scopes and scopes[-1][0] in ("message", "oneof"):
            oneof = scopes[-1][1] if scopes[-1][0] == "oneof" else None
            proto.messages[".".join(names)].append(Field(
                match["fname"], int(match["fnum"]), match["ftype"], match["rep"] is not None, oneof))
        elif group == "value" and scopes and scopes[-1][0] == "enum":
            proto.enums[".".join(names)][match["vname"]] = int(match["vnum"])
        elif group == "open":
            scopes.append(("block", ""))
        elif group == "close":
            scopes.pop()
    return proto


def _type_name(ours: FieldDescriptor) -> str:
    if ours.type == FieldDescriptor.TYPE_MESSAGE:
        return str(ours.message_type.full_name)
    if ours.type == FieldDescriptor.TYPE_ENUM:
        return str(ours.enum_type.full_name)
    return _SCALARS[ours.type]


def _same_type(reference: str, ours: str) -> bool:
    """A reference name may be package-qualified or relative; ours is always full."""
    return ours == reference or ours.endswith("." + reference)


def _field_mismatches(where: str, fields: list[Field], ours: Descriptor) -> list[str]:
    problems = []
    for ref in fields:
        mine = ours.fields_by_name.get(ref.name)
        if mine is None:
            problems.append(f"{where}.{ref.name}: missing")
            continue
        mine_oneof = mine.containing_oneof.name if mine.containing_oneof else None
        if mine.number != ref.number:
            problems.append(f"{where}.{ref.name}: number {mine.number}, etcd {ref.number}")
        if not _same_type(ref.type_name, _type_name(mine)):
            problems.append(f"{where}.{ref.name}: type {_type_name(mine)}, etcd {ref.type_name}")
        if mine.is_repeated != ref.repeated:
            problems.append(f"{where}.{ref.name}: repeated differs from etcd")
        if mine_oneof != ref.oneof:
            problems.append(f"{where}.{ref.name}: oneof {mine_oneof}, etcd {ref.oneof}")
    extra = set(ours.fields_by_name) - {ref.name for ref in fields}
    problems += [f"{where}.{name}: not in etcd" for name in sorted(extra)]
    return problems


def _enum_mismatches(where: str, values: dict[str, int], ours: EnumDescriptor) -> list[str]:
    mine = {value.name: value.number for value in ours.values}
    return [] if mine == values else [f"{where}: values {mine}, etcd {values}"]


def _service_mismatches(name: str, rpcs: list[Rpc], ours: FileDescriptor) -> list[str]:
    service = ours.services_by_name.get(name)
    if service is None:
        return [f"service {name}: missing"]
    problems = []
    for rpc in rpcs:
        method = service.methods_by_name.get(rpc.name)
        if method is None:
            problems.append(f"{name}.{rpc.name}: missing")
            continue
        mine = (method.input_type.full_name, method.output_type.full_name,
                method.client_streaming, method.server_streaming)
        if not (_same_type(rpc.request, mine[0]) and _same_type(rpc.response, mine[1])
                and mine[2:] == (rpc.client_streaming, rpc.server_streaming)):
            problems.append(f"{name}.{rpc.name}: ours {mine}, etcd {rpc}")
    extra = set(service.methods_by_name) - {rpc.name for rpc in rpcs}
    return problems + [f"{name}.{method}: not in etcd" for method in sorted(extra)]


def _find(ours: FileDescriptor, qualified: str, kind: str) -> Descriptor | EnumDescriptor | None:
    """Our message or enum at a dotted path relative to the file's package."""
    head, *rest = qualified.split(".")
    found: Descriptor | EnumDescriptor | None
    if not rest:
        table = ours.message_types_by_name if kind == "message" else ours.enum_types_by_name
        return table.get(head)
    found = ours.message_types_by_name.get(head)
    for i, part in enumerate(rest):
        if not isinstance(found, Descriptor):
            return None
        last = i == len(rest) - 1
        table = found.enum_types_by_name if last and kind == "enum" else found.nested_types_by_name
        found = table.get(part)
    return found


def contract_mismatches(reference: ProtoFile, ours: FileDescriptor) -> list[str]:
    """Every difference between etcd's file and ours that a peer's bytes could notice
    (plus any message, field or rpc we have and etcd has not); empty when they agree."""
    problems = [] if reference.package == ours.package else [f"package {ours.package}, etcd {reference.package}"]
    for name, fields in reference.messages.items():
        mine = _find(ours, name, "message")
        if not isinstance(mine, Descriptor):
            problems.append(f"message {name}: missing")
        else:
            problems += _field_mismatches(name, fields, mine)
    for name, values in reference.enums.items():
        mine_enum = _find(ours, name, "enum")
        if not isinstance(mine_enum, EnumDescriptor):
            problems.append(f"enum {name}: missing")
        else:
            problems += _enum_mismatches(name, values, mine_enum)
    extra_messages = set(ours.message_types_by_name) - set(reference.messages)
    problems += [f"message {name}: not in etcd" for name in sorted(extra_messages)]
    for name, rpcs in reference.services.items():
        problems += _service_mismatches(name, rpcs, ours)
    problems += [f"service {name}: not in etcd" for name in sorted(set(ours.services_by_name) - set(reference.services))]
    return problems
