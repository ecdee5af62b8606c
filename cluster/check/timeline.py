"""A self-contained HTML timeline of a check: inline SVG, no scripts, no assets.

One lane per client process; each operation is a bar from its invoke to its
completion (an info operation's bar runs dashed to the right edge: it may take
effect any time after its invoke). The x axis is event order, not seconds: each
distinct invoke or completion instant gets the next slot, so short operations
stay readable next to long ones.

Colours: green = in the longest sequence the checker could linearize, numbered
in that order; red = the operation it could not place; grey = the rest.
Hovering a bar shows the operation's full description and times.
"""
from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path

from .history import Operation, Outcome
from .linearizability import CheckResult, KeyResult, Verdict

_LANE = 34
_SLOT = 26      # minimum width of one event slot, px
_MAX_SLOT = 90
_CHAR = 7       # px per character of the 11px monospace labels
_LEFT = 90
_TOP = 30
_MAX_FULL_OPS = 600  # beyond this the whole-key picture is left out (the counterexample stays)

_STYLE = """
body { font-family: sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.3em; } h2 { font-size: 1.1em; margin-top: 1.6em; }
.verdict-bad { color: #b00020; } .verdict-good { color: #1b7f3b; } .verdict-unknown { color: #a66a00; }
svg { border: 1px solid #ddd; background: #fcfcfc; }
svg text { font-family: monospace; font-size: 11px; }
ol li, ul li { font-family: monospace; }
.legend span { display: inline-block; padding: 0 .5em; margin-right: .6em; border-radius: 3px; }
"""


def render_html(result: CheckResult, title: str = "history") -> str:
    """The whole report: verdict, then per failing (or unknown) key its
    counterexample and its full history. A linearizable history shows every key."""
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'>"
             f"<title>{_e(title)}: {_e(result.verdict.value)}</title>"
             f"<style>{_STYLE}</style></head><body>",
             f"<h1>{_e(title)}: <span class='{_verdict_class(result.verdict)}'>"
             f"{_e(result.verdict.value)}</span></h1>",
             "<p class='legend'><span style='background:#bfe5c8'>linearized (numbered in order)"
             "</span><span style='background:#f4b4b4'>could not be placed</span>"
             "<span style='background:#e4e4e4'>other</span> dashed = outcome unknown (info)</p>"]
    shown = [k for k in result.keys if k.verdict is not Verdict.LINEARIZABLE] or list(result.keys)
    for key_result in shown:
        parts.append(_key_section(key_result))
    parts.append("</body></html>")
    return "\n".join(parts)


def write_html(result: CheckResult, path: Path, title: str = "history") -> None:
    path.write_text(render_html(result, title), encoding="utf-8")


def _key_section(result: KeyResult) -> str:
    parts = [f"<h2>key <code>{_e(result.key)}</code>: "
             f"<span class='{_verdict_class(result.verdict)}'>{_e(result.verdict.value)}</span>"
             f" ({len(result.ops)} operations, {result.steps} search steps, "
             f"{result.seconds:.3f} s)</h2>"]
    example = result.counterexample
    if example is not None:
        parts.append(f"<p>Counterexample: these {len(example.ops)} operations alone are not "
                     "linearizable. The checker linearized the green ones in the numbered order "
                     "and then could not place the red one: no order consistent with real time "
                     "explains its result.</p>")
        parts.append(svg_timeline(example.ops, example.linearized, example.blocked))
        parts.append(_order_list(example.linearized, example.blocked))
    if result.verdict is Verdict.UNKNOWN:
        parts.append("<p>The search ran out of time: no verdict for this key.</p>")
    if len(result.ops) <= _MAX_FULL_OPS:
        label = ("Every operation on the key" if example is None
                 else "Every operation on the key (longest linearizable prefix of the full search)")
        parts.append(f"<h3>{label}</h3>")
        parts.append(svg_timeline(result.ops, result.linearized, result.blocked))
    return "\n".join(parts)


def _order_list(order: Sequence[Operation], blocked: Operation | None) -> str:
    items = [f"<li>{_e(op.describe())}</li>" for op in order]
    text = "<p>Linearized, in order:</p><ol>" + "".join(items) + "</ol>"
    if blocked is not None:
        text += f"<p>Could not place: <code>{_e(blocked.describe())}</code></p>"
    return text


def svg_timeline(ops: Sequence[Operation], linearized: Sequence[Operation] = (),
                 blocked: Operation | None = None) -> str:
    """One inline SVG picture of `ops`, coloured by the search's outcome."""
    processes = sorted({op.process for op in ops}, key=lambda p: (isinstance(p, str), str(p)))
    lane = {process: index for index, process in enumerate(processes)}
    instants = sorted({op.invoke for op in ops}
                      | {op.complete for op in ops
                         if op.complete is not None and op.outcome is not Outcome.INFO})
    slot = {t: index for index, t in enumerate(instants)}
    width_of_slot = _slot_width(ops, slot)
    right = _LEFT + width_of_slot * (len(instants) + 2)
    order = {op.id: index for index, op in enumerate(linearized, start=1)}
    width, height = right + 20, _TOP + _LANE * max(1, len(processes)) + 10
    out = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}'>"]
    for process, index in lane.items():
        y = _TOP + index * _LANE
        out.append(f"<text x='4' y='{y + 18}'>client {_e(str(process))}</text>"
                   f"<line x1='{_LEFT}' y1='{y + _LANE - 2}' x2='{right}' y2='{y + _LANE - 2}' "
                   "stroke='#eee'/>")
    for op in ops:
        out.append(_bar(op, lane[op.process], slot, width_of_slot, right, order.get(op.id),
                        blocked is not None and op.id == blocked.id))
    out.append("</svg>")
    return "".join(out)


def _slot_width(ops: Sequence[Operation], slot: dict[float, int]) -> int:
    """Wide enough that each completed bar holds its label (within reason)."""
    width = _SLOT
    for op in ops:
        if op.outcome is Outcome.INFO or op.complete is None:
            continue
        span = slot[op.complete] - slot[op.invoke] + 1
        label = len(op.describe_call() + op.describe_result()) + 4
        width = max(width, -(-label * _CHAR // span) + 2)
    return min(width, _MAX_SLOT)


def _bar(op: Operation, lane: int, slot: dict[float, int], width: int, right: int,
         position: int | None, is_blocked: bool) -> str:
    x1 = _LEFT + width * slot[op.invoke] + 4
    unknown = op.outcome is Outcome.INFO or op.complete is None
    x2 = right - 4 if unknown else _LEFT + width * (slot[op.complete] + 1) - 4  # type: ignore[index]
    y = _TOP + lane * _LANE + 4
    fill, stroke = (("#f4b4b4", "#b00020") if is_blocked else
                    ("#bfe5c8", "#1b7f3b") if position is not None else ("#e4e4e4", "#888"))
    dash = " stroke-dasharray='5,3'" if unknown else ""
    label = op.describe_call() + op.describe_result()
    tip = (f"#{op.id} {op.describe()}  invoke={op.invoke:g} "
           f"complete={'?' if unknown else format(op.complete, 'g')}")
    number = f"{position}. " if position is not None else ""
    return (f"<g><title>{_e(tip)}</title>"
            f"<rect x='{x1}' y='{y}' width='{max(x2 - x1, 8)}' height='{_LANE - 10}' rx='4' "
            f"fill='{fill}' stroke='{stroke}'{dash}/>"
            f"<text x='{x1 + 4}' y='{y + 16}'>{_e(number + label)}</text></g>")


def _verdict_class(verdict: Verdict) -> str:
    return {Verdict.LINEARIZABLE: "verdict-good", Verdict.NOT_LINEARIZABLE: "verdict-bad",
            Verdict.UNKNOWN: "verdict-unknown"}[verdict]


def _e(text: str) -> str:
    return html.escape(text, quote=True)
