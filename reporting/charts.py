"""Server-rendered charts: small inline SVG, no JavaScript, nothing from a CDN.

Each function returns safe markup for a template. Every label goes through
``format_html``, so names from the database cannot inject markup. Drawn data
carry a class (``bar``, ``point``, ``line``, ``range``, ``mark``, ``marker``) and a ``<title>`` tooltip, the
``<svg>`` has ``role="img"`` with a title and a description, and colours come
from CSS classes (``series-0``, ``series-1``) the page styles with the admin's
own variables, so the charts follow its light and dark themes.

With no data (every value zero or missing) a chart draws its frame and an
empty-state message instead of scales, so nothing divides by zero.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

WIDTH = 600
HEIGHT = 240
MARGIN_LEFT = 72
MARGIN_RIGHT = 16
MARGIN_TOP = 32
MARGIN_BOTTOM = 48
MAX_X_LABELS = 8
HBAR_ROW = 26
HBAR_LABEL_WIDTH = 190
HBAR_VALUE_WIDTH = 100
LABEL_MAX_CHARS = 26
RANGE_LABEL_WIDTH = 230
RANGE_LABEL_MAX_CHARS = 29  # at 12px, what fits in RANGE_LABEL_WIDTH with the gap before the axis
RANGE_VALUE_WIDTH = 130  # "88.9% (69%–99%)" at 12px, after a range that ends at 100%

Format = Callable[[float], str]


def count_format(value: float) -> str:
    return f"{value:,.0f}"


def money_format(value: float) -> str:
    return f"{value:,.2f}"


def percent_format(value: float) -> str:
    return f"{value:.0%}"


@dataclass(frozen=True)
class Series:
    """One named row of values along the x axis; ``None`` is a gap (no data that day)."""

    name: str
    values: Sequence[float | None]


@dataclass(frozen=True)
class HBar:
    """One row of a horizontal bar chart: a label, its value, and the text shown after the bar; a ``flagged``
    row's bar has the class ``flagged`` (its text should say why: colour is never the only sign)."""

    label: str
    value: float
    text: str
    flagged: bool = False


@dataclass(frozen=True)
class RangeRow:
    """One row of a range chart: a label, an interval ``low`` to ``high`` with a ``mark`` inside it, the text
    shown after it, and a longer ``tooltip`` for the range."""

    label: str
    low: float
    high: float
    mark: float
    text: str
    tooltip: str


@dataclass(frozen=True)
class _Scale:
    top: float
    step: float


def _nice_scale(maximum: float, *, integer: bool, ticks: int = 5) -> _Scale:
    """A round step (1, 2, 2.5 or 5 times a power of ten; whole for counts) giving at most ``ticks``
    steps up to a top that covers ``maximum``, which is > 0."""
    raw = maximum / ticks
    magnitude = 10 ** math.floor(math.log10(raw))
    steps = [m * magnitude for m in (1, 2, 2.5, 5, 10)]
    if integer:
        steps = [s for s in steps if s >= 1 and s == int(s)] or [1.0]
    step = next((s for s in steps if s >= raw), steps[-1])
    return _Scale(top=step * math.ceil(maximum / step - 1e-9), step=step)


def _f(value: float) -> str:
    """A coordinate for an SVG attribute."""
    return f"{value:.1f}"


def _short(label: str, limit: int = LABEL_MAX_CHARS) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "…"


def _join(parts: Sequence[SafeString]) -> SafeString:
    return mark_safe("".join(parts))  # noqa: S308 - every part was built by format_html


def _svg(*, chart_id: str, title: str, summary: str, height: float, body: SafeString) -> SafeString:
    return format_html(
        '<svg class="chart" id="{}" viewBox="0 0 {} {}" width="100%" preserveAspectRatio="xMidYMid meet" '
        'role="img" aria-labelledby="{}-title {}-desc">'
        '<title id="{}-title">{}</title><desc id="{}-desc">{}</desc>{}</svg>',
        chart_id,
        WIDTH,
        _f(height),
        chart_id,
        chart_id,
        chart_id,
        title,
        chart_id,
        summary,
        body,
    )


def _x_axis_label(text: str, *, x: float, y: float) -> SafeString:
    return format_html('<text class="axis-label" x="{}" y="{}" text-anchor="middle">{}</text>', _f(x), _f(y), text)


def _empty_chart(*, chart_id: str, title: str, summary: str, message: str, height: float) -> SafeString:
    """A chart with nothing to draw: its frame and ``message``, still titled and described."""
    return _svg(chart_id=chart_id, title=title, summary=summary, height=height, body=_empty(message, height=height))


def _empty(message: str, *, height: float) -> SafeString:
    return format_html(
        '<rect class="frame" x="0.5" y="0.5" width="{}" height="{}" rx="4"></rect>'
        '<text class="empty-state" x="{}" y="{}" text-anchor="middle" dominant-baseline="middle">{}</text>',
        WIDTH - 1,
        _f(height - 1),
        WIDTH / 2,
        _f(height / 2),
        message,
    )


def _legend(series: Sequence[Series]) -> SafeString:
    if len(series) < 2:
        return SafeString("")
    parts = []
    x = MARGIN_LEFT
    for i, one in enumerate(series):
        parts.append(
            format_html(
                '<rect class="legend-swatch series-{}" x="{}" y="8" width="12" height="12" rx="2"></rect>'
                '<text class="legend" x="{}" y="18">{}</text>',
                i,
                x,
                x + 18,
                one.name,
            )
        )
        x += 30 + 8 * len(one.name)
    return _join(parts)


def _y_axis(scale: _Scale, *, plot_bottom: float, plot_height: float, y_label: str, fmt: Format) -> SafeString:
    parts = []
    steps = round(scale.top / scale.step)
    for i in range(steps + 1):
        value = scale.step * i
        y = plot_bottom - plot_height * value / scale.top
        parts.append(
            format_html(
                '<line class="grid" x1="{}" x2="{}" y1="{}" y2="{}"></line>'
                '<text class="tick" x="{}" y="{}" text-anchor="end" dominant-baseline="middle">{}</text>',
                MARGIN_LEFT,
                WIDTH - MARGIN_RIGHT,
                _f(y),
                _f(y),
                MARGIN_LEFT - 6,
                _f(y),
                fmt(value),
            )
        )
    parts.append(
        format_html(
            '<text class="axis-label" x="{}" y="{}" text-anchor="middle" transform="rotate(-90 {} {})">{}</text>',
            14,
            _f(MARGIN_TOP + plot_height / 2),
            14,
            _f(MARGIN_TOP + plot_height / 2),
            y_label,
        )
    )
    return _join(parts)


def _x_axis(labels: Sequence[str], *, band: float, plot_bottom: float, x_label: str) -> SafeString:
    """Ticks under at most ``MAX_X_LABELS`` labels, counted back from the last so it is always labelled."""
    every = max(1, math.ceil(len(labels) / MAX_X_LABELS))
    parts = [
        format_html(
            '<line class="axis" x1="{}" x2="{}" y1="{}" y2="{}"></line>',
            MARGIN_LEFT,
            WIDTH - MARGIN_RIGHT,
            _f(plot_bottom),
            _f(plot_bottom),
        )
    ]
    for i, label in enumerate(labels):
        if (len(labels) - 1 - i) % every:
            continue
        x = MARGIN_LEFT + band * (i + 0.5)
        parts.append(
            format_html(
                '<line class="axis" x1="{}" x2="{}" y1="{}" y2="{}"></line>'
                '<text class="tick" x="{}" y="{}" text-anchor="middle">{}</text>',
                _f(x),
                _f(x),
                _f(plot_bottom),
                _f(plot_bottom + 4),
                _f(x),
                _f(plot_bottom + 16),
                label,
            )
        )
    parts.append(_x_axis_label(x_label, x=MARGIN_LEFT + (WIDTH - MARGIN_LEFT - MARGIN_RIGHT) / 2, y=HEIGHT - 8))
    return _join(parts)


def bar_chart(
    *,
    chart_id: str,
    title: str,
    summary: str,
    labels: Sequence[str],
    series: Sequence[Series],
    x_label: str,
    y_label: str,
    fmt: Format = count_format,
    integer: bool = True,
    empty_message: str = "No data in this period.",
) -> SafeString:
    """Vertical bars, grouped by label, one colour per series; a zero or missing value draws no bar."""
    values = [v for one in series for v in one.values if v]
    if not labels or not values or max(values) <= 0:
        return _empty_chart(chart_id=chart_id, title=title, summary=summary, message=empty_message, height=HEIGHT)
    scale = _nice_scale(max(values), integer=integer)
    plot_bottom = HEIGHT - MARGIN_BOTTOM
    plot_height = plot_bottom - MARGIN_TOP
    band = (WIDTH - MARGIN_LEFT - MARGIN_RIGHT) / len(labels)
    bar_width = band * 0.8 / len(series)
    bars = []
    for s, one in enumerate(series):
        for i, value in enumerate(one.values):
            if not value or value <= 0:
                continue
            height = plot_height * value / scale.top
            bars.append(
                format_html(
                    '<rect class="bar series-{}" x="{}" y="{}" width="{}" height="{}" data-value="{}">'
                    "<title>{}: {} {}</title></rect>",
                    s,
                    _f(MARGIN_LEFT + band * (i + 0.1) + bar_width * s),
                    _f(plot_bottom - height),
                    _f(bar_width),
                    _f(height),
                    value,
                    labels[i],
                    fmt(value),
                    one.name,
                )
            )
    body = _join(
        [
            _y_axis(scale, plot_bottom=plot_bottom, plot_height=plot_height, y_label=y_label, fmt=fmt),
            _join(bars),
            _x_axis(labels, band=band, plot_bottom=plot_bottom, x_label=x_label),
            _legend(series),
        ]
    )
    return _svg(chart_id=chart_id, title=title, summary=summary, height=HEIGHT, body=body)


def line_chart(
    *,
    chart_id: str,
    title: str,
    summary: str,
    labels: Sequence[str],
    series: Series,
    x_label: str,
    y_label: str,
    y_max: float | None = None,
    fmt: Format = count_format,
    empty_message: str = "No data in this period.",
) -> SafeString:
    """A line with a point per value, broken where a value is ``None``; the y axis runs from zero to
    ``y_max`` (or past it, rounded, if a value is higher)."""
    present = [v for v in series.values if v is not None]
    top = max([*present, y_max or 0.0], default=0.0)
    if not labels or not present or top <= 0:
        return _empty_chart(chart_id=chart_id, title=title, summary=summary, message=empty_message, height=HEIGHT)
    scale = _nice_scale(top, integer=False)
    plot_bottom = HEIGHT - MARGIN_BOTTOM
    plot_height = plot_bottom - MARGIN_TOP
    band = (WIDTH - MARGIN_LEFT - MARGIN_RIGHT) / len(labels)

    def xy(i: int, value: float) -> tuple[float, float]:
        return MARGIN_LEFT + band * (i + 0.5), plot_bottom - plot_height * value / scale.top

    segments: list[list[tuple[float, float]]] = [[]]
    points = []
    for i, value in enumerate(series.values):
        if value is None:
            segments.append([])
            continue
        x, y = xy(i, value)
        segments[-1].append((x, y))
        points.append(
            format_html(
                '<circle class="point series-0" cx="{}" cy="{}" r="4" data-value="{}"><title>{}: {}</title></circle>',
                _f(x),
                _f(y),
                value,
                labels[i],
                fmt(value),
            )
        )
    lines = [
        format_html(
            '<polyline class="line series-0" points="{}"></polyline>', " ".join(f"{_f(x)},{_f(y)}" for x, y in segment)
        )
        for segment in segments
        if len(segment) > 1
    ]
    body = _join(
        [
            _y_axis(scale, plot_bottom=plot_bottom, plot_height=plot_height, y_label=y_label, fmt=fmt),
            _x_axis(labels, band=band, plot_bottom=plot_bottom, x_label=x_label),
            _join(lines),
            _join(points),
        ]
    )
    return _svg(chart_id=chart_id, title=title, summary=summary, height=HEIGHT, body=body)


def hbar_chart(
    *,
    chart_id: str,
    title: str,
    summary: str,
    rows: Sequence[HBar],
    x_label: str,
    max_value: float = 1.0,
    fmt: Format = percent_format,
    empty_message: str = "No data in this period.",
    marker: float | None = None,
    marker_label: str = "",
    value_width: float = HBAR_VALUE_WIDTH,
) -> SafeString:
    """One horizontal bar per row on a fixed 0 to ``max_value`` scale (longer bars stop at its end), the
    row's text after it; ``marker`` draws a dashed line across every row at that value, ``marker_label``
    above it."""
    if not rows or max_value <= 0:
        return _empty_chart(chart_id=chart_id, title=title, summary=summary, message=empty_message, height=HEIGHT / 2)
    top = 8.0 if marker is None else 24.0
    height = top + HBAR_ROW * len(rows) + 40
    left = HBAR_LABEL_WIDTH
    plot_width = WIDTH - left - value_width
    plot_bottom = top + HBAR_ROW * len(rows)
    parts = []
    for i in range(5):
        x = left + plot_width * i / 4
        parts.append(
            format_html(
                '<line class="grid" x1="{}" x2="{}" y1="{}" y2="{}"></line>'
                '<text class="tick" x="{}" y="{}" text-anchor="middle">{}</text>',
                _f(x),
                _f(x),
                _f(top),
                _f(plot_bottom),
                _f(x),
                _f(plot_bottom + 14),
                fmt(max_value * i / 4),
            )
        )
    for i, row in enumerate(rows):
        y = top + HBAR_ROW * i
        width = plot_width * min(max(row.value, 0.0), max_value) / max_value
        parts.append(
            format_html(
                '<text class="row-label" x="{}" y="{}" text-anchor="end" dominant-baseline="middle">{}<title>{}</title>'
                "</text>"
                '<rect class="bar series-0{}" x="{}" y="{}" width="{}" height="{}" data-value="{}">'
                "<title>{}: {}</title></rect>"
                '<text class="value{}" x="{}" y="{}" dominant-baseline="middle">{}</text>',
                left - 8,
                _f(y + HBAR_ROW / 2),
                _short(row.label),
                row.label,
                " flagged" if row.flagged else "",
                left,
                _f(y + 4),
                _f(width),
                HBAR_ROW - 8,
                row.value,
                row.label,
                row.text,
                " flagged" if row.flagged else "",
                _f(left + width + 6),
                _f(y + HBAR_ROW / 2),
                row.text,
            )
        )
    if marker is not None:
        x = left + plot_width * min(max(marker, 0.0), max_value) / max_value
        parts.append(
            format_html(
                '<line class="marker" x1="{}" x2="{}" y1="{}" y2="{}" stroke-dasharray="4 3" data-value="{}">'
                "<title>{}</title></line>"
                '<text class="marker-label" x="{}" y="{}" text-anchor="middle">{}</text>',
                _f(x),
                _f(x),
                _f(top - 4),
                _f(plot_bottom),
                marker,
                marker_label or fmt(marker),
                _f(x),
                _f(top - 8),
                marker_label or fmt(marker),
            )
        )
    parts.append(_x_axis_label(x_label, x=left + plot_width / 2, y=height - 6))
    return _svg(chart_id=chart_id, title=title, summary=summary, height=height, body=_join(parts))


def range_chart(
    *,
    chart_id: str,
    title: str,
    summary: str,
    rows: Sequence[RangeRow],
    x_label: str,
    max_value: float = 1.0,
    fmt: Format = percent_format,
    empty_message: str = "No data in this period.",
) -> SafeString:
    """One horizontal range per row (``low`` to ``high``) with a mark at ``mark``, on a fixed 0 to
    ``max_value`` scale, the row's label before it and its text after it."""
    if not rows or max_value <= 0:
        return _empty_chart(chart_id=chart_id, title=title, summary=summary, message=empty_message, height=HEIGHT / 2)
    top = 8.0
    height = top + HBAR_ROW * len(rows) + 40
    left = RANGE_LABEL_WIDTH
    plot_width = WIDTH - left - RANGE_VALUE_WIDTH
    plot_bottom = top + HBAR_ROW * len(rows)

    def x(value: float) -> float:
        return left + plot_width * min(max(value, 0.0), max_value) / max_value

    parts = []
    for i in range(5):
        parts.append(
            format_html(
                '<line class="grid" x1="{}" x2="{}" y1="{}" y2="{}"></line>'
                '<text class="tick" x="{}" y="{}" text-anchor="middle">{}</text>',
                _f(x(max_value * i / 4)),
                _f(x(max_value * i / 4)),
                _f(top),
                _f(plot_bottom),
                _f(x(max_value * i / 4)),
                _f(plot_bottom + 14),
                fmt(max_value * i / 4),
            )
        )
    for i, row in enumerate(rows):
        middle = top + HBAR_ROW * i + HBAR_ROW / 2
        low, high = x(row.low), x(row.high)
        parts.append(
            format_html(
                '<text class="row-label" x="{}" y="{}" text-anchor="end" dominant-baseline="middle">{}<title>{}</title>'
                "</text>"
                '<rect class="range series-0" x="{}" y="{}" width="{}" height="{}" rx="3" data-low="{}" '
                'data-high="{}"><title>{}: {}</title></rect>'
                '<circle class="mark" cx="{}" cy="{}" r="5" data-value="{}"><title>{}: {}</title></circle>'
                '<text class="value" x="{}" y="{}" dominant-baseline="middle">{}</text>',
                left - 8,
                _f(middle),
                _short(row.label, RANGE_LABEL_MAX_CHARS),
                row.label,
                _f(low),
                _f(middle - 5),
                _f(max(high - low, 1.0)),  # a range too narrow to see still shows a sliver
                10,
                row.low,
                row.high,
                row.label,
                row.tooltip,
                _f(x(row.mark)),
                _f(middle),
                row.mark,
                row.label,
                row.text,
                _f(high + 8),
                _f(middle),
                row.text,
            )
        )
    parts.append(_x_axis_label(x_label, x=left + plot_width / 2, y=height - 6))
    return _svg(chart_id=chart_id, title=title, summary=summary, height=height, body=_join(parts))
