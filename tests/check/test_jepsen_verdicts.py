"""Every Jepsen etcd register log in the shared test data gets its known verdict.

The logs and verdicts (from the Porcupine and linearizability-checker test
suites) live beside the repository, in ../shared/testdata/jepsen-etcd. If that
folder is missing the tests fail rather than skip: the checker is unvalidated
without them. Each log must be decided within TIMEOUT seconds (a slower search
answers "unknown", which fails the test).
"""
from __future__ import annotations

from pathlib import Path

import pytest

from cluster.check.jepsen import REGISTER_KEY, load_jepsen
from cluster.check.linearizability import Verdict, check_history

from .witness import assert_valid_witness

TESTDATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "testdata" / "jepsen-etcd"
TIMEOUT = 10.0


def _verdicts() -> dict[str, bool]:
    table = TESTDATA / "verdicts.tsv"
    if not table.is_file():
        return {}
    rows = [line.split("\t") for line in table.read_text().splitlines()[1:] if line.strip()]
    return {name: flag.strip() == "true" for name, flag in rows}


VERDICTS = _verdicts()


def test_the_jepsen_testdata_is_present_and_every_log_has_a_verdict() -> None:
    assert TESTDATA.is_dir(), f"missing test data folder {TESTDATA.resolve()}"
    logs = sorted(path.name for path in TESTDATA.glob("*.log"))
    assert logs, f"no .log files in {TESTDATA.resolve()}"
    assert sorted(VERDICTS) == logs, "verdicts.tsv and the .log files disagree"
    assert any(VERDICTS.values()) and not all(VERDICTS.values())


@pytest.mark.parametrize("name", sorted(VERDICTS))
def test_jepsen_log_gets_its_known_verdict(name: str) -> None:
    ops = load_jepsen(TESTDATA / name)
    result = check_history(ops, timeout=TIMEOUT, minimize_budget=TIMEOUT)
    expected = Verdict.LINEARIZABLE if VERDICTS[name] else Verdict.NOT_LINEARIZABLE
    assert result.verdict is expected, f"{name}: got {result.verdict.value}"
    (key_result,) = result.keys
    assert key_result.key == REGISTER_KEY
    if expected is Verdict.LINEARIZABLE:
        assert_valid_witness(key_result.ops, key_result.linearized)
    else:
        example = key_result.counterexample
        assert example is not None and example.blocked in example.ops
        assert len(example.ops) <= len(key_result.ops)
