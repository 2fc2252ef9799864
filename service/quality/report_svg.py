"""Inline SVG charts for the HTML report: grouped bars, lines over time, step histograms.

Hand-written SVG so that the report is one file that renders with no network and no script. Every
chart is an ``<svg class="chart" data-chart=NAME>`` with a ``<title>``; every text is escaped.
Pure string building, no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from html import escape

__all__ = ["PALETTE", "arm_color", "bar_chart", "line_chart", "step_chart"]

#: colour-blind-safe (Tableau 10): the control first, the treatment second
PALETTE = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#9c755f")
_W, _H = 560, 260
_LEFT, _RIGHT, _TOP, _BOTTOM = 56, 16, 34, 48

Fmt = Callable[[float], str]


def arm_color(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


def _nice_max(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 x 10^k at or above ``value`` (1 when there is nothing)."""
    if not math.isfinite(value) or value <= 0:
        return 1.0
    exp = 10 ** math.floor(math.log10(value))
    return float(next(m * exp for m in (1, 2, 2.5, 5, 10) if m * exp >= value * 0.999))


def _frame(name: str, title: str, body: list[str], y_max: float, y_min: float, y_fmt: Fmt,
           legend: Sequence[tuple[str, str]]) -> str:  # fmt: skip
    """The axes, 5 horizontal grid lines with labels, the legend, and ``body`` inside."""
    out = [
        f'<svg class="chart" data-chart="{escape(name)}" role="img" xmlns="http://www.w3.org/2000/svg" '
        f'viewBox="0 0 {_W} {_H}" width="{_W}" height="{_H}">',
        f"<title>{escape(title)}</title>",
        f'<text x="{_LEFT}" y="18" class="ct">{escape(title)}</text>',
    ]
    for i in range(6):
        v = y_min + (y_max - y_min) * i / 5
        y = _H - _BOTTOM - (_H - _TOP - _BOTTOM) * i / 5
        out.append(f'<line x1="{_LEFT}" x2="{_W - _RIGHT}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>')
        out.append(f'<text x="{_LEFT - 6}" y="{y + 4:.1f}" class="yl">{escape(y_fmt(v))}</text>')
    out += body
    x = _LEFT
    for label, color in legend:
        out.append(f'<rect x="{x}" y="{_H - 14}" width="10" height="10" fill="{color}"/>')
        out.append(f'<text x="{x + 14}" y="{_H - 5}" class="lg">{escape(label)}</text>')
        x += 22 + 7 * len(label)
    out.append("</svg>")
    return "\n".join(out)


def _y(value: float, y_min: float, y_max: float) -> float:
    span = (y_max - y_min) or 1.0
    return _H - _BOTTOM - (_H - _TOP - _BOTTOM) * (value - y_min) / span


def bar_chart(name: str, title: str, categories: Sequence[str], series: Mapping[str, Sequence[float]],
              *, y_fmt: Fmt, colors: Mapping[str, str], y_max: float | None = None) -> str:  # fmt: skip
    """Grouped bars: one group per category, one bar per series (non-finite values draw nothing)."""
    finite = [v for vals in series.values() for v in vals if math.isfinite(v)]
    top = y_max if y_max is not None else _nice_max(max(finite, default=0.0))
    plot_w = _W - _LEFT - _RIGHT
    group_w = plot_w / max(len(categories), 1)
    bar_w = group_w * 0.8 / max(len(series), 1)
    body: list[str] = []
    for ci, cat in enumerate(categories):
        gx = _LEFT + ci * group_w
        body.append(
            f'<text x="{gx + group_w / 2:.1f}" y="{_H - _BOTTOM + 16}" class="xl">{escape(cat)}</text>'
        )
        for si, (label, values) in enumerate(series.items()):
            v = values[ci]
            if not math.isfinite(v):
                continue
            x, y = gx + group_w * 0.1 + si * bar_w, _y(v, 0.0, top)
            body.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w * 0.92:.1f}" height="{_H - _BOTTOM - y:.1f}" '
                f'fill="{colors[label]}"><title>{escape(f"{label} {cat}: {y_fmt(v)}")}</title></rect>'
            )
    return _frame(name, title, body, top, 0.0, y_fmt, [(s, colors[s]) for s in series])


def line_chart(name: str, title: str, x_labels: Sequence[str], series: Mapping[str, Sequence[float | None]],
               *, y_fmt: Fmt, colors: Mapping[str, str], y_min: float = 0.0, y_max: float | None = None,
               hline: tuple[float, str] | None = None) -> str:  # fmt: skip
    """One polyline per series over evenly spaced x labels; gaps (None) break the line."""
    finite = [v for vals in series.values() for v in vals if v is not None and math.isfinite(v)]
    top = y_max if y_max is not None else _nice_max(max([*finite, hline[0] if hline else 0.0], default=0.0))
    n = max(len(x_labels), 1)
    step = (_W - _LEFT - _RIGHT) / max(n - 1, 1)
    body: list[str] = []
    every = max(1, math.ceil(n / 6))
    for i, label in enumerate(x_labels):
        if i % every == 0:
            body.append(
                f'<text x="{_LEFT + i * step:.1f}" y="{_H - _BOTTOM + 16}" class="xl">{escape(label)}</text>'
            )
    if hline is not None:
        y = _y(hline[0], y_min, top)
        body.append(f'<line x1="{_LEFT}" x2="{_W - _RIGHT}" y1="{y:.1f}" y2="{y:.1f}" class="hl"/>')
        body.append(f'<text x="{_W - _RIGHT}" y="{y - 4:.1f}" class="hlt">{escape(hline[1])}</text>')
    for label, values in series.items():
        runs: list[list[str]] = [[]]
        for i, v in enumerate(values):
            if v is None or not math.isfinite(v):
                runs.append([])
                continue
            x, y = _LEFT + i * step, _y(v, y_min, top)
            runs[-1].append(f"{x:.1f},{y:.1f}")
            body.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{colors[label]}">'
                        f"<title>{escape(f'{label} {x_labels[i]}: {y_fmt(v)}')}</title>"
                        "</circle>")  # fmt: skip
        for run in runs:
            if len(run) > 1:
                body.append(f'<polyline points="{" ".join(run)}" fill="none" stroke="{colors[label]}" '
                            'stroke-width="2"/>')  # fmt: skip
    return _frame(name, title, body, top, y_min, y_fmt, [(s, colors[s]) for s in series])


def step_chart(name: str, title: str, edges: Sequence[float], series: Mapping[str, Sequence[float]],
               *, x_fmt: Fmt, y_fmt: Fmt, colors: Mapping[str, str],
               markers: Mapping[str, float] | None = None) -> str:  # fmt: skip
    """Histograms as step outlines over shared bin ``edges`` (drawn evenly spaced, labelled by value);
    ``markers`` draws a dashed vertical line per series at a value (e.g. its p95)."""
    finite = [v for vals in series.values() for v in vals if math.isfinite(v)]
    top = _nice_max(max(finite, default=0.0))
    nb = max(len(edges) - 1, 1)
    bw = (_W - _LEFT - _RIGHT) / nb
    body: list[str] = []
    every = max(1, math.ceil((nb + 1) / 7))
    for i, e in enumerate(edges):
        if i % every == 0:
            body.append(
                f'<text x="{_LEFT + i * bw:.1f}" y="{_H - _BOTTOM + 16}" class="xl">{escape(x_fmt(e))}</text>'
            )
    for label, values in series.items():
        pts = [f"{_LEFT:.1f},{_y(0.0, 0.0, top):.1f}"]
        for i, v in enumerate(values):
            y = _y(v if math.isfinite(v) else 0.0, 0.0, top)
            pts += [f"{_LEFT + i * bw:.1f},{y:.1f}", f"{_LEFT + (i + 1) * bw:.1f},{y:.1f}"]
        pts.append(f"{_LEFT + nb * bw:.1f},{_y(0.0, 0.0, top):.1f}")
        body.append(f'<polyline points="{" ".join(pts)}" fill="{colors[label]}" fill-opacity="0.18" '
                    f'stroke="{colors[label]}" stroke-width="2"/>')  # fmt: skip
    for label, value in (markers or {}).items():
        if not math.isfinite(value) or len(edges) < 2:
            continue
        pos = _position(edges, value)
        x = _LEFT + pos * bw
        tip = escape(f"{label} p95 {x_fmt(value)}")
        body.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{_TOP}" y2="{_H - _BOTTOM}" '
                    f'stroke="{colors[label]}" stroke-dasharray="5 3" stroke-width="1.5"><title>{tip}'
                    "</title></line>")  # fmt: skip
    return _frame(name, title, body, top, 0.0, y_fmt, [(s, colors[s]) for s in series])


def _position(edges: Sequence[float], value: float) -> float:
    """Where ``value`` falls in bin units (log-interpolated inside its bin when edges are positive)."""
    for i in range(len(edges) - 1):
        lo, hi = edges[i], edges[i + 1]
        if value <= hi:
            if value <= lo:
                return float(i)
            if lo > 0:
                return i + math.log(value / lo) / math.log(hi / lo)
            return i + (value - lo) / (hi - lo)
    return float(len(edges) - 1)
