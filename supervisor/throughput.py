"""Throughput over time with the fault events marked: one self-contained HTML page
(inline SVG, no scripts, no assets), in the style of cluster/check/timeline.py.

The x axis is seconds of the workload's clock; per 1-second bin, a green line of
ok operations completed, an orange one of fail and a red one of info (counted at
their invoke: they never completed). Each fault event is a vertical line labelled
with its kind (red kill, blue pause, purple drop, grey heal/resume); hovering
shows the whole chaos line.
"""
from __future__ import annotations

import html
import math
from collections.abc import Sequence
from pathlib import Path

from cluster.check.history import Operation, Outcome

_W, _H = 1000, 320
_LEFT, _RIGHT, _TOP, _BOTTOM = 50, 20, 30, 40
_COLOURS = {"ok": "#1b7f3b", "fail": "#e08a00", "info": "#b00020"}
_EVENT_COLOURS = {"SIGKILL": "#b00020", "SIGSTOP": "#1f5fbf", "DROP": "#7b2cbf", "SPLIT": "#c2185b"}


def per_second(ops: Sequence[Operation], end: float) -> dict[str, list[int]]:
    bins = max(1, math.ceil(end))
    counts = {name: [0] * bins for name in _COLOURS}
    for op in ops:
        at = op.complete if op.outcome is not Outcome.INFO and op.complete is not None else op.invoke
        index = min(bins - 1, max(0, int(at)))
        counts[op.outcome.value][index] += 1
    return counts


def render(ops: Sequence[Operation], events: Sequence[tuple[float, str]], end: float,
           title: str, summary: Sequence[str]) -> str:
    counts = per_second(ops, end)
    peak = max([1] + [n for series in counts.values() for n in series])
    bins = len(counts["ok"])
    width = _W - _LEFT - _RIGHT
    height = _H - _TOP - _BOTTOM

    def x(t: float) -> float:
        return _LEFT + width * t / max(bins, 1)

    def y(n: int) -> float:
        return _TOP + height * (1 - n / peak)

    parts = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{_W}' height='{_H}'>",
             f"<line x1='{_LEFT}' y1='{_TOP + height}' x2='{_LEFT + width}' y2='{_TOP + height}' stroke='#888'/>",
             f"<line x1='{_LEFT}' y1='{_TOP}' x2='{_LEFT}' y2='{_TOP + height}' stroke='#888'/>",
             f"<text x='4' y='{_TOP + 4}'>{peak}/s</text><text x='4' y='{_TOP + height}'>0</text>"]
    step = max(1, bins // 10)
    for t in range(0, bins + 1, step):
        parts.append(f"<text x='{x(t) - 6:.1f}' y='{_TOP + height + 16}'>{t}s</text>")
    for when, line in events:
        kind = line.split()[0] if line else ""
        colour = _EVENT_COLOURS.get(kind, "#999")
        parts.append(f"<line x1='{x(when):.1f}' y1='{_TOP}' x2='{x(when):.1f}' y2='{_TOP + height}' "
                     f"stroke='{colour}' stroke-dasharray='4 3'><title>{_e(f'{when:.2f}s {line}')}</title></line>")
        parts.append(f"<text x='{x(when) + 2:.1f}' y='{_TOP - 6}' fill='{colour}'>"
                     f"{_e(kind[:5].lower())}<title>{_e(line)}</title></text>")
    for name, series in counts.items():
        points = " ".join(f"{x(i + 0.5):.1f},{y(n):.1f}" for i, n in enumerate(series))
        parts.append(f"<polyline fill='none' stroke='{_COLOURS[name]}' stroke-width='1.5' points='{points}'>"
                     f"<title>{name} per second</title></polyline>")
    parts.append("</svg>")
    legend = " ".join(f"<span style='color:{c}'>&#9632; {n}</span>" for n, c in _COLOURS.items())
    faults = " ".join(f"<span style='color:{c}'>&#9474; {n}</span>" for n, c in _EVENT_COLOURS.items())
    body = "".join(f"<li>{_e(line)}</li>" for line in summary)
    events_list = "".join(f"<li>{when:8.2f}s {_e(line)}</li>" for when, line in events)
    return ("<!DOCTYPE html><html><head><meta charset='utf-8'>"
            f"<title>{_e(title)}</title><style>body {{ font-family: sans-serif; margin: 1.5em; }} "
            "svg { border: 1px solid #ddd; background: #fcfcfc; } svg text { font: 11px monospace; } "
            "li { font-family: monospace; }</style></head><body>"
            f"<h1>{_e(title)}</h1><ul>{body}</ul><p>{legend} &nbsp; {faults} &nbsp; (grey: heal/resume)</p>"
            + "\n".join(parts) + f"<h2>Fault events</h2><ul>{events_list}</ul></body></html>")


def write(path: Path, ops: Sequence[Operation], events: Sequence[tuple[float, str]], end: float,
          title: str, summary: Sequence[str]) -> None:
    path.write_text(render(ops, events, end, title, summary), encoding="utf-8")


def _e(text: str) -> str:
    return html.escape(text, quote=True)
