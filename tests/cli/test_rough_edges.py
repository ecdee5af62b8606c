"""The CLI's rough edges found by trying it as a new user would (issue 16), each
checked in-process against a fake client: bytes keys and values, lease ids in
hex, a reader that goes away, etcdctl's health table, failing fast when nothing
listens, the watch help, etcdctl's txn spellings, `version`, and etcdctl 3.4's
exit codes."""
from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cluster import cli
from cluster.client import ClientTimeout, InvalidRequestError
from cluster.dial import BadConnection, dial
from cluster.kv import (
    Compare, CompareOp, CompareTarget, KeyValue, Put, PutResponse, Range, RangeResponse, SortOrder, SortTarget,
    TxnResponse,
)
from cluster.kv.errors import LeaseNotFound
from cluster.output import response_table
from cluster.txnsyntax import TxnSyntaxError, parse_txn

LEASE = 0x3C4075F2EF431A44


class FakeClient:
    """Just enough of cluster.client.Client for the commands here: a dict store."""

    store: dict[bytes, KeyValue] = {}
    requests: list[tuple[str, Any]] = []
    fail_with: BaseException | None = None

    def __init__(self, endpoints: list[str], **options: Any) -> None:
        self.endpoints = endpoints

    def __enter__(self) -> FakeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def put(self, key: bytes, value: bytes, **options: Any) -> PutResponse:
        if self.fail_with is not None:
            raise self.fail_with
        assert isinstance(key, bytes) and isinstance(value, bytes)
        revision = len(self.requests) + 2
        self.requests.append(("put", (key, value, options)))
        self.store[key] = KeyValue(key, value, revision, revision, 1, options.get("lease", 0))
        return PutResponse(revision)

    def range(self, key: bytes, end: bytes = b"", **options: Any) -> RangeResponse:
        self.requests.append(("range", (key, end, options)))
        kvs = tuple(kv for k, kv in sorted(self.store.items()) if k == key or (end and key <= k < end))
        return RangeResponse(len(self.requests) + 1, kvs, len(kvs), False)

    def txn(self, compares: Any, success: Any, failure: Any) -> TxnResponse:
        self.requests.append(("txn", (compares, success, failure)))
        return TxnResponse(9, True, ())

    def status(self, endpoint: str, timeout: float) -> dict[str, Any]:
        if endpoint.endswith(":2"):
            raise ClientTimeout("no answer")
        return {"node_id": 1, "role": "leader", "leader_id": 1}


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[type[FakeClient]]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("JANGADA_DATA_DIR", raising=False)
    monkeypatch.setenv("JANGADA_ENDPOINTS", "127.0.0.1:1")
    monkeypatch.setattr(cli, "Client", FakeClient)
    monkeypatch.setattr(cli, "dial", lambda endpoints, timeout: endpoints[0], raising=False)  # as if they listened
    FakeClient.store, FakeClient.requests, FakeClient.fail_with = {}, [], None
    yield FakeClient


def binary_stdout() -> io.TextIOWrapper:
    return io.TextIOWrapper(io.BytesIO(), encoding="utf-8")


def written(out: io.TextIOWrapper) -> bytes:
    out.flush()
    buffer = out.buffer
    assert isinstance(buffer, io.BytesIO)
    return buffer.getvalue()


# -- 1. keys and values are bytes --------------------------------------------------------


def test_a_non_utf8_value_from_stdin_and_key_from_argv_round_trip_raw(
        fake: type[FakeClient], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"\xff\xfe")))
    key = os.fsdecode(b"bin\xff")  # what Python makes of the argv bytes b"bin\xff"
    assert cli.main(["put", key], binary_stdout()) == 0
    assert fake.store[b"bin\xff"].value == b"\xff\xfe"
    out = binary_stdout()
    assert cli.main(["get", key], out) == 0
    assert written(out) == b"bin\xff\n\xff\xfe\n"  # raw bytes, as etcdctl prints them
    value_only = binary_stdout()
    assert cli.main(["get", key, "--print-value-only"], value_only) == 0
    assert written(value_only) == b"\xff\xfe\n"
    assert cli.main(["put", os.fsdecode(b"k"), os.fsdecode(b"v\xe9")], binary_stdout()) == 0
    assert fake.store[b"k"].value == b"v\xe9"


def test_a_txn_with_non_utf8_bytes_keeps_them(fake: type[FakeClient], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b'val("\xff") = "\xfe"\n\nput \xff \xfd\n')))
    assert cli.main(["txn"], binary_stdout()) == 0
    compares, success, _ = fake.requests[-1][1]
    assert compares == [Compare(b"\xff", CompareTarget.VALUE, CompareOp.EQUAL, b"\xfe")]
    assert success == [Put(b"\xff", b"\xfd")]


# -- 2. lease ids in hex ----------------------------------------------------------------------


def test_lease_ids_are_hex_in_txn_compares_and_puts_the_table_and_errors() -> None:
    compares, success, _ = parse_txn(f'lease("k") = "{LEASE:x}"\n\nput k v --lease={LEASE:x}\n')
    assert compares == [Compare(b"k", CompareTarget.LEASE, CompareOp.EQUAL, LEASE)]
    assert success == [Put(b"k", b"v", lease=LEASE)]
    assert parse_txn('lease("k") = "0"')[0][0].operand == 0  # no lease
    with pytest.raises(TxnSyntaxError, match="lease id"):
        parse_txn('lease("k") = "xyz"')
    table = response_table(RangeResponse(3, (KeyValue(b"k", b"v", 2, 2, 1, LEASE),), 1, False))
    assert f"| {LEASE:x} |" in table and str(LEASE) not in table
    assert str(LeaseNotFound(LEASE)) == f"lease {LEASE:x} not found"


# -- 3. a reader that goes away; the health table ------------------------------------------


def test_a_closed_stdout_ends_quietly_without_a_traceback() -> None:
    read, write = os.pipe()
    os.close(read)  # like `| head` that has already exited: every write gets EPIPE
    try:
        done = subprocess.run([sys.executable, "-m", "cluster", "version"], stdout=write, stderr=subprocess.PIPE,
                              text=True, timeout=60, env={**os.environ, "PYTHONPATH": os.getcwd()})
    finally:
        os.close(write)
    assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr, done.stderr
    assert done.returncode == 141  # what a shell shows for etcdctl killed by SIGPIPE


class BrokenPipe(io.StringIO):
    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")


def test_a_broken_pipe_in_process_returns_the_sigpipe_status(fake: type[FakeClient]) -> None:
    assert cli.main(["get", "k", "-w", "json"], BrokenPipe()) == 141


def test_endpoint_health_table_is_etcdctls(fake: type[FakeClient], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JANGADA_ENDPOINTS", "127.0.0.1:1,127.0.0.1:2")
    out = io.StringIO()
    assert cli.main(["endpoint", "health", "-w", "table"], out) == 1  # one is unhealthy
    lines = out.getvalue().splitlines()
    assert [c.strip() for c in lines[1].strip("|").split("|")] == ["ENDPOINT", "HEALTH", "TOOK", "ERROR"]
    first = [c.strip() for c in lines[3].strip("|").split("|")]
    second = [c.strip() for c in lines[4].strip("|").split("|")]
    assert first[:2] == ["127.0.0.1:1", "true"] and first[2].endswith("ms") and first[3] == ""
    assert second[:3] == ["127.0.0.1:2", "false", ""] and "no answer" in second[3]


# -- 4. nothing listening: fail fast, exit 2 ----------------------------------------------------


@pytest.mark.timeout(8)  # the default --timeout is 10 s: a CLI that waits for it fails here
def test_nobody_listening_is_a_bad_connection_named_within_the_dial_timeout(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from supervisor.configgen import free_ports
    monkeypatch.chdir(tmp_path)
    port, other = free_ports(2)
    assert cli.main(["--endpoints", f"127.0.0.1:{port},127.0.0.1:{other}", "put", "k", "v"]) == 2
    err = capsys.readouterr().err
    assert f"dial tcp 127.0.0.1:{port}: connect: connection refused" in err
    assert f"127.0.0.1:{other}: connect: connection refused" in err and err.count("\n") == 1


def test_dial_waits_for_a_member_that_starts_listening_within_the_dial_timeout() -> None:
    from supervisor.configgen import free_ports
    port, = free_ports(1)
    now = [0.0]
    listener: list[socket.socket] = []

    def sleep(seconds: float) -> None:  # the member comes back after the third round
        now[0] += seconds
        if len(listener) == 0 and now[0] > 0.25:
            listener.append(socket.create_server(("127.0.0.1", port)))
    try:
        assert dial([f"tcp://127.0.0.1:{port}"], 2.0, clock=lambda: now[0], sleep=sleep) == f"tcp://127.0.0.1:{port}"
        assert 0.25 < now[0] < 0.5
        listener[0].close()
        now[0] = 0.0
        with pytest.raises(BadConnection, match="connection refused"):
            dial([f"tcp://127.0.0.1:{port}"], 2.0, clock=lambda: now[0], sleep=lambda s: now.__setitem__(0, now[0] + s))
        assert 1.8 < now[0] <= 2.0  # kept trying for the whole dial timeout
    finally:
        for sock in listener:
            sock.close()


@pytest.mark.timeout(30)
def test_a_port_that_accepts_but_never_answers_is_a_timeout_exit_1(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        assert cli.main(["--endpoints", f"127.0.0.1:{port}", "--timeout", "0.3", "put", "k", "v"]) == 1
    assert "timeout" in capsys.readouterr().err


# -- 5. watch help, txn spellings, version ------------------------------------------------------


def test_watch_help_says_it_has_no_default_timeout(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["watch", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "default 10" not in text and "default: never" in text
    assert cli.main(["get", "--help"]) == 0
    assert "default 10" in " ".join(capsys.readouterr().out.split())  # the other commands do have one


def test_etcdctl_txn_spellings() -> None:
    text = ('ver("k") = "1"\nc("k") > "2"\nm("k") < "3"\nval("k") != "x"\n\n'
            'put k v --lease=abc --prev-kv\nget k --sort-by=MODIFY --order=DESCEND --limit=2\n'
            'get a --prefix --sort-by=value\n\ndel k --prev-kv\nput k --ignore-value --ignore-lease\n')
    compares, success, failure = parse_txn(text)
    assert [(c.target, c.op, c.operand) for c in compares] == [
        (CompareTarget.VERSION, CompareOp.EQUAL, 1), (CompareTarget.CREATE, CompareOp.GREATER, 2),
        (CompareTarget.MOD, CompareOp.LESS, 3), (CompareTarget.VALUE, CompareOp.NOT_EQUAL, b"x")]
    assert success[0] == Put(b"k", b"v", lease=0xABC, prev_kv=True)
    assert success[1] == Range(b"k", limit=2, sort_target=SortTarget.MOD, sort_order=SortOrder.DESCEND)
    assert (success[2].sort_target, success[2].sort_order) == (SortTarget.VALUE, SortOrder.NONE)  # type: ignore
    assert failure[0].prev_kv  # type: ignore[union-attr]
    assert failure[1] == Put(b"k", b"", ignore_value=True, ignore_lease=True)
    with pytest.raises(TxnSyntaxError, match="bad sort target SIZE"):
        parse_txn("\nget k --sort-by=SIZE\n")


def test_get_sorts_as_etcdctl(fake: type[FakeClient], capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["get", "a", "--prefix", "--sort-by", "create", "--order", "descend"], binary_stdout()) == 0
    options = fake.requests[-1][1][2]
    assert (options["sort_target"], options["sort_order"]) == (SortTarget.CREATE, SortOrder.DESCEND)
    assert cli.main(["get", "a", "--sort-by", "size"]) == 4  # etcdctl's ExitBadFeature
    assert "bad sort target size" in capsys.readouterr().err


def test_version_prints_etcdctls_two_lines(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["version"]) == 0
    first, second = capsys.readouterr().out.splitlines()
    assert first.startswith("jangada version: ") and len(first) > len("jangada version: ")
    assert second == "API version: 3.4"


# -- 6. etcdctl 3.4's exit codes -----------------------------------------------------------


def test_exit_codes_are_etcdctls(fake: type[FakeClient], tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["get", "k", "--bogus"]) == 128  # ExitBadArgs
    bad = tmp_path / "bad.txt"
    bad.write_text('size("k") = "1"\n')
    assert cli.main(["txn", "--file", str(bad)]) == 3  # ExitInvalidInput
    assert cli.main(["txn", "--file", str(tmp_path / "missing")]) == 6  # ExitIO
    assert cli.main(["role", "list", "-w", "table"]) == 4  # ExitBadFeature
    fake.fail_with = InvalidRequestError("etcdserver: request is too large")
    assert cli.main(["put", "k", "v"]) == 1  # a refusal by the cluster: ExitError
    fake.fail_with = KeyboardInterrupt()
    assert cli.main(["put", "k", "v"]) == 5  # ExitInterrupted
    capsys.readouterr()
