"""Checking recorded client histories: linearizability and direct checks.

    from cluster.check import load_history, check_history
    result = check_history(load_history(path), timeout=10.0)
    result.verdict   # Verdict.LINEARIZABLE / NOT_LINEARIZABLE / UNKNOWN

`python -m cluster.check HISTORY` is the command line; docs/checking.md is the
manual (history format, model, algorithm, how to read the timeline).
"""
from .direct import LostWrite, RevisionRegression, lost_writes, revision_regressions
from .history import (
    HistoryError, Operation, OpKind, Outcome, Value, load_jsonl, read_jsonl, save_jsonl,
    write_jsonl,
)
from .jepsen import REGISTER_KEY, load_jepsen, read_jepsen
from .linearizability import (
    CheckResult, Counterexample, KeyResult, Verdict, check_history, check_key, minimize,
)
from .loading import load_history
from .timeline import render_html, write_html

__all__ = [
    "CheckResult", "Counterexample", "HistoryError", "KeyResult", "LostWrite", "OpKind",
    "Operation", "Outcome", "REGISTER_KEY", "RevisionRegression", "Value", "Verdict",
    "check_history", "check_key", "load_history", "load_jepsen", "load_jsonl", "lost_writes",
    "minimize", "read_jepsen", "read_jsonl", "render_html", "revision_regressions",
    "save_jsonl", "write_html", "write_jsonl",
]
