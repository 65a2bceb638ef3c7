"""Charts as inline SVG text: lines over time and stacked horizontal bars.

Pure functions from numbers to markup, so a report renders the same everywhere
and offline. Every chart has a title, axis labels and a legend; an empty
series gives a chart that says so instead of an empty box.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape

WIDTH, HEIGHT = 720, 260
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 28, 40
# Okabe-Ito's colour-blind-safe eight, then Tol's muted ones; cycled.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442",
           "#000000", "#882255", "#44AA99", "#999933", "#AA4499", "#888888", "#117733")

Point = tuple[float, float]


def _nice(top: float) -> float:
    """The smallest 1-2-4-8 x 10^k at or above top: an axis end whose quarters (the
    ticks) are round numbers."""
    if top <= 0:
        return 1.0
    scale = 1.0
    while scale * 10 <= top:
        scale *= 10
    for m in (1, 2, 4, 8, 10):
        if m * scale >= top:
            return m * scale
    return 10 * scale


def _frame(title: str, x_label: str, y_label: str, x_max: float, y_max: float,
           height: int = HEIGHT) -> list[str]:
    w, h = WIDTH - LEFT - RIGHT, height - TOP - BOTTOM
    parts = [f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" '
             f'height="{height}" viewBox="0 0 {WIDTH} {height}" role="img">',
             f"<title>{escape(title)}</title>",
             f'<text x="{LEFT}" y="16" class="t">{escape(title)}</text>',
             f'<line x1="{LEFT}" y1="{TOP + h}" x2="{LEFT + w}" y2="{TOP + h}" class="ax"/>',
             f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{TOP + h}" class="ax"/>']
    for i in range(5):
        y = TOP + h - h * i / 4
        parts.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" class="yl">{_num(y_max * i / 4)}'
                     "</text>")
        parts.append(f'<text x="{LEFT + w * i / 4:.1f}" y="{TOP + h + 16}" class="xl">'
                     f"{_num(x_max * i / 4)}</text>")
    parts.append(f'<text x="{LEFT + w / 2}" y="{height - 6}" class="xl">{escape(x_label)}</text>')
    parts.append(f'<text x="14" y="{TOP + h / 2}" class="yl" '
                 f'transform="rotate(-90 14 {TOP + h / 2})">{escape(y_label)}</text>')
    return parts


def _num(v: float) -> str:
    if v >= 10_000:
        return f"{v / 1000:.0f}k"
    return f"{v:.0f}" if v >= 10 or v == int(v) else f"{v:.1f}"


def _empty(parts: list[str], why: str) -> str:
    parts.append(f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" class="xl">{escape(why)}</text>')
    return "\n".join([*parts, "</svg>"])


def lines(series: Mapping[str, Sequence[Point]], *, title: str, x_label: str, y_label: str,
          step: bool = False) -> str:
    """One polyline per series over a shared x axis starting at 0; `step` draws a
    staircase (a count that jumps, such as buckets opened)."""
    xs = [x for pts in series.values() for x, _ in pts]
    ys = [y for pts in series.values() for _, y in pts]
    x_max, y_max = _nice(max(xs, default=0)), _nice(max(ys, default=0))
    parts = _frame(title, x_label, y_label, x_max, y_max)
    if not xs:
        return _empty(parts, "nothing recorded")
    w, h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    for i, (name, pts) in enumerate(series.items()):
        colour = PALETTE[i % len(PALETTE)]
        coords: list[str] = []
        prev_y: float | None = None
        for x, y in sorted(pts):
            px, py = LEFT + w * x / x_max, TOP + h - h * y / y_max
            if step and prev_y is not None:
                coords.append(f"{px:.1f},{prev_y:.1f}")
            coords.append(f"{px:.1f},{py:.1f}")
            prev_y = py
        if len(coords) == 1:  # one point (a short campaign): a dot, so it shows
            cx, cy = coords[0].split(",")
            parts.append(f'<circle cx="{cx}" cy="{cy}" r="3" fill="{colour}">'
                         f"<title>{escape(name)}</title></circle>")
        else:
            parts.append(f'<polyline points="{" ".join(coords)}" fill="none" '
                         f'stroke="{colour}" stroke-width="2" stroke-linecap="round">'
                         f"<title>{escape(name)}</title></polyline>")
        parts.append(f'<text x="{LEFT + w - 4}" y="{TOP + 14 * (i + 1)}" class="lg" '
                     'text-anchor="end" '
                     f'fill="{colour}">{escape(name)}</text>')
    return "\n".join([*parts, "</svg>"])


def stacked_bars(rows: Sequence[tuple[str, Mapping[str, int]]], *, title: str) -> str:
    """One horizontal bar per row, split by outcome in proportion to its count; "ok"
    first, each outcome one colour in every row (legend below), each segment titled
    with its count."""
    bar, gap, per_line = 18, 6, 5
    colours: dict[str, str] = {"ok": PALETTE[0]}
    for _, counts in rows:
        for outcome in sorted(counts, key=lambda o: -counts[o]):
            colours.setdefault(outcome, PALETTE[1 + (len(colours) - 1) % (len(PALETTE) - 1)])
    legend_lines = (len(colours) + per_line - 1) // per_line
    height = TOP + 16 + max(1, len(rows)) * (bar + gap) + 18 * legend_lines
    parts = [f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" '
             f'height="{height}" viewBox="0 0 {WIDTH} {height}" role="img">',
             f"<title>{escape(title)}</title>",
             f'<text x="{LEFT}" y="16" class="t">{escape(title)}</text>']
    if not rows:
        return _empty(parts, "nothing recorded")
    left, w = 110, WIDTH - 110 - RIGHT - 150
    for r, (label, counts) in enumerate(rows):
        y = TOP + r * (bar + gap)
        total = sum(counts.values()) or 1
        parts.append(f'<text x="{left - 6}" y="{y + bar - 5}" class="yl">{escape(label)}</text>')
        x = float(left)
        for outcome, n in sorted(counts.items(), key=lambda kv: (kv[0] != "ok", -kv[1])):
            width = w * n / total
            parts.append(f'<rect x="{x:.1f}" y="{y}" width="{width:.1f}" height="{bar}" '
                         f'fill="{colours[outcome]}"><title>{escape(label)} {escape(outcome)}: '
                         f"{n:,} ({100 * n / total:.1f} %)</title></rect>")
            x += width
        parts.append(f'<text x="{left + w + 6}" y="{y + bar - 5}" class="lg">'
                     f"{100 * counts.get('ok', 0) / total:.0f} % ok of {total:,}</text>")
    y0 = TOP + 8 + len(rows) * (bar + gap)
    for i, (outcome, colour) in enumerate(colours.items()):
        x, y = left + (i % per_line) * 125, y0 + 18 * (i // per_line)
        parts.append(f'<rect x="{x}" y="{y}" width="10" height="10" fill="{colour}"/>')
        parts.append(f'<text x="{x + 14}" y="{y + 9}" class="lg">{escape(outcome)}</text>')
    return "\n".join([*parts, "</svg>"])
