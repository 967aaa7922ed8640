"""Two clocks (issue 22, mechanism 2): the notebook's clock may be off S3's by hours (a laptop without NTP,
a VM after suspend), and no result may be lost for it. The client is given a clock that is off (injected:
the machine's clock is not touched); S3 (moto, in the stack's own process) keeps the real one.

What decides: an output at a name the client generated is the invocation's whatever the clocks say; at a
name the user chose (an inference id, a Filename) it is compared with the invoke on S3's clock, put there
with the offset the Date of S3's answers shows; every time the journal holds is on the notebook's clock, so
latency never mixes the two."""

from __future__ import annotations

import time

import pandas as pd
import pytest

from sm_async_nb.records import Status

ROW = "5.1,3.5,1.4,0.2\n"
HOURS = 3 * 3600


def echo(body: bytes, content_type: str):
    return body, "text/csv"


@pytest.fixture(scope="module")
def endpoints(stack):
    stack.add_endpoint("clock-echo", model=echo)
    stack.add_endpoint("clock-slow", model=echo, delay=1.5)
    return {"echo": "clock-echo", "slow": "clock-slow"}


@pytest.fixture(params=[HOURS, -HOURS], ids=["notebook-3h-ahead", "notebook-3h-behind"])
def skewed(request, stack, tmp_path):
    off = request.param
    with stack.client(journal_path=tmp_path / "journal.sqlite3", clock=lambda: time.time() + off) as client:
        yield client


def _sane_latency(seconds: float | None) -> None:
    assert seconds is not None and 0.0 <= seconds < 60.0, seconds


def test_outputs_of_generated_names_are_accepted_and_timed_on_one_clock(skewed, endpoints):
    started = skewed.ctx.clock()
    inv = skewed.submit(endpoints["echo"], ROW, accept="text/csv").wait(timeout=30)
    assert inv.status is Status.COMPLETED and inv.raw() == ROW.encode()
    _sane_latency(inv.latency)
    record = inv.record
    assert started - 1 <= record.submitted_at <= record.finished_at + 1 <= skewed.ctx.clock() + 2
    frame = skewed.tracker.to_frame()
    _sane_latency(frame.loc[frame.inference_id == inv.inference_id, "latency_s"].item())


def test_outputs_of_names_the_user_chose_are_accepted(skewed, endpoints):
    inline = skewed.submit(endpoints["echo"], ROW, inference_id="clock-given-id", inline=True)
    named = skewed.submit(endpoints["echo"], ROW, filename="clock-named.csv")
    batch = skewed.submit_many(endpoints["echo"], [ROW, ROW], inference_id="clock-prefix")
    assert inline.wait(timeout=30).status is Status.COMPLETED
    assert named.wait(timeout=30).status is Status.COMPLETED
    assert batch.wait(timeout=30).status_counts() == {"COMPLETED": 2}
    parts = batch.to_frame()
    assert parts.latency_s.between(0, 60).all()
    for inv in (inline, named):
        _sane_latency(inv.latency)


def test_a_reused_filename_waits_for_its_own_output_on_a_skewed_clock(skewed, endpoints):
    first = skewed.submit(endpoints["echo"], "old,data\n", filename="clock-shared.csv").wait(timeout=30)
    assert first.raw() == b"old,data\n"
    first.forget()
    time.sleep(6.1)  # the old object is older than the margin of the identity check
    second = skewed.submit(endpoints["slow"], "new,data\n", filename="clock-shared.csv")
    assert second.refresh() is Status.PENDING  # the earlier request's object is not this invocation's
    assert second.wait(timeout=30).raw() == b"new,data\n"
    _sane_latency(second.latency)


def test_the_panel_shows_latencies_on_one_clock(skewed, endpoints):
    from sm_async_nb.notebook.panel.details import fields_html
    from sm_async_nb.notebook.panel.rows import RowView

    inv = skewed.submit(endpoints["echo"], ROW).wait(timeout=30)
    now = skewed.ctx.clock()
    timing = RowView.of(inv.record, now).timing
    assert timing.endswith(" s") and int(timing.split()[0]) < 60, timing  # not "3h 00m", not clipped from negative
    details = fields_html(inv.record, now)
    assert f"<td>{timing}</td>" in details


def test_expiry_follows_the_notebook_clock(skewed, endpoints, stage_row):
    inv = skewed.submit(endpoints["slow"], ROW, request_ttl_seconds=60, invocation_timeout_seconds=30)
    assert inv.expires_at is not None
    left = (inv.expires_at - pd.Timestamp(skewed.ctx.clock(), unit="s", tz="UTC")).total_seconds()
    assert 0 < left <= 90 + 5, left  # on the notebook's clock, where it is compared with the notebook's now
    assert inv.wait(timeout=30).status is Status.COMPLETED
