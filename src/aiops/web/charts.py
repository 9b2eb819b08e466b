"""Charts drawn by the project as SVG on the server (issue 14: no third-party JavaScript, no
request to another origin, nothing run in the browser): pure functions from numbers to an SVG
string, every text escaped.

- `time_chart(series, since=..., until=..., ...)`: one or more lines (or areas) over a time
  window, with a time axis, a value axis with round ticks, and their labels; a point that is
  None breaks the line (a step without data), a lone point shows as a dot.
- `bar_chart(bars, ...)`: horizontal bars for a breakdown (by version, provider, model),
  each labelled with its name and value.
- `format_value(value, unit)`: how an axis, a bar and a table show a number.

Each chart is `role="img"` with a `<title>` and a `<desc>` that say in words what it shows;
the page puts the same numbers in a table beside it for screen readers and for tests. Colours
come from classes (`chart-series-0`, ...) that the stylesheet sets for the light and the dark
theme; presentation attributes give a readable default without it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from html import escape

UNITS = ("count", "ratio", "ms", "usd")
SERIES_COLOURS = 4  # chart-series-0 .. -3 in the stylesheet

# Time-axis steps, shortest first: the first that gives at most MAX_TIME_TICKS ticks is used.
_TIME_STEPS = tuple(timedelta(minutes=m) for m in (
    1, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440, 2880, 10080))
MAX_TIME_TICKS = 7
VALUE_TICKS = 4


@dataclass(frozen=True, kw_only=True)
class Series:
    """One line of a time chart: its name (the legend, the description) and its points, in
    time order; a value None (or not finite) is a gap."""

    name: str
    points: tuple[tuple[datetime, float | None], ...]


@dataclass(frozen=True, kw_only=True)
class Bar:
    label: str
    value: float


@dataclass(frozen=True, kw_only=True)
class Box:
    """The plot area inside the SVG, in its user units."""

    left: float
    top: float
    right: float
    bottom: float


def _num(value: float) -> str:
    """A coordinate, short: 2 decimals, no trailing zeros."""
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def format_value(value: float | None, unit: str) -> str:
    """A number as a reader wants it: 1.2k calls, 4.5% errors, 950 ms or 1.2 s, $0.0042."""
    if value is None or not math.isfinite(value):
        return "–"
    if unit == "ratio":
        return f"{value * 100:.1f}%"
    if unit == "ms":
        return f"{value / 1000:.2f} s" if value >= 1000 else f"{value:.0f} ms"
    if unit == "usd":
        if value == 0:
            return "$0"
        if abs(value) >= 1000:
            return "$" + format_value(value, "count")
        if abs(value) >= 1:
            return f"${value:.2f}"
        digits = min(9, 2 - math.floor(math.log10(abs(value))))  # three significant at most
        return f"${value:.{digits}f}".rstrip("0").rstrip(".")
    for size, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= size:
            return f"{value / size:.1f}".rstrip("0").rstrip(".") + suffix
    return f"{value:.0f}" if value == int(value) else f"{value:.2f}".rstrip("0")


def nice_ticks(top: float, count: int = VALUE_TICKS) -> list[float]:
    """Round tick values from 0 up to at least `top`: steps of 1, 2 or 5 times a power of ten,
    about `count` of them (0 and up to count more). `top` <= 0 (no data): [0, 1]."""
    if not top > 0 or not math.isfinite(top):
        return [0.0, 1.0]
    raw = top / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    n = math.ceil(top / step - 1e-9)
    return [i * step for i in range(n + 1)]


def time_ticks(since: datetime, until: datetime) -> list[datetime]:
    """Round times inside [since, until] to label the time axis: every step of the first step
    that gives at most MAX_TIME_TICKS, aligned on UTC."""
    span = until - since
    step = next((s for s in _TIME_STEPS if span / s <= MAX_TIME_TICKS), _TIME_STEPS[-1])
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    first = epoch + step * math.ceil((since - epoch) / step)
    return [first + step * i for i in range(int((until - first) / step) + 1)]


def time_label(when: datetime, span: timedelta) -> str:
    """A tick's label: the time of day within two days, else the date (UTC)."""
    return when.strftime("%H:%M") if span <= timedelta(days=2) else when.strftime("%b %d")


def _x_of(when: datetime, since: datetime, until: datetime, box: Box) -> float:
    share = min(max((when - since) / (until - since), 0.0), 1.0)  # a step begun before since
    return box.left + share * (box.right - box.left)


def _y_of(value: float, top: float, box: Box) -> float:
    return box.bottom - (value / top) * (box.bottom - box.top)


def _runs(points: Sequence[tuple[float, float | None]]) -> list[list[tuple[float, float]]]:
    """The unbroken runs of points (a None ends a run)."""
    runs: list[list[tuple[float, float]]] = [[]]
    for x, y in points:
        if y is None:
            if runs[-1]:
                runs.append([])
        else:
            runs[-1].append((x, y))
    return [r for r in runs if r]


def _head(chart_id: str, width: int, height: int, title: str, desc: str) -> list[str]:
    cid = escape(chart_id)
    return [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="{cid}" '
            f'viewBox="0 0 {width} {height}" role="img" '
            f'aria-labelledby="{cid}-title {cid}-desc" preserveAspectRatio="xMidYMid meet">',
            f'<title id="{cid}-title">{escape(title)}</title>',
            f'<desc id="{cid}-desc">{escape(desc)}</desc>']


def time_chart(series: Sequence[Series], *, chart_id: str, title: str, since: datetime,
               until: datetime, unit: str = "count", area: bool = False, width: int = 480,
               height: int = 200) -> str:
    """A time chart of `series` over [since, until): lines (`area`: filled down to 0), the
    value axis from 0 to a round value above the highest point."""
    if unit not in UNITS:
        raise ValueError(f"unit {unit!r} is not one of {UNITS}")
    if until <= since:
        raise ValueError("until must be after since")
    box = Box(left=68, top=12, right=width - 12, bottom=height - 28)  # room for "$0.00006"
    values = [v for s in series for _, v in s.points if v is not None and math.isfinite(v)]
    ticks = nice_ticks(max(values, default=0.0))
    top = ticks[-1]
    span = until - since
    out = _head(chart_id, width, height, title, _describe(series, unit, since, until, values))
    out.append('<g class="chart-grid" stroke="#8884" stroke-width="1">')
    for t in ticks:
        y = _num(_y_of(t, top, box))
        out.append(f'<line x1="{_num(box.left)}" x2="{_num(box.right)}" y1="{y}" y2="{y}"/>')
    out.append("</g>")
    out.append('<g class="chart-axis" font-size="11" fill="currentColor">')
    for t in ticks:
        out.append(f'<text x="{_num(box.left - 6)}" y="{_num(_y_of(t, top, box) + 4)}" '
                   f'text-anchor="end">{escape(format_value(t, unit))}</text>')
    for when in time_ticks(since, until):
        x = _num(_x_of(when, since, until, box))
        out.append(f'<text x="{x}" y="{_num(box.bottom + 18)}" text-anchor="middle">'
                   f'{escape(time_label(when, span))}</text>')
    out.append("</g>")
    for i, s in enumerate(series):
        out.extend(_draw_series(s, i, since, until, top, box, area))
    if len(series) > 1:
        out.extend(_legend(series, box))
    out.append("</svg>")
    return "\n".join(out)


def _draw_series(s: Series, index: int, since: datetime, until: datetime, top: float, box: Box,
                 area: bool) -> list[str]:
    cls = f"chart-series chart-series-{index % SERIES_COLOURS}"
    points = [(_x_of(w, since, until, box), _y_of(v, top, box) if v is not None
               and math.isfinite(v) else None) for w, v in s.points]
    out = [f'<g class="{cls}" stroke="currentColor" fill="currentColor" '
           f'data-series="{escape(s.name)}">']
    for run in _runs(points):
        line = " ".join(f"{'M' if j == 0 else 'L'}{_num(x)} {_num(y)}"
                        for j, (x, y) in enumerate(run))
        if area and len(run) > 1:
            base = _num(box.bottom)
            out.append(f'<path class="chart-area" stroke="none" fill-opacity="0.2" '
                       f'd="{line} L{_num(run[-1][0])} {base} L{_num(run[0][0])} {base} Z"/>')
        if len(run) == 1:
            out.append(f'<circle class="chart-dot" r="3" cx="{_num(run[0][0])}" '
                       f'cy="{_num(run[0][1])}"/>')
        else:
            out.append(f'<path class="chart-line" fill="none" stroke-width="2" d="{line}"/>')
    out.append("</g>")
    return out


def _legend(series: Sequence[Series], box: Box) -> list[str]:
    out = ['<g class="chart-legend" font-size="11">']
    x = box.left + 8
    for i, s in enumerate(series):
        cls = f"chart-series-{i % SERIES_COLOURS}"
        out.append(f'<rect class="{cls}" fill="currentColor" x="{_num(x)}" '
                   f'y="{_num(box.top)}" width="10" height="10"/>')
        out.append(f'<text x="{_num(x + 14)}" y="{_num(box.top + 9)}" fill="currentColor">'
                   f'{escape(s.name)}</text>')
        x += 24 + 7 * len(s.name)
    out.append("</g>")
    return out


def _describe(series: Sequence[Series], unit: str, since: datetime, until: datetime,
              values: list[float]) -> str:
    """The chart in words: what, over which window, and its highest value."""
    names = ", ".join(s.name for s in series)
    window = f"from {since:%Y-%m-%d %H:%M} to {until:%Y-%m-%d %H:%M} UTC"
    if not values:
        return f"{names} {window}: no data."
    return f"{names} {window}; highest {format_value(max(values), unit)}."


def bar_chart(bars: Sequence[Bar], *, chart_id: str, title: str, unit: str = "count",
              width: int = 480, row: int = 24) -> str:
    """Horizontal bars, one a row, in the order given: the label on the left, the bar scaled
    to the largest value, the value at its end."""
    if unit not in UNITS:
        raise ValueError(f"unit {unit!r} is not one of {UNITS}")
    label_w, value_w = 150, 70
    height = max(1, len(bars)) * row + 8
    finite = [b.value for b in bars if math.isfinite(b.value) and b.value > 0]
    top = max(finite, default=0.0)
    desc = ("no data." if not bars else
            "; ".join(f"{b.label}: {format_value(b.value, unit)}" for b in bars) + ".")
    out = _head(chart_id, width, height, title, desc)
    span = width - label_w - value_w
    for i, b in enumerate(bars):
        y = 4 + i * row
        share = b.value / top if top and math.isfinite(b.value) and b.value > 0 else 0.0
        w = share * span
        out.append(f'<g class="chart-bar chart-series-0" '
                   f'data-label="{escape(b.label)}" data-value="{b.value!r}">')
        out.append(f'<text x="{label_w - 6}" y="{_num(y + row * 0.65)}" text-anchor="end" '
                   f'font-size="12" fill="currentColor">{escape(_clip(b.label))}</text>')
        out.append(f'<rect x="{label_w}" y="{_num(y + 3)}" width="{_num(w)}" '
                   f'height="{_num(row - 8)}" fill="currentColor"/>')
        out.append(f'<text x="{_num(label_w + w + 6)}" y="{_num(y + row * 0.65)}" '
                   f'font-size="12" fill="currentColor">{escape(format_value(b.value, unit))}'
                   "</text>")
        out.append("</g>")
    out.append("</svg>")
    return "\n".join(out)


def _clip(label: str, most: int = 22) -> str:
    """A label that fits the label column (the full one is in the description and table)."""
    return label if len(label) <= most else label[:most - 1] + "…"
