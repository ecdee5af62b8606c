"""A small, strict HTTP/1.1 server side over asyncio streams: what the JSON
gateway needs and nothing more.

Reading: the request line, headers (bounded in size and count), a body by
Content-Length or chunked transfer coding (bounded by `max_body`). Anything
else is a `BadRequest` carrying the 4xx to answer before the connection
closes; a peer that goes away mid-request is `ConnectionGone` (nobody to answer).
Writing: a whole response with Content-Length, or a chunked stream for the
streaming RPCs. Keep-alive follows HTTP/1.1's rules (HTTP/1.0 only on request).

No pipelining beyond reading the next request after the previous answer, no
Expect: 100-continue dance beyond answering it, no upgrades (etcd's websocket
proxy is not offered).
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from email.utils import formatdate

#: Go's net/http answers 431 past 1 MiB of headers; a gateway request needs a few hundred bytes.
MAX_HEADER_BYTES = 64 * 1024
MAX_HEADERS = 100
MAX_LINE = 8 * 1024
REASONS = {
    200: "OK", 400: "Bad Request", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
    408: "Request Timeout", 409: "Conflict", 411: "Length Required", 412: "Precondition Failed",
    413: "Payload Too Large", 414: "URI Too Long", 429: "Too Many Requests",
    431: "Request Header Fields Too Large", 500: "Internal Server Error", 501: "Not Implemented",
    503: "Service Unavailable", 504: "Gateway Timeout", 505: "HTTP Version Not Supported", 401: "Unauthorized",
}
_TOKEN = frozenset("!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")


class BadRequest(Exception):
    """A request that breaks HTTP/1.1 (or our limits): answer `status`, then close."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.text = text


class ConnectionGone(Exception):
    """The peer closed (or broke) the connection before a whole request arrived."""


@dataclass(slots=True)
class HttpRequest:
    method: str
    target: str
    version: str
    headers: dict[str, str]  # lower-case names; repeated headers joined with ", "
    body: bytes = b""
    path: str = field(init=False)
    query: str = field(init=False)

    def __post_init__(self) -> None:
        self.path, _, self.query = self.target.partition("?")

    @property
    def keep_alive(self) -> bool:
        connection = self.headers.get("connection", "").lower()
        if self.version == "HTTP/1.0":
            return "keep-alive" in connection
        return "close" not in connection


async def _line(reader: asyncio.StreamReader) -> bytes:
    try:
        line = await reader.readuntil(b"\n")
    except asyncio.IncompleteReadError:
        raise ConnectionGone() from None
    except asyncio.LimitOverrunError:
        raise BadRequest(431, "line too long") from None
    if len(line) > MAX_LINE:
        raise BadRequest(431, "line too long")
    return line.rstrip(b"\r\n") if line.endswith(b"\r\n") else line[:-1]


async def read_request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                       max_body: int) -> HttpRequest | None:
    """The next request on a connection; None when the peer closed between requests."""
    try:
        request_line = await _line(reader)
        while not request_line:  # RFC 9112 §2.2: ignore empty lines before a request
            request_line = await _line(reader)
    except ConnectionGone:
        return None
    method, target, version = _parse_request_line(request_line)
    headers = await _read_headers(reader)
    request = HttpRequest(method, target, version, headers)
    request.body = await _read_body(reader, writer, request, max_body)
    return request


def _parse_request_line(line: bytes) -> tuple[str, str, str]:
    try:
        text = line.decode("ascii")
    except UnicodeDecodeError:
        raise BadRequest(400, "malformed request line") from None
    parts = text.split(" ")
    if len(parts) != 3 or not parts[0] or not set(parts[0]) <= _TOKEN or not parts[1]:
        raise BadRequest(400, "malformed request line")
    method, target, version = parts
    if version not in ("HTTP/1.1", "HTTP/1.0"):
        if version.startswith("HTTP/"):
            raise BadRequest(505, "unsupported HTTP version")
        raise BadRequest(400, "malformed request line")
    if not target.startswith("/"):
        raise BadRequest(400, "unsupported request target")
    return method, target, version


async def _read_headers(reader: asyncio.StreamReader) -> dict[str, str]:
    headers: dict[str, str] = {}
    total = 0
    while True:
        line = await _line(reader)
        if not line:
            return headers
        total += len(line)
        if total > MAX_HEADER_BYTES or len(headers) >= MAX_HEADERS:
            raise BadRequest(431, "request header fields too large")
        name, colon, value = line.partition(b":")
        try:
            key = name.decode("ascii").lower()
            text = value.strip(b" \t").decode("latin-1")
        except UnicodeDecodeError:
            raise BadRequest(400, "malformed header") from None
        if not colon or not key or not set(key) <= _TOKEN:  # also refuses obsolete line folding
            raise BadRequest(400, "malformed header")
        headers[key] = f"{headers[key]}, {text}" if key in headers else text


async def _read_body(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: HttpRequest,
                     max_body: int) -> bytes:
    headers = request.headers
    coding = headers.get("transfer-encoding")
    length = headers.get("content-length")
    if coding is not None and length is not None:
        raise BadRequest(400, "both Transfer-Encoding and Content-Length")
    if coding is None and length is None:
        return b""
    if headers.get("expect", "").lower() == "100-continue":
        writer.write(f"{request.version} 100 Continue\r\n\r\n".encode())
    try:
        if coding is not None:
            if coding.lower() != "chunked":
                raise BadRequest(501, "unsupported transfer coding")
            return await _read_chunked(reader, max_body)
        assert length is not None
        if not length.isdigit() or len(length) > 18:
            raise BadRequest(400, "bad Content-Length")
        size = int(length)
        if size > max_body:
            raise BadRequest(413, "request body too large")
        return await reader.readexactly(size)
    except asyncio.IncompleteReadError:
        raise ConnectionGone() from None


async def _read_chunked(reader: asyncio.StreamReader, max_body: int) -> bytes:
    body = bytearray()
    while True:
        size_text = (await _line(reader)).split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise BadRequest(400, "bad chunk size") from None
        if size < 0 or len(size_text) > 16:
            raise BadRequest(400, "bad chunk size")
        if len(body) + size > max_body:
            raise BadRequest(413, "request body too large")
        if size == 0:
            while await _line(reader):  # trailer fields: read and ignored
                pass
            return bytes(body)
        body += await reader.readexactly(size)
        if await reader.readexactly(2) != b"\r\n":
            raise BadRequest(400, "bad chunk")


def head(status: int, headers: list[tuple[str, str]]) -> bytes:
    lines = [f"HTTP/1.1 {status} {REASONS.get(status, 'Unknown')}"]
    lines += [f"{name}: {value}" for name, value in headers]
    lines.append(f"Date: {formatdate(usegmt=True)}")  # RFC 9110 §6.6.1: an origin server with a clock sends it
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def response(status: int, headers: list[tuple[str, str]], body: bytes, keep_alive: bool) -> bytes:
    """A whole response with its Content-Length."""
    headers = [*headers, ("Content-Length", str(len(body)))]
    if not keep_alive:
        headers.append(("Connection", "close"))
    return head(status, headers) + body


def chunk(data: bytes) -> bytes:
    """One chunk of a chunked body (never empty: the empty chunk ends the body)."""
    return b"%x\r\n%s\r\n" % (len(data), data)


LAST_CHUNK = b"0\r\n\r\n"
