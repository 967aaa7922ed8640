"""Small SVG charts, built as text: bars (stacked), lines over time, and a histogram with
percentile marks. No JavaScript and no plotting library: an ``<svg>`` with a ``viewBox`` that
scales to its box, text in ``currentColor`` (the output's own text colour, so it reads in light
and dark themes, in VS Code and in a saved notebook) and series coloured with JupyterLab theme
variables (with light-theme fallbacks). Every label is escaped.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

from .text import esc

WIDTH, HEIGHT = 440, 130
LEFT, RIGHT, TOP, BOTTOM = 38, 8, 20, 18
FONT = "font-family:var(--jp-ui-font-family, sans-serif);font-size:10px"
GRID = "stroke:currentColor;stroke-opacity:0.15;stroke-width:1"
AXIS = "stroke:currentColor;stroke-opacity:0.5;stroke-width:1"


@dataclass(frozen=True)
class Series:
    """One series: its name (the legend's), values per x position (None: no value) and colour."""

    name: str
    values: Sequence[float | None]
    colour: str


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 5 × 10^k at or above ``value`` (at least 1)."""
    if value <= 1:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for factor in (1, 2, 5, 10):
        if factor * power >= value:
            return float(factor * power)
    return float(10 * power)  # unreachable


def _number(value: float) -> str:
    if value >= 10_000:
        return f"{value / 1000:.0f}k"
    return f"{value:g}" if value == int(value) else f"{value:.1f}"


def clock(epoch: float, span: float) -> str:
    """A time label: HH:MM:SS over a few minutes, HH:MM within a day, else the date and hour."""
    when = time.localtime(epoch)
    return time.strftime("%H:%M:%S" if span < 600 else "%H:%M" if span < 86400 else "%m-%d %H:%M", when)


class _Frame:
    """The plot area of one chart: title and legend on top, y scale on the left, x labels below."""

    def __init__(self, title: str, series: Sequence[Series], top_value: float, css_class: str):
        self.y_max = nice_ceiling(top_value)
        self.left, self.right, self.top, self.bottom = LEFT, WIDTH - RIGHT, TOP, HEIGHT - BOTTOM
        legend, x = [], WIDTH - RIGHT
        for s in reversed(series):
            label = esc(s.name)
            x -= 20 + 6 * len(s.name)
            legend.append(f'<rect x="{x}" y="5" width="8" height="8" style="fill:{s.colour}"/>'
                          f'<text x="{x + 11}" y="12" style="{FONT};fill:currentColor">{label}</text>')
        self.parts = [f'<svg class="{css_class}" viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" '
                      f'style="max-width:{WIDTH + 80}px;height:auto;color:inherit;display:block" role="img" '
                      f'aria-label="{esc(title)}">',
                      f'<text x="2" y="12" style="{FONT};font-weight:600;fill:currentColor">{esc(title)}</text>',
                      *legend]
        for fraction in (0.0, 0.5, 1.0):
            y = self.y(self.y_max * fraction)
            self.parts.append(f'<line x1="{self.left}" x2="{self.right}" y1="{y:.1f}" y2="{y:.1f}" '
                              f'style="{AXIS if fraction == 0 else GRID}"/>')
            self.parts.append(f'<text x="{self.left - 4}" y="{y + 3:.1f}" text-anchor="end" '
                              f'style="{FONT};fill:currentColor">{_number(self.y_max * fraction)}</text>')

    @property
    def plot_width(self) -> float:
        return self.right - self.left

    def y(self, value: float) -> float:
        return self.bottom - (self.bottom - self.top) * min(value, self.y_max) / self.y_max

    def x_labels(self, labels: Sequence[tuple[float, str]]) -> None:
        """Labels at fractions of the plot width."""
        for fraction, text in labels:
            anchor = "start" if fraction <= 0 else "end" if fraction >= 1 else "middle"
            x = self.left + self.plot_width * fraction
            self.parts.append(f'<text x="{x:.1f}" y="{HEIGHT - 4}" text-anchor="{anchor}" '
                              f'style="{FONT};fill:currentColor">{esc(text)}</text>')

    def close(self) -> str:
        return "".join(self.parts) + "</svg>"


def _time_labels(start: float, step: float, count: int) -> list[tuple[float, str]]:
    span = step * count
    return [(0.0, clock(start, span)), (0.5, clock(start + span / 2, span)), (1.0, clock(start + span, span))]


def bars(title: str, start: float, step: float, stacked: Sequence[Series], css_class: str = "sm-async-chart") -> str:
    """Stacked bars, one per interval of ``step`` seconds from ``start``."""
    count = max((len(s.values) for s in stacked), default=0)
    totals = [sum(s.values[i] or 0 for s in stacked if i < len(s.values)) for i in range(count)]
    frame = _Frame(title, stacked, max(totals, default=0), css_class)
    width = frame.plot_width / max(count, 1)
    for i in range(count):
        base = 0.0
        for s in stacked:
            value = s.values[i] if i < len(s.values) else None
            if not value:
                continue
            top, bottom = frame.y(base + value), frame.y(base)
            frame.parts.append(f'<rect x="{frame.left + i * width + width * 0.1:.1f}" y="{top:.1f}" '
                               f'width="{max(width * 0.8, 0.5):.1f}" height="{max(bottom - top, 0.5):.1f}" '
                               f'style="fill:{s.colour}"/>')
            base += value
    frame.x_labels(_time_labels(start, step, count))
    return frame.close()


def lines(title: str, start: float, end: float, series: Sequence[tuple[Series, Sequence[float]]],
          css_class: str = "sm-async-chart") -> str:
    """Step lines over time: each series' values at its own times (epoch seconds) in [start, end]."""
    top = max((v or 0 for s, _ in series for v in s.values), default=0)
    frame = _Frame(title, [s for s, _ in series], top, css_class)
    span = max(end - start, 1e-9)
    for s, times in series:
        points: list[str] = []
        previous: float | None = None
        for value, at in zip(s.values, times, strict=True):
            if value is None:
                continue
            x = frame.left + frame.plot_width * (at - start) / span
            y = frame.y(value)
            if previous is not None:  # a step: hold the last value until this time
                points.append(f"{x:.1f},{previous:.1f}")
            points.append(f"{x:.1f},{y:.1f}")
            previous = y
        if points:
            frame.parts.append(f'<polyline points="{" ".join(points)}" '
                               f'style="fill:none;stroke:{s.colour};stroke-width:1.5"/>')
    frame.x_labels([(0.0, clock(start, span)), (0.5, clock(start + span / 2, span)), (1.0, clock(end, span))])
    return frame.close()


def histogram(title: str, counts: Sequence[int], low: float, high: float, marks: Sequence[tuple[str, float]],
              colour: str, unit: str = "s", css_class: str = "sm-async-chart") -> str:
    """Bars of ``counts`` over [low, high] (the last bin also holds what lies above), with a dashed
    vertical line and a label for each mark (p50, p95, p99)."""
    frame = _Frame(title, [], max(counts, default=0), css_class)
    width = frame.plot_width / max(len(counts), 1)
    for i, n in enumerate(counts):
        if n:
            top = frame.y(n)
            frame.parts.append(f'<rect x="{frame.left + i * width + 0.5:.1f}" y="{top:.1f}" '
                               f'width="{max(width - 1, 0.5):.1f}" height="{max(frame.bottom - top, 0.5):.1f}" '
                               f'style="fill:{colour}"/>')
    span = max(high - low, 1e-9)
    for k, (name, value) in enumerate(marks):
        x = frame.left + frame.plot_width * min(max((value - low) / span, 0.0), 1.0)
        frame.parts.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{frame.top}" y2="{frame.bottom}" '
                           f'style="stroke:currentColor;stroke-dasharray:3 2;stroke-width:1"/>')
        right = x > frame.left + frame.plot_width * 0.8  # near the right edge: the label goes left of the line
        frame.parts.append(f'<text x="{x - 2 if right else x + 2:.1f}" y="{frame.top + 9 + 10 * k}" '
                           f'text-anchor="{"end" if right else "start"}" '
                           f'style="{FONT};fill:currentColor">{esc(name)}</text>')
    frame.x_labels([(0.0, f"{low:.3g} {unit}"), (1.0, f"≥ {high:.3g} {unit}" if counts else "")])
    return frame.close()
