"""The activity view: how a batch, an endpoint or everything tracked went over time, as four small
SVG charts — finished per interval (completed, failed, expired), pending and queued, the
endpoint's instances and backlog, and the latency histogram with p50/p95/p99.

The counts are SQL aggregates of the journal (``journal.activity``); the endpoint's line is the
endpoint monitor's in-memory history of the status fetches it already makes (no request of its
own). The interval grows with the span (a second up to a week: per minute over an hour and a
half), so a chart never has more than ``MAX_BARS`` bars, whatever the journal holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..endpoints.status import EndpointSample
from ..journal import Journal
from ..journal.activity import Latency, Scope, Timeline, latency, span, timeline, window
from ..records import Status
from . import charts
from .text import STATUS_COLOURS, WARN_COLOUR, esc, note

MAX_BARS = 90
STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800)
PENDING_COLOUR = STATUS_COLOURS[Status.PENDING]
QUEUED_COLOUR = "var(--jp-ui-font-color2, #6e7781)"
INSTANCES_COLOUR = "var(--jp-brand-color1, #0969da)"
BACKLOG_COLOUR = WARN_COLOUR
LATENCY_COLOUR = "var(--jp-brand-color2, #54aeff)"


@dataclass(frozen=True)
class ActivityScope:
    """What the view is about: its title, the rows (a batch, an endpoint, everything) and the
    endpoint whose instances and backlog are drawn (None: no single endpoint)."""

    title: str
    rows: Scope
    endpoint: str | None


def step_for(seconds: float) -> int:
    """The smallest interval of STEPS that draws ``seconds`` in at most MAX_BARS bars."""
    return next((step for step in STEPS if seconds / step <= MAX_BARS), STEPS[-1])


def _unit(step: float) -> str:
    for size, one, many in ((86400, "day", "days"), (3600, "hour", "h"), (60, "minute", "min")):
        if step >= size:
            count = int(step // size)
            return one if count == 1 else f"{count} {many}"
    return "second" if step == 1 else f"{step:g} s"


def render(journal: Journal, scope: ActivityScope, now: float, samples: Sequence[EndpointSample] = ()) -> str:
    """The activity view of ``scope`` as HTML (a title and four SVG charts)."""
    title = f'<div style="font-weight:600;margin-bottom:2px">Activity · {esc(scope.title)}</div>'
    found = span(journal, scope.rows)
    if found is None:
        return f'<div class="sm-async-activity-charts">{title}{note("Nothing submitted here yet.")}</div>'
    step = step_for(max(found.last, now if found.unfinished else found.last) - found.first)
    start, intervals = window(found, step, now)
    series = timeline(journal, scope.rows, start, step, intervals)
    end = start + step * intervals
    parts = [finished_chart(series), waiting_chart(series, end),
             endpoint_chart(scope.endpoint, samples, start, end), latency_chart(latency(journal, scope.rows))]
    return f'<div class="sm-async-activity-charts">{title}{"".join(parts)}</div>'


def finished_chart(series: Timeline) -> str:
    colours = STATUS_COLOURS
    return charts.bars(f"Finished per {_unit(series.step)}", series.start, series.step, [
        charts.Series("completed", series.completed, colours[Status.COMPLETED]),
        charts.Series("failed", series.failed, colours[Status.FAILED]),
        charts.Series("expired", series.expired, colours[Status.EXPIRED])], "sm-async-chart sm-async-chart-finished")


def waiting_chart(series: Timeline, end: float) -> str:
    ends = [series.start + series.step * (i + 1) for i in range(series.intervals)]
    times = [series.start, *ends]
    return charts.lines("Pending and queued", series.start, end, [
        (charts.Series("pending", [0, *series.pending], PENDING_COLOUR), times),
        (charts.Series("queued", [0, *series.queued], QUEUED_COLOUR), times)], "sm-async-chart sm-async-chart-waiting")


def endpoint_chart(endpoint: str | None, samples: Sequence[EndpointSample], start: float, end: float) -> str:
    if endpoint is None:
        return note("Instances and backlog: select rows of one endpoint (or filter by one) to see them.")
    shown = [s for s in samples if start <= s.at <= end]
    if not shown:
        return note(f"Instances and backlog of {endpoint}: no status read yet (the endpoint strip reads it "
                    "at most once a minute while rows are unfinished).")
    times = [s.at for s in shown]
    return charts.lines(f"Endpoint {endpoint}: instances and backlog", start, end, [
        (charts.Series("instances", [s.current_instances for s in shown], INSTANCES_COLOUR), times),
        (charts.Series("backlog", [s.backlog for s in shown], BACKLOG_COLOUR), times)],
        "sm-async-chart sm-async-chart-endpoint")


def latency_chart(found: Latency) -> str:
    if not found.count or found.p50 is None or found.p95 is None or found.p99 is None:
        return note("Latency: nothing completed yet.")
    title = (f"Latency of {found.count:,} completed · p50 {found.p50:.3g} s · p95 {found.p95:.3g} s · "
             f"p99 {found.p99:.3g} s")
    return charts.histogram(title, found.histogram, found.low, found.high,
                            [("p50", found.p50), ("p95", found.p95), ("p99", found.p99)], LATENCY_COLOUR,
                            css_class="sm-async-chart sm-async-chart-latency")
