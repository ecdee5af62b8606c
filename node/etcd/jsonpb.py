"""Protobuf messages as JSON, the way etcd 3.4's gateway writes and reads them.

etcd 3.4 builds its gateway with grpc-gateway v1's default marshaler,
`runtime.JSONPb{OrigName: true}` (golang/protobuf's jsonpb): field names are
the proto's own (`create_revision`, `ID`, `TTL`), fields at their default value
are left out (EmitDefaults is false), 64-bit integers are strings, bytes are
standard base64 and enums their names. google.protobuf.json_format does the
same mapping with `preserving_proto_field_name=True`.

Reading is stricter than json_format on two points where Go refuses a request
and json_format would quietly accept it: bytes must be valid standard base64 and
an enum named by string must exist. Unknown fields are ignored (the gateway's
decoder sets AllowUnknownFields). The first JSON value of a body is the request;
whatever follows it is not read, as Go's streaming decoder does not.

Go's encoding/json also escapes <, > and & (and U+2028/U+2029) inside strings
and writes other non-ASCII text as UTF-8; `dumps` does the same so the bytes on
the wire match.
"""
from __future__ import annotations

import binascii
import json
from collections.abc import Iterator
from typing import Any

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor
from google.protobuf.message import Message


class JsonRequestError(ValueError):
    """A body that is not a request of the route's type; the message is what the
    gateway answers (Go's wording where it is cheap to match)."""


_GO_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
_DECODER = json.JSONDecoder()
_WHITESPACE = " \t\n\r"


def dumps(value: Any) -> bytes:
    """Compact JSON as Go's encoding/json writes it."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    if any(char in text for char in _GO_ESCAPES):
        text = "".join(_GO_ESCAPES.get(char, char) for char in text)
    return text.encode()


def message_dict(message: Message) -> dict[str, Any]:
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


def message_json(message: Message) -> bytes:
    return dumps(message_dict(message))


def json_values(body: bytes) -> Iterator[Any]:
    """The JSON values of a body, one after another (a stream's requests)."""
    try:
        text = body.decode()
    except UnicodeDecodeError as error:
        raise JsonRequestError(f"invalid UTF-8 in request body at byte {error.start}") from None
    position = 0
    while True:
        while position < len(text) and text[position] in _WHITESPACE:
            position += 1
        if position == len(text):
            return
        try:
            value, position = _DECODER.raw_decode(text, position)
        except json.JSONDecodeError as error:
            if error.pos >= len(text.rstrip(_WHITESPACE)) or error.msg.startswith("Unterminated string"):
                raise JsonRequestError("unexpected EOF") from None
            raise JsonRequestError(f"invalid JSON at offset {error.pos}: {error.msg}") from None
        yield value


def parse_value(value: Any, message_class: type[Message]) -> Message:
    """One request message from a decoded JSON value."""
    if value is None:
        return message_class()
    if not isinstance(value, dict):
        raise JsonRequestError(f"json: cannot unmarshal {_json_kind(value)} into Go value of type "
                               "map[string]json.RawMessage")
    _check_strict(value, message_class.DESCRIPTOR)
    try:
        return json_format.ParseDict(value, message_class(), ignore_unknown_fields=True)
    except json_format.ParseError as error:
        raise JsonRequestError(str(error)) from None


def first_request(body: bytes, message_class: type[Message]) -> Message:
    """A unary call's request: the body's first JSON value; an empty body is the
    empty request (the gateway treats EOF as no fields)."""
    for value in json_values(body):
        return parse_value(value, message_class)
    return message_class()


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array"


def _check_strict(value: dict[str, Any], descriptor: Descriptor) -> None:
    """Refuse what Go's jsonpb refuses and json_format lets through: bad base64,
    unknown enum names. Walks only the fields present."""
    for name, item in value.items():
        field = descriptor.fields_by_name.get(name) or descriptor.fields_by_camelcase_name.get(name)
        if field is None or item is None:
            continue
        items = item if field.is_repeated and isinstance(item, list) else [item]
        for element in items:
            if field.type == FieldDescriptor.TYPE_BYTES and isinstance(element, str):
                _check_base64(element)
            elif field.type == FieldDescriptor.TYPE_ENUM and isinstance(element, str):
                _check_enum(element, field.enum_type)
            elif field.type == FieldDescriptor.TYPE_MESSAGE and isinstance(element, dict):
                _check_strict(element, field.message_type)


def _check_base64(text: str) -> None:
    """Go's base64.StdEncoding: the standard alphabet with padding (line breaks
    are skipped)."""
    compact = text.replace("\r", "").replace("\n", "")
    try:
        binascii.a2b_base64(compact.encode("ascii"), strict_mode=True)
        return
    except (binascii.Error, UnicodeEncodeError):
        pass
    for index, char in enumerate(text):
        if char not in _BASE64_ALPHABET and char not in "\r\n":
            raise JsonRequestError(f"illegal base64 data at input byte {index}")
    raise JsonRequestError(f"illegal base64 data at input byte {len(text)}")


_BASE64_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")


def _check_enum(name: str, enum: EnumDescriptor) -> None:
    if name not in enum.values_by_name:
        raise JsonRequestError(f'unknown value "{name}" for enum {_go_type_name(enum)}')


def _go_type_name(enum: EnumDescriptor) -> str:
    """`etcdserverpb.RangeRequest_SortOrder`: the Go type golang/protobuf names."""
    package = enum.file.package
    nested = enum.full_name[len(package) + 1:] if package else enum.full_name
    return f"{package}.{nested.replace('.', '_')}" if package else nested.replace(".", "_")
