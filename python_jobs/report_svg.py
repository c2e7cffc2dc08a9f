"""Hand-written inline SVG charts for python_jobs.report (no plotting library, no network).

Every function returns one `<svg>` string with a viewBox (it scales with the page) and
`<title>` tooltips on its marks. Marks carry the class `mark` so a test (or the report's own
script) can count what was drawn.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import date, timedelta
from html import escape

PALETTE = ("#2b6cb0", "#dd6b20", "#38a169", "#805ad5", "#d53f8c", "#319795", "#718096",
           "#b7791f", "#e53e3e", "#3182ce")
Format = Callable[[float], str]


def pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def num(value: float) -> str:
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.3g}" if value != int(value) else f"{int(value)}"


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """About `count` round tick values covering [lo, hi]."""
    if hi <= lo:
        hi = lo + 1.0
    raw = (hi - lo) / max(count, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    ticks = [math.floor(lo / step) * step]
    while ticks[-1] < hi - step * 1e-9:  # the last tick reaches hi
        ticks.append(ticks[0] + len(ticks) * step)
    return [round(t, 12) for t in ticks]


def _svg(width: int, height: int, body: list[str], label: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
            f'role="img" aria-label="{escape(label)}" class="chart-svg">'
            + "".join(body) + "</svg>")


class _Scale:
    def __init__(self, lo: float, hi: float, out_lo: float, out_hi: float) -> None:
        self.lo, self.hi = lo, hi if hi != lo else lo + 1.0
        self.out_lo, self.out_hi = out_lo, out_hi

    def __call__(self, value: float) -> float:
        return self.out_lo + (value - self.lo) / (self.hi - self.lo) * (self.out_hi - self.out_lo)


def _legend(names: Sequence[str], x: float, y: float) -> list[str]:
    out = []
    for i, name in enumerate(names):
        color = PALETTE[i % len(PALETTE)]
        out.append(f'<rect x="{x + i * 130:.1f}" y="{y - 9:.1f}" width="12" height="12" '
                   f'fill="{color}"/><text x="{x + i * 130 + 16:.1f}" y="{y + 1:.1f}" '
                   f'class="legend">{escape(name)}</text>')
    return out


def line_chart(series: dict[str, Sequence[tuple[float | date, float]]], *, label: str,
               y_format: Format = num, x_format: Format | None = None,
               y_range: tuple[float, float] | None = None, diagonal: bool = False,
               points: bool = False, width: int = 900, height: int = 320,
               x_label: str = "", y_label: str = "") -> str:
    """Lines (one per series) over numbers or dates; `diagonal` draws y = x (ROC,
    calibration), `points` marks every point."""
    is_date = any(isinstance(x, date) for pts in series.values() for x, _y in pts)

    def xnum(x: float | date) -> float:
        return float(x.toordinal()) if isinstance(x, date) else float(x)

    xs = [xnum(x) for pts in series.values() for x, _y in pts]
    ys = [y for pts in series.values() for _x, y in pts if y is not None]
    if not xs or not ys:
        return _svg(width, 60, ['<text x="10" y="30">no data</text>'], label)
    left, right, top, bottom = 64, 16, 28 if len(series) > 1 else 12, 44
    y_lo, y_hi = y_range or (min(0.0, min(ys)), max(ys))
    y_ticks = nice_ticks(y_lo, y_hi)
    y_lo, y_hi = min(y_lo, y_ticks[0]), max(y_hi, y_ticks[-1])
    sx = _Scale(min(xs), max(xs), left, width - right)
    sy = _Scale(y_lo, y_hi, height - bottom, top)
    body = []
    for t in y_ticks:
        body.append(f'<line x1="{left}" x2="{width - right}" y1="{sy(t):.1f}" y2="{sy(t):.1f}" '
                    f'class="grid"/><text x="{left - 6}" y="{sy(t) + 4:.1f}" class="tick" '
                    f'text-anchor="end">{escape(y_format(t))}</text>')
    if is_date:
        start, end = date.fromordinal(int(min(xs))), date.fromordinal(int(max(xs)))
        step = max(1, (end - start).days // 6)
        day = start
        while day <= end:
            x = sx(day.toordinal())
            body.append(f'<text x="{x:.1f}" y="{height - bottom + 16}" class="tick" '
                        f'text-anchor="middle">{day:%b %d}</text>')
            day += timedelta(days=step)
    else:
        for t in nice_ticks(min(xs), max(xs), 8):
            if min(xs) <= t <= max(xs):
                body.append(f'<text x="{sx(t):.1f}" y="{height - bottom + 16}" class="tick" '
                            f'text-anchor="middle">{escape((x_format or num)(t))}</text>')
    body.append(f'<line x1="{left}" x2="{width - right}" y1="{height - bottom}" '
                f'y2="{height - bottom}" class="axis"/>')
    if diagonal:
        lo, hi = max(min(xs), y_lo), min(max(xs), y_hi)
        body.append(f'<line x1="{sx(lo):.1f}" y1="{sy(lo):.1f}" x2="{sx(hi):.1f}" '
                    f'y2="{sy(hi):.1f}" class="reference"/>')
    for i, (name, pts) in enumerate(series.items()):
        color = PALETTE[i % len(PALETTE)]
        coords = [(sx(xnum(x)), sy(y)) for x, y in pts if y is not None]
        if not coords:
            continue
        path = " ".join(f"{'M' if j == 0 else 'L'}{x:.1f},{y:.1f}"
                        for j, (x, y) in enumerate(coords))
        body.append(f'<path d="{path}" fill="none" stroke="{color}" stroke-width="2" '
                    f'class="mark line"><title>{escape(name)}</title></path>')
        if points:
            for (x, y), (xv, yv) in zip(coords, [p for p in pts if p[1] is not None],
                                        strict=True):
                xt = xv if not isinstance(xv, float) else (x_format or num)(xv)
                body.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{color}" '
                            f'class="mark point"><title>{escape(name)}: {escape(str(xt))}, '
                            f'{escape(y_format(yv))}</title></circle>')
    if len(series) > 1:
        body.extend(_legend(list(series), left, 14))
    if x_label:
        body.append(f'<text x="{(left + width - right) / 2:.1f}" y="{height - 6}" '
                    f'class="axis-label" text-anchor="middle">{escape(x_label)}</text>')
    if y_label:
        body.append(f'<text x="14" y="{(top + height - bottom) / 2:.1f}" class="axis-label" '
                    f'text-anchor="middle" transform="rotate(-90 14 '
                    f'{(top + height - bottom) / 2:.1f})">{escape(y_label)}</text>')
    return _svg(width, height, body, label)


def bar_chart(labels: Sequence[str], values: Sequence[float], *, label: str,
              value_format: Format = num, notes: Sequence[str] | None = None,
              highlight: Sequence[bool] | None = None, width: int = 900,
              bar_height: int = 20, label_width: int = 170) -> str:
    """Horizontal bars, one per label, the value (and an optional note) at the bar's end."""
    if not labels:
        return _svg(width, 60, ['<text x="10" y="30">no data</text>'], label)
    height = 12 + len(labels) * (bar_height + 6)
    hi = max(max(values), 1e-12)
    texts = [value_format(v) + (f"  {notes[i]}" if notes else "") for i, v in enumerate(values)]
    text_room = 6.5 * max(len(t) for t in texts) + 8  # about 6.5 px per character at 11 px
    sx = _Scale(0, hi, label_width, max(width - 10 - text_room, label_width + 50))
    body = []
    for i, (name, value) in enumerate(zip(labels, values, strict=True)):
        y = 6 + i * (bar_height + 6)
        color = "#e53e3e" if highlight and highlight[i] else PALETTE[0]
        text = texts[i]
        body.append(
            f'<text x="{label_width - 6}" y="{y + bar_height * 0.72:.1f}" class="tick" '
            f'text-anchor="end">{escape(name)}</text>'
            f'<rect x="{label_width}" y="{y}" width="{max(sx(value) - label_width, 0.5):.1f}" '
            f'height="{bar_height}" fill="{color}" class="mark bar"><title>{escape(name)}: '
            f'{escape(text)}</title></rect>'
            f'<text x="{sx(value) + 4:.1f}" y="{y + bar_height * 0.72:.1f}" class="value">'
            f'{escape(text)}</text>')
    return _svg(width, height, body, label)


def column_chart(labels: Sequence[str], values: Sequence[float], *, label: str,
                 value_format: Format = num, highlight: Sequence[bool] | None = None,
                 width: int = 900, height: int = 260, y_label: str = "") -> str:
    """Vertical bars over an ordered category (hours, weekdays, track numbers)."""
    if not labels:
        return _svg(width, 60, ['<text x="10" y="30">no data</text>'], label)
    left, right, top, bottom = 64, 10, 10, 40
    ticks = nice_ticks(0, max(values))
    sy = _Scale(0, ticks[-1], height - bottom, top)
    slot = (width - left - right) / len(labels)
    body = []
    for t in ticks:
        body.append(f'<line x1="{left}" x2="{width - right}" y1="{sy(t):.1f}" y2="{sy(t):.1f}" '
                    f'class="grid"/><text x="{left - 6}" y="{sy(t) + 4:.1f}" class="tick" '
                    f'text-anchor="end">{escape(value_format(t))}</text>')
    for i, (name, value) in enumerate(zip(labels, values, strict=True)):
        x = left + i * slot + slot * 0.12
        color = "#e53e3e" if highlight and highlight[i] else PALETTE[0]
        body.append(f'<rect x="{x:.1f}" y="{sy(value):.1f}" width="{slot * 0.76:.1f}" '
                    f'height="{max(sy(0) - sy(value), 0.5):.1f}" fill="{color}" '
                    f'class="mark bar"><title>{escape(name)}: {escape(value_format(value))}'
                    f'</title></rect><text x="{x + slot * 0.38:.1f}" y="{height - bottom + 15}" '
                    f'class="tick" text-anchor="middle">{escape(name)}</text>')
    if y_label:
        body.append(f'<text x="14" y="{(height - bottom) / 2:.1f}" class="axis-label" '
                    f'text-anchor="middle" transform="rotate(-90 14 {(height - bottom) / 2:.1f})">'
                    f'{escape(y_label)}</text>')
    return _svg(width, height, body, label)


def heatmap(row_labels: Sequence[str], col_labels: Sequence[str],
            values: dict[tuple[str, str], float], *, label: str, value_format: Format = pct,
            row_notes: dict[str, str] | None = None, width: int = 900) -> str:
    """Cells shaded white to blue over 0..1; missing cells (censored periods) stay empty."""
    if not row_labels or not col_labels:
        return _svg(width, 60, ['<text x="10" y="30">no data</text>'], label)
    left, top, cell_h = 150, 24, 22
    cell_w = (width - left - 10) / len(col_labels)
    height = top + len(row_labels) * cell_h + 8
    body = []
    for j, col in enumerate(col_labels):
        body.append(f'<text x="{left + (j + 0.5) * cell_w:.1f}" y="16" class="tick" '
                    f'text-anchor="middle">{escape(col)}</text>')
    for i, row in enumerate(row_labels):
        y = top + i * cell_h
        note = f" ({row_notes[row]})" if row_notes and row in row_notes else ""
        body.append(f'<text x="{left - 6}" y="{y + cell_h * 0.7:.1f}" class="tick" '
                    f'text-anchor="end">{escape(row + note)}</text>')
        for j, col in enumerate(col_labels):
            value = values.get((row, col))
            if value is None or (isinstance(value, float) and math.isnan(value)):
                continue
            shade = max(0.0, min(1.0, value))
            r, g, b = (int(247 - shade * (247 - 8)), int(251 - shade * (251 - 81)),
                       int(255 - shade * (255 - 156)))
            ink = "#fff" if shade > 0.55 else "#1a202c"
            x = left + j * cell_w
            body.append(f'<rect x="{x:.1f}" y="{y}" width="{cell_w - 1:.1f}" '
                        f'height="{cell_h - 1}" fill="rgb({r},{g},{b})" class="mark cell">'
                        f'<title>{escape(row)}, {escape(col)}: {escape(value_format(value))}'
                        f'</title></rect><text x="{x + cell_w / 2:.1f}" '
                        f'y="{y + cell_h * 0.68:.1f}" class="cell-text" fill="{ink}" '
                        f'text-anchor="middle">{escape(value_format(value))}</text>')
    return _svg(width, height, body, label)


def forest_plot(rows: Sequence[tuple[str, float, float, float, bool]], *, label: str,
                value_format: Format = pct, width: int = 900, x_label: str = "") -> str:
    """One row per (label, estimate, ci_low, ci_high, significant): a point and its interval,
    with a reference line at zero."""
    if not rows:
        return _svg(width, 60, ['<text x="10" y="30">no data</text>'], label)
    left, right, top, row_h = 300, 20, 10, 24
    height = top + len(rows) * row_h + 44
    lo = min(min(r[2] for r in rows), 0.0)
    hi = max(max(r[3] for r in rows), 0.0)
    ticks = nice_ticks(lo, hi, 6)
    sx = _Scale(ticks[0], ticks[-1], left, width - right)
    body = []
    for t in ticks:
        body.append(f'<line x1="{sx(t):.1f}" x2="{sx(t):.1f}" y1="{top}" '
                    f'y2="{height - 40}" class="grid"/><text x="{sx(t):.1f}" '
                    f'y="{height - 26}" class="tick" text-anchor="middle">'
                    f'{escape(value_format(t))}</text>')
    body.append(f'<line x1="{sx(0):.1f}" x2="{sx(0):.1f}" y1="{top}" y2="{height - 40}" '
                f'class="reference"/>')
    for i, (name, est, ci_lo, ci_hi, significant) in enumerate(rows):
        y = top + i * row_h + row_h / 2
        color = "#e53e3e" if significant else "#4a5568"
        tip = (f"{name}: {value_format(est)} [{value_format(ci_lo)}, {value_format(ci_hi)}]"
               + (" significant (Holm)" if significant else ""))
        body.append(f'<text x="{left - 8}" y="{y + 4:.1f}" class="tick" text-anchor="end">'
                    f'{escape(name)}</text><line x1="{sx(ci_lo):.1f}" x2="{sx(ci_hi):.1f}" '
                    f'y1="{y:.1f}" y2="{y:.1f}" stroke="{color}" stroke-width="2" '
                    f'class="mark interval"/><circle cx="{sx(est):.1f}" cy="{y:.1f}" r="4.5" '
                    f'fill="{color}" class="mark point"><title>{escape(tip)}</title></circle>')
    if x_label:
        body.append(f'<text x="{(left + width - right) / 2:.1f}" y="{height - 6}" '
                    f'class="axis-label" text-anchor="middle">{escape(x_label)}</text>')
    return _svg(width, height, body, label)
