"""Activity over time: the journal's SQL aggregates against counts worked out by hand, latency
percentiles against numpy, ``batch.timeline()`` as a DataFrame (and a QUEUED status counted once it
exists), the endpoint monitor's history, and the panel's activity view drawn from a worker."""

from __future__ import annotations

import re
import threading
from collections import namedtuple

import numpy as np
import pandas as pd
import pytest
from panelkit import NOW, START, complete, pending

from sm_async_nb.display import charts
from sm_async_nb.endpoints.monitor import EndpointMonitor
from sm_async_nb.endpoints.status import EndpointSample, EndpointStatus
from sm_async_nb.errors import ValidationError
from sm_async_nb.journal import activity
from sm_async_nb.records import BatchRecord, InvocationRecord, Status, SubmitStep, new_inference_id

T = 3600 * 472_222  # a whole hour (epoch seconds)


def row(client, batch, index, submitted, *, invoked=None, finished=None, status=Status.PENDING):
    return InvocationRecord(new_inference_id(T + submitted), "ep", status=status, submit_step=SubmitStep.DONE,
                            origin=client.origin, batch_id=batch.batch_id, batch_index=index,
                            submitted_at=T + submitted, invoked_at=None if invoked is None else T + invoked,
                            finished_at=None if finished is None else T + finished)


@pytest.fixture
def story(client):
    """Five parts whose life is known to the second (see the expected counts below)."""
    batch = BatchRecord("batch-story", "ep", 5, label="story", created_at=T)
    client.journal.add([
        row(client, batch, 0, 5, invoked=6, finished=70, status=Status.COMPLETED),
        row(client, batch, 1, 10, invoked=11, finished=130, status=Status.FAILED),
        row(client, batch, 2, 65, invoked=66),                                     # still pending
        row(client, batch, 3, 70, finished=71, status=Status.ERROR),               # never invoked
        row(client, batch, 4, 125, invoked=126, finished=200, status=Status.EXPIRED),
    ], batch=batch)
    return batch


def test_the_timeline_counts_each_interval_as_defined(client, story):
    scope = activity.Scope(client.origin, batch_id=story.batch_id)
    span = activity.span(client.journal, scope)
    assert (span.first, span.last, span.unfinished) == (T + 5, T + 200, 1)
    start, intervals = activity.window(span, 60, T + 250)
    assert (start, intervals) == (T, 5)  # to now: a part is unfinished
    series = activity.timeline(client.journal, scope, start, 60, intervals)
    assert series.submitted == [2, 2, 1, 0, 0]
    assert (series.completed, series.failed, series.expired) == ([0, 1, 0, 0, 0], [0, 0, 1, 0, 0], [0, 0, 0, 1, 0])
    assert series.pending == [2, 2, 2, 1, 1]
    assert series.queued == [0] * 5  # no QUEUED status yet


def test_batch_timeline_is_a_dataframe_by_interval(client, story, monkeypatch):
    monkeypatch.setattr("time.time", lambda: T + 250)
    frame = client.batch(story.batch_id).timeline()
    assert list(frame.columns) == ["submitted", "completed", "failed", "expired", "pending", "queued"]
    assert frame.index[0] == pd.Timestamp(T, unit="s", tz="UTC") and frame.index.name == "interval"
    assert frame["submitted"].sum() == 5 and frame["pending"].tolist() == [2, 2, 2, 1, 1]
    coarse = client.batch(story.batch_id).timeline(freq="5min")
    assert len(coarse) == 1 and coarse.iloc[0].tolist() == [5, 1, 1, 1, 1, 0]
    for bad in ("monthly", "1M", 3, "0s", "500ms", None):
        with pytest.raises(ValidationError, match="freq"):
            client.batch(story.batch_id).timeline(freq=bad)
    with pytest.raises(ValidationError, match="choose a coarser freq"):
        monkeypatch.setattr("time.time", lambda: T + 86400 * 3)
        client.batch(story.batch_id).timeline(freq="1s")


def test_a_queued_status_is_counted_once_it_exists(client, story, stage_row, monkeypatch):
    queued = row(client, story, 5, 20)
    client.journal.add([queued])
    stage_row(client.journal, queued.inference_id, status="QUEUED", invoked_at=None)
    queued_status = namedtuple("QueuedStatus", "value")("QUEUED")  # what Status.QUEUED will be, by value
    monkeypatch.setattr(activity, "QUEUED_STATUSES", frozenset({queued_status}))
    series = activity.timeline(client.journal, activity.Scope(client.origin, batch_id=story.batch_id), T, 60, 5)
    assert series.queued == [1, 1, 1, 1, 1] and series.pending == [2, 2, 2, 1, 1]


def test_latency_percentiles_and_histogram_match_numpy(client):
    latencies = np.arange(1, 101, dtype=float)
    client.journal.add([InvocationRecord(new_inference_id(T + i), "ep", status=Status.COMPLETED,
                                         submit_step=SubmitStep.DONE, origin=client.origin, submitted_at=T + i,
                                         invoked_at=T + i, finished_at=T + i + value)
                        for i, value in enumerate(latencies)])
    found = activity.latency(client.journal, activity.Scope(client.origin))
    expected = [np.percentile(latencies, p, method="inverted_cdf") for p in (50, 95, 99)]
    assert (found.count, found.p50, found.p95, found.p99) == (100, *expected)
    assert sum(found.histogram) == 100 and len(found.histogram) == activity.HISTOGRAM_BINS
    assert found.low == 1 and found.high == 99 and found.slowest == 100
    assert activity.latency(client.journal, activity.Scope("another-origin")).count == 0


def test_the_monitor_keeps_a_history_of_the_fetches_it_makes_and_no_more(client, monkeypatch):
    now = [1000.0]
    monitor = EndpointMonitor(client.ctx, clock=lambda: now[0])
    fetched = []

    def fetch(name):
        fetched.append(name)
        return EndpointStatus(name, current_instances=len(fetched) - 1, backlog=7.0, fetched_at=now[0])

    monkeypatch.setattr(monitor, "_fetch", fetch)
    monitor.status("ep")
    monitor.status("ep")  # cached: no fetch, no sample
    now[0] += 61
    monitor.status("ep")
    assert fetched == ["ep", "ep"]
    assert monitor.history("ep") == [EndpointSample(1000.0, 0, None, 7.0, None), EndpointSample(1061.0, 1, None, 7.0,
                                                                                                  None)]
    assert monitor.history("other") == []


def test_charts_are_svg_with_escaped_labels_and_theme_colours():
    svg = charts.bars("<script>x</script>", T, 60, [charts.Series("<b>", [1, 2, 0], "var(--jp-brand-color1, blue)")])
    assert svg.startswith('<svg class="sm-async-chart" viewBox="0 0 ') and "&lt;script&gt;x" in svg
    assert "<script" not in svg and "<b>" not in svg and "fill:currentColor" in svg
    assert len(re.findall(r"<rect ", svg)) == 1 + 2  # the legend's square and two bars


def test_the_panel_draws_the_activity_of_the_selected_batch_on_a_worker(client, make_panel, s3):
    batch = BatchRecord("batch-act", "ep", 6, label="<i>act</i>", created_at=START)
    rows = pending(client, 6, batch=batch)
    complete(s3, rows[:4])
    client.tracker.refresh()
    samples = [EndpointSample(START + 10 * i, i % 2, 1, 5.0 - i, 2) for i in range(5)]
    asked, threads = [], []

    def history(name):
        asked.append(name)
        threads.append(threading.current_thread() is threading.main_thread())
        return samples

    panel = make_panel(endpoint_history=history)
    w = panel.view.w
    assert w.activity.layout.display == "none" and not w.activity_toggle.value
    panel.select([rows[0].inference_id])
    panel.show_activity()
    assert panel.wait_idle()
    html = w.activity.value
    assert w.activity.layout.display == "" and w.activity_toggle.value
    assert "Activity · batch &lt;i&gt;act&lt;/i&gt;" in html and "<i>" not in html and "<script" not in html
    for chart in ("finished", "waiting", "endpoint", "latency"):
        assert f"sm-async-chart-{chart}" in html, chart
    assert "Latency of 4 completed" in html and asked == ["ep"] and threads == [False]
    w.activity_toggle.value = False
    assert panel.wait_idle() and w.activity.layout.display == "none"


def test_the_activity_follows_the_scope_and_is_read_again_only_when_due(client, make_panel, s3):
    pending(client, 2, endpoint="alpha")
    pending(client, 1, endpoint="beta", start=START + 5)
    now = [NOW]
    panel = make_panel(clock=lambda: now[0])
    panel.show_activity()
    assert panel.wait_idle() and "Activity · everything tracked" in panel.view.w.activity.value
    assert "select rows of one endpoint" in panel.view.w.activity.value  # two endpoints: no endpoint line
    panel.view.w.endpoint_filter.value = "beta"
    assert panel.wait_idle() and "Activity · endpoint beta" in panel.view.w.activity.value
    reads = []
    original = panel.workers._charts
    panel.workers._charts = lambda *args: reads.append(args[1].title) or original(*args)
    for _ in range(3):  # nothing moved, seconds pass: no new read
        now[0] += 1
        panel.refresh()
    assert panel.wait_idle() and reads == []
    now[0] += 31  # rows are unfinished: time itself moves the charts
    panel.refresh()
    assert panel.wait_idle() and reads == ["endpoint beta"]
