"""The report's chart: lag and throughput over the run's time, as inline SVG (no scripts),
with the phases marked and the write pauses of the cut-over and the rollback shaded."""

from __future__ import annotations

import html
import itertools
import math
import time
from dataclasses import dataclass
from typing import Any

WIDTH = 880
LEFT, RIGHT, TOP = 78, 24, 86
PAUSE_ROWS = (14, 28)  # y of the rows of labels above the chart: the pauses' (bold) ...
PHASE_ROWS = (46, 58, 70)  # ... and the phases'; a label too close to the last in its row
# takes the next row
PANEL_H, GAP, BOTTOM = 130, 44, 40
COLOURS = ("#0969da", "#bf3989", "#1a7f37")
PAUSE_FILL = {"cut-over": "#f59e0b", "rollback": "#cf222e"}

Points = list[tuple[float, float | None]]


@dataclass
class Series:
    label: str
    points: Points


@dataclass
class Panel:
    title: str
    unit: str
    series: list[Series]


def human(value: float) -> str:
    """1234 -> 1.2k, 5600000 -> 5.6M; small numbers as they are."""
    for size, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= size:
            return f"{value / size:.3g}{suffix}"
    return f"{value:.3g}" if value else "0"


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= value)


def rate(samples: list[dict[str, Any]], field: str) -> Points:
    """Per-second growth of a counter between consecutive samples (None where unknown)."""
    points: Points = []
    for before, after in itertools.pairwise(samples):
        dt = after["t"] - before["t"]
        a, b = before.get(field), after.get(field)
        if isinstance(a, int | float) and isinstance(b, int | float) and dt > 0 and b >= a:
            points.append((after["t"], (b - a) / dt))
        else:
            points.append((after["t"], None))
    return points


def panels(samples: list[dict[str, Any]]) -> list[Panel]:
    def series(field: str) -> Points:
        return [(s["t"], s.get(field)) for s in samples]

    out = [Panel("Lag", "bytes", [Series("lag (bytes)", series("lag_bytes"))])]
    if any(s.get("lag_ms") is not None for s in samples):
        out.append(Panel("Lag in time", "ms", [Series("heartbeat lag (ms)",
                                                      series("lag_ms"))]))
    throughput = []
    if any(s.get("ops_per_s") is not None for s in samples):
        throughput.append(Series("ops/s (as measured)", series("ops_per_s")))
    elif any(s.get("commands") is not None for s in samples):
        throughput.append(Series("commands applied/s", rate(samples, "commands")))
    keys_rate = rate(samples, "keys")
    if any(v for _t, v in keys_rate):
        throughput.append(Series("keys loaded/s", keys_rate))
    out.append(Panel("Throughput", "per second", throughput))
    return out


def _clock(t: float) -> str:
    return time.strftime("%H:%M:%S", time.gmtime(t))


def _elapsed(seconds: float) -> str:
    seconds = round(seconds)
    return f"+{seconds // 60}:{seconds % 60:02d}" if seconds >= 60 else f"+{seconds}s"


def _text(x: float, y: float, text: str, *, anchor: str = "start", size: int = 11,
          fill: str = "#57606a", weight: str = "normal") -> str:
    return (f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" '
            f'fill="{fill}" font-weight="{weight}" font-family="sans-serif">'
            f"{html.escape(text)}</text>")


def svg(samples: list[dict[str, Any]], phases: list[tuple[str, float]],
        pauses: list[tuple[str, float, float, float | None]]) -> str:
    """``phases``: (name, start time); ``pauses``: (what, start, end, measured ms)."""
    rows = panels(samples)
    height = TOP + len(rows) * (PANEL_H + GAP) - GAP + BOTTOM
    times = [s["t"] for s in samples] + [p[1] for p in pauses] + [p[2] for p in pauses]
    t0, t1 = min(times), max(times)
    if t1 - t0 < 1:
        t1 = t0 + 1
    plot_w = WIDTH - LEFT - RIGHT

    def x(t: float) -> float:
        return LEFT + (t - t0) / (t1 - t0) * plot_w

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" '
             f'width="{WIDTH}" height="{height}" role="img" '
             'aria-label="Lag and throughput over time, with the write pause shaded">',
             "<title>Lag and throughput over time</title>",
             f'<rect x="0" y="0" width="{WIDTH}" height="{height}" fill="#ffffff"/>']
    bottom = TOP + len(rows) * (PANEL_H + GAP) - GAP
    for i, panel in enumerate(rows):
        parts += _panel(panel, TOP + i * (PANEL_H + GAP), x)
    pause_rows = _Rows(PAUSE_ROWS, char_w=6.6)
    for what, start, end, ms in pauses:  # shaded across every panel, at least 3 px wide
        left, right = x(start), max(x(end), x(start) + 3)
        shown = f"{what} write pause" + (f" {ms:g} ms" if ms is not None else "")
        parts.append(f'<rect class="pause" x="{left:.1f}" y="{PAUSE_ROWS[0] + 4}" '
                     f'width="{right - left:.1f}" height="{bottom - PAUSE_ROWS[0] - 4}" '
                     f'fill="{PAUSE_FILL.get(what, "#f59e0b")}" fill-opacity="0.35">'
                     f"<title>{html.escape(shown)}</title></rect>")
        at_end = right > WIDTH - 200
        y = pause_rows.place(left - 4 if at_end else right + 4, shown, from_right=at_end)
        parts.append(_text(left - 4 if at_end else right + 4, y, shown,
                           anchor="end" if at_end else "start", fill="#9a6700",
                           weight="bold"))
    phase_rows = _Rows(PHASE_ROWS, char_w=6.0)
    for name, start in phases:
        if t0 <= start <= t1:
            px = x(start)
            y = phase_rows.place(px + 3, name)
            parts.append(f'<line x1="{px:.1f}" y1="{y + 3}" x2="{px:.1f}" '
                         f'y2="{bottom}" stroke="#8c959f" stroke-dasharray="3 3"/>')
            parts.append(_text(px + 3, y, name, size=10))
    for k in range(6):  # the time axis
        t = t0 + (t1 - t0) * k / 5
        parts.append(_text(x(t), bottom + 16, _elapsed(t - t0), anchor="middle"))
    parts.append(_text(LEFT, bottom + 32, f"time from {_clock(t0)} UTC", size=10))
    parts.append("</svg>")
    return "".join(parts)


class _Rows:
    """Rows of labels: each label goes in the first row where it does not overlap the
    labels already there (the least crowded row when none is free)."""

    def __init__(self, ys: tuple[int, ...], char_w: float):
        self.ys, self.char_w = ys, char_w
        self.spans: list[list[tuple[float, float]]] = [[] for _ in ys]

    def place(self, x: float, text: str, *, from_right: bool = False) -> int:
        width = self.char_w * len(text)
        span = (x - width, x) if from_right else (x, x + width)
        free = [i for i, row in enumerate(self.spans)
                if all(span[1] + 4 <= a or b + 4 <= span[0] for a, b in row)]
        row = free[0] if free else min(range(len(self.ys)), key=lambda i: len(self.spans[i]))
        self.spans[row].append(span)
        return self.ys[row]


def _panel(panel: Panel, top: float, x: Any) -> list[str]:
    values = [v for s in panel.series for _t, v in s.points if isinstance(v, int | float)]
    peak = _nice_max(max(values, default=0.0))

    def y(v: float) -> float:
        return top + PANEL_H - v / peak * PANEL_H

    parts = [f'<rect x="{LEFT}" y="{top}" width="{WIDTH - LEFT - RIGHT}" height="{PANEL_H}" '
             'fill="#f6f8fa" stroke="#d0d7de"/>',
             _text(LEFT, top - 6, f"{panel.title} ({panel.unit})", size=12, fill="#1f2328",
                   weight="bold")]
    for frac in (0.0, 0.5, 1.0):
        ty = y(peak * frac)
        parts.append(f'<line x1="{LEFT}" y1="{ty:.1f}" x2="{WIDTH - RIGHT}" y2="{ty:.1f}" '
                     'stroke="#d0d7de"/>')
        parts.append(_text(LEFT - 6, ty + 4, human(peak * frac), anchor="end"))
    legend_x: float = WIDTH - RIGHT
    for colour, series in zip(COLOURS, panel.series, strict=False):
        parts += [_polyline(run, x, y, colour, series.label) for run in _runs(series.points)]
        parts.append(_text(legend_x, top - 6, series.label, anchor="end", fill=colour))
        legend_x -= 8 + 6.5 * len(series.label)
    if not values:
        parts.append(_text(LEFT + 10, top + PANEL_H / 2, "not measured in this mode"))
    return parts


def _runs(points: Points) -> list[list[tuple[float, float]]]:
    """The points split where a value is missing (the line is not drawn across a gap)."""
    runs: list[list[tuple[float, float]]] = [[]]
    for t, v in points:
        if isinstance(v, int | float):
            runs[-1].append((t, float(v)))
        elif runs[-1]:
            runs.append([])
    return [r for r in runs if r]


def _polyline(run: list[tuple[float, float]], x: Any, y: Any, colour: str, label: str) -> str:
    if len(run) == 1:  # a single sample: a dot
        t, v = run[0]
        return (f'<circle cx="{x(t):.1f}" cy="{y(v):.1f}" r="2.5" fill="{colour}">'
                f"<title>{html.escape(label)}</title></circle>")
    points = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in run)
    return (f'<polyline class="series" points="{points}" fill="none" stroke="{colour}" '
            f'stroke-width="1.8"><title>{html.escape(label)}</title></polyline>')
