"""`python -m cluster watch`: bad arguments exit 128 (4 for -w table) with one line before anything
connects; the simple and json forms of an event."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from cluster.cli import main, watch_event_json, watch_event_lines
from cluster.kv import KeyValue
from cluster.protocol import WatchEvent


@pytest.fixture(autouse=True)
def empty_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("JANGADA_DATA_DIR", raising=False)
    monkeypatch.delenv("JANGADA_ENDPOINTS", raising=False)


@pytest.mark.parametrize("argv, message", [
    (["watch"], "required"),
    (["watch", ""], "must not be empty"),
    (["watch", "a", "--prefix", "--from-key"], "only one of"),
    (["watch", "a", "--rev", "-1"], "must be >= 0"),
    (["watch", "a", "--rev", "x"], "not an integer"),
    (["watch", "a", "--max-events", "0"], "must be >= 1"),
    (["watch", "a", "--timeout", "0"], "must be in"),
    (["watch", "a", "--progress-interval", "-1"], "must be in"),
    (["watch", "a", "-w", "table"], "simple or json"),
    (["watch", "a", "--bogus"], "unrecognized arguments"),
])
def test_bad_watch_arguments_exit_128_with_one_line(argv: list[str], message: str,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == (4 if "table" in argv else 128)  # etcdctl: ExitBadFeature, ExitBadArgs
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_event_forms_are_etcdctl_lines_and_one_json_object() -> None:
    put = WatchEvent(0, KeyValue(b"k", b"new", 2, 5, 2), KeyValue(b"k", b"old", 2, 2, 1))
    delete = WatchEvent(1, KeyValue(b"k", b"", 0, 6, 0), KeyValue(b"k", b"new", 2, 5, 2))
    assert watch_event_lines(put, prev_kv=False) == [b"PUT", b"k", b"new"]
    assert watch_event_lines(put, prev_kv=True) == [b"PUT", b"k", b"old", b"k", b"new"]
    assert watch_event_lines(delete, prev_kv=False) == [b"DELETE", b"k", b""]
    doc = json.loads(json.dumps(watch_event_json(delete)))
    assert doc["type"] == "DELETE" and doc["revision"] == 6 and doc["prev_kv"]["value"] == "new"
    assert watch_event_json(WatchEvent(0, KeyValue(b"\xff", b"v", 1, 1, 1)))["kv"]["key_encoding"] == "base64"
