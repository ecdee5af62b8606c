"""python -m cluster.check HISTORY [--format auto|jsonl|jepsen] [--timeline FILE.html]
                                 [--timeout S]

Prints `linearizable`, `not linearizable` (with the counterexample) or `unknown`
(a key's search ran out of time), then the revision-order check for histories
that record revisions. Exit status: 0 linearizable and no revision regression;
1 not linearizable or a revision regression; 2 unreadable input (the message
names the line); 3 unknown.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from .direct import revision_regressions
from .history import HistoryError, Operation
from .linearizability import CheckResult, Verdict, check_history
from .loading import load_history
from .timeline import write_html

EXIT_OK, EXIT_VIOLATION, EXIT_UNREADABLE, EXIT_UNKNOWN = 0, 1, 2, 3


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    args = _parser().parse_args(argv)
    if args.timeout <= 0:
        print("error: --timeout must be positive", file=sys.stderr)
        return EXIT_UNREADABLE
    try:
        ops = load_history(args.history, args.format)
    except HistoryError as err:
        print(f"error: unreadable history: {err}", file=sys.stderr)
        return EXIT_UNREADABLE
    except OSError as err:
        print(f"error: cannot read {args.history}: {err.strerror}", file=sys.stderr)
        return EXIT_UNREADABLE
    result = check_history(ops, timeout=args.timeout)
    print(result.verdict.value, file=out)
    print(_summary(ops, result), file=out)
    for key_result in result.keys:
        if key_result.verdict is not Verdict.LINEARIZABLE:
            print(key_result.describe(), file=out)
    regressions = revision_regressions(ops)
    if any(op.revision is not None for op in ops):
        print(f"revision order: {len(regressions)} regression(s)", file=out)
        for regression in regressions[:10]:
            print(f"  {regression.describe()}", file=out)
    if args.timeline is not None:
        write_html(result, args.timeline, title=args.history.name)
        print(f"timeline: {args.timeline}", file=out)
    if result.verdict is Verdict.NOT_LINEARIZABLE or regressions:
        return EXIT_VIOLATION
    return EXIT_UNKNOWN if result.verdict is Verdict.UNKNOWN else EXIT_OK


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m cluster.check",
        description="Check a recorded client history for linearizability (docs/checking.md).")
    parser.add_argument("history", type=Path, help="JSON-lines history or Jepsen register log")
    parser.add_argument("--format", choices=("auto", "jsonl", "jepsen"), default="auto")
    parser.add_argument("--timeline", type=Path, metavar="FILE.html",
                        help="write an HTML timeline of the verdict (counterexample first)")
    parser.add_argument("--timeout", type=float, default=30.0, metavar="S",
                        help="search budget per key, seconds; running out gives 'unknown' "
                             "(default 30)")
    return parser


def _summary(ops: Sequence[Operation], result: CheckResult) -> str:
    counts = {"ok": 0, "fail": 0, "info": 0}
    for op in ops:
        counts[op.outcome.value] += 1
    return (f"{len(ops)} operations ({counts['ok']} ok, {counts['fail']} fail, "
            f"{counts['info']} info) on {len(result.keys)} key(s); "
            f"{len(result.failures)} not linearizable, {len(result.unknown)} unknown")


if __name__ == "__main__":
    sys.exit(main())
