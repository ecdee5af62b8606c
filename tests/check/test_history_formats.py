"""The JSON-lines history format and the Jepsen log reader: round trips and the
line-numbered errors for input that is not a history."""
from __future__ import annotations

import io
import json

import pytest

from cluster.check.history import HistoryError, OpKind, Outcome, read_jsonl, write_jsonl
from cluster.check.jepsen import REGISTER_KEY, read_jepsen

from .history_builder import cas, delete, get, history, info, put

SAMPLE = history(put(1, "k1", "v7", 12.5, 12.9, revision=17), get(2, "k1", "v7", 13.0, 13.1),
                 get(2, "k1", None, 13.2, 13.3), cas(3, "k1", "v7", "v8", True, 13.2, 13.4),
                 cas(3, "k1", None, 4, False, 14, 15), delete(4, "k1", 14.0, 14.5, deleted=1),
                 info(delete(4, "k2", 16.0)), put(5, "k2", 3, 17, 18, outcome="fail"),
                 get(6, "k2", None, 19, 20, outcome="fail"))


def test_jsonl_round_trip() -> None:
    out = io.StringIO()
    write_jsonl(SAMPLE, out)
    assert read_jsonl(out.getvalue().splitlines()) == SAMPLE


def test_jsonl_records_look_as_documented() -> None:
    out = io.StringIO()
    write_jsonl(SAMPLE[:2], out)
    first, second = (json.loads(line) for line in out.getvalue().splitlines())
    assert first == {"process": 1, "op": "put", "key": "k1", "value": "v7", "invoke": 12.5,
                     "complete": 12.9, "outcome": "ok", "revision": 17}
    assert second["result"] == "v7" and "value" not in second


BAD_RECORDS = {
    '{"process": 1}': "missing field 'op'",
    '[1, 2]': "an operation must be a JSON object",
    '{"process":1,"op":"put","key":"x","invoke":0,"complete":1,"outcome":"ok"}':
        "put needs a value",
    '{"process":1,"op":"get","key":"x","invoke":0,"complete":1,"outcome":"ok"}':
        "an ok get needs a result",
    '{"process":1,"op":"get","key":"x","invoke":2,"complete":1,"outcome":"ok","result":null}':
        "complete (1.0) is before invoke (2.0)",
    '{"process":1,"op":"cas","key":"x","value":1,"expected":0,"invoke":0,"complete":1,'
    '"outcome":"ok","result":1}': "an ok cas needs a boolean result",
    '{"process":1,"op":"put","key":"x","value":1,"invoke":0,"complete":1,"outcome":"maybe"}':
        "outcome must be one of ok/fail/info",
    '{"process":1,"op":"put","key":"x","value":1.5,"invoke":0,"complete":1,"outcome":"ok"}':
        "value must be a string, an integer or null",
    '{"process":1,"op":"put","key":"x","value":1,"invoke":0,"outcome":"ok"}':
        "an ok operation needs a complete time",
    '{"process":1,"op":"put","key":"x","value":1,"invoke":0,"complete":1,"outcome":"ok",'
    '"colour":"red"}': "unknown field(s): colour",
    '{"process":1,"op":"delete","key":"x","invoke":0,"complete":1,"outcome":"ok","result":2}':
        "a delete's result is the number of keys deleted",
}


@pytest.mark.parametrize("record", sorted(BAD_RECORDS))
def test_invalid_record_is_a_history_error_with_its_line(record: str) -> None:
    good = '{"process":1,"op":"get","key":"x","invoke":0,"complete":1,"outcome":"ok","result":null}'
    with pytest.raises(HistoryError) as raised:
        read_jsonl([good, "", record], source="h.jsonl")
    assert raised.value.line == 3
    assert str(raised.value).startswith("h.jsonl:3: ")
    assert BAD_RECORDS[record] in str(raised.value)


def test_info_operations_may_record_when_the_client_gave_up() -> None:
    (op,) = read_jsonl(['{"process":1,"op":"put","key":"x","value":1,"invoke":0,"complete":4,'
                        '"outcome":"info"}'])
    assert op.outcome is Outcome.INFO and op.complete == 4
    assert op.effective_complete == float("inf")


def _jepsen(*rows: str, sep: str = "\t") -> list[str]:
    return ["INFO  jepsen.util - " + sep.join(row.split()) for row in rows]


def test_jepsen_lines_map_onto_the_operation_model() -> None:
    ops = read_jepsen(_jepsen("0 :invoke :write 3", "1 :invoke :read nil", "0 :ok :write 3",
                              "1 :ok :read 3", "2 :invoke :cas [3 4]", "3 :invoke :cas [1 2]",
                              "2 :ok :cas [3 4]", "3 :fail :cas [1 2]", "4 :invoke :read nil",
                              "4 :fail :read :timed-out", "5 :invoke :write 1",
                              "5 :info :write :timed-out", "6 :invoke :cas [0 1]"))
    assert [op.describe() for op in ops] == [
        "0:put(register, 3)", "1:get(register) -> 3", "2:cas(register, 3->4) -> ok",
        "3:cas(register, 1->2) -> compare failed", "4:get(register) fail",
        "5:put(register, 1) info", "6:cas(register, 0->1) info"]
    assert all(op.key == REGISTER_KEY for op in ops)
    assert [(op.invoke, op.complete) for op in ops[:2]] == [(1, 3), (2, 4)]
    assert ops[-1].kind is OpKind.CAS and ops[-1].complete is None


def test_jepsen_lines_may_use_spaces() -> None:
    assert len(read_jepsen(_jepsen("0 :invoke :write 3", "0 :ok :write 3", sep="   "))) == 1


@pytest.mark.parametrize("lines, line, message", [
    (_jepsen("0 :invoke :write 3") + ["INFO jepsen.core - run complete"], 2, "not a Jepsen"),
    (_jepsen("0 :ok :write 3"), 1, "never invoked"),
    (_jepsen("0 :invoke :write 3", "0 :invoke :read nil"), 2, "outstanding"),
    (_jepsen("0 :invoke :write 3", "0 :ok :read 3"), 2, "completes :read"),
    (_jepsen("0 :invoke :write 3", "0 :ok :write 4"), 2, "invoked with 3"),
    (_jepsen("0 :invoke :cas 3", "0 :ok :cas 3"), 2, "[FROM TO]"),
    (_jepsen("0 :invoke :read nil", "0 :ok :read x"), 2, "integers or nil"),
])
def test_unreadable_jepsen_line_is_named(lines: list[str], line: int, message: str) -> None:
    with pytest.raises(HistoryError) as raised:
        read_jepsen(lines)
    assert raised.value.line == line
    assert message in str(raised.value)
