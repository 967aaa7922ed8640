"""Notices in the panel's header and in the handles' live status lines: a batch whose last part
finished (whichever way it finished), an endpoint at 0 instances with work waiting, requests about
to expire; escaped, and dismissed with one click."""

from __future__ import annotations

from panelkit import NOW, START, complete, drawn, pending

from sm_async_nb.endpoints.status import EndpointStatus
from sm_async_nb.notebook import live
from sm_async_nb.records import BatchRecord, InvocationRecord, Status, SubmitStep, new_inference_id


def test_the_header_says_when_a_batch_finished_and_dismiss_clears_it(client, make_panel, s3):
    batch = BatchRecord("batch-trio", "ep", 3, label="<b>trio</b>", created_at=START)
    rows = pending(client, 3, batch=batch)
    panel = make_panel()
    w = panel.view.w
    complete(s3, rows[:2])
    client.tracker.refresh()
    assert "finished" not in drawn(panel).w.notices.value and w.dismiss.layout.display == "none"
    complete(s3, rows[2:])
    client.tracker.refresh()
    notices = drawn(panel).w.notices.value
    assert "✓ Batch &lt;b&gt;trio&lt;/b&gt; finished at" in notices and ": 3 completed." in notices
    assert "<b>trio" not in notices and w.dismiss.layout.display == ""
    w.dismiss.click()
    assert "finished" not in drawn(panel).w.notices.value and w.dismiss.layout.display == "none"


def test_a_batch_finishing_without_the_tracker_is_noticed_too(client, make_panel):
    batch = BatchRecord("batch-sent", "ep", 2, label="sent", created_at=START)
    rows = [InvocationRecord(new_inference_id(START + i), "ep", status=Status.SUBMITTING, origin=client.origin,
                             submit_step=SubmitStep.JOURNALED, batch_id=batch.batch_id, batch_index=i,
                             submitted_at=START + i) for i in range(2)]
    client.journal.add(rows, batch=batch)
    panel = make_panel()
    for r in rows:  # the submission gave up on both (as an interrupted run does)
        assert client.journal.mark_not_sent(r.inference_id, "Not sent: interrupted", input_written=False)
    panel.refresh()
    assert "Batch sent finished at" in panel.view.w.notices.value and "2 error" in panel.view.w.notices.value
    assert "resubmit() sends the unsuccessful ones again" in panel.view.w.notices.value


def test_the_header_warns_of_an_endpoint_at_zero_with_work_waiting(client, make_panel):
    pending(client, 3, endpoint="cold")

    def endpoint_status(name):
        return EndpointStatus(name=name, status="InService", current_instances=0, desired_instances=0,
                              scales_from_zero=False, pending=3)

    panel = make_panel(endpoint_status=endpoint_status)
    assert panel.wait_idle()
    assert ("⚠ Endpoint cold has 0 instances and 3 pending invocation(s) of yours; nothing scales it out: "
            "requests wait until they expire.") in panel.view.w.notices.value


def test_the_header_warns_of_requests_about_to_expire(client, make_panel, stage_row):
    rows = pending(client, 3)
    stage_row(client.journal, rows[0].inference_id, deadline=NOW + 120)
    stage_row(client.journal, rows[1].inference_id, deadline=NOW + 250)
    stage_row(client.journal, rows[2].inference_id, deadline=NOW + 3600)
    panel = make_panel()
    assert "⚠ 2 pending invocation(s) expire within 5m 00s (the first in 2m 00s) unless they finish." \
        in drawn(panel).w.notices.value


def test_the_status_line_of_a_batch_says_it_finished(client, s3):
    batch = BatchRecord("batch-line", "ep", 2, label="duo", created_at=START)
    rows = pending(client, 2, batch=batch)
    line = live.StatusLine(client.batch("batch-line"), clock=lambda: NOW)
    assert "finished at" not in line.text.value
    complete(s3, rows)
    client.tracker.refresh()
    assert line.done and "✓ Batch duo finished at" in line.text.value and ": 2 completed." in line.text.value


def test_the_status_line_warns_from_the_cached_endpoint_status_without_a_request(client, stage_row, monkeypatch):
    [row] = pending(client, 1)
    stage_row(client.journal, row.inference_id, deadline=NOW + 90)
    cold = EndpointStatus(name="ep", status="InService", current_instances=0, desired_instances=1, pending=1)
    monkeypatch.setattr(client.monitor, "cached", lambda name: cold if name == "ep" else None)
    monkeypatch.setattr(client.monitor, "status", lambda *a, **k: (_ for _ in ()).throw(AssertionError("fetched")))
    line = live.StatusLine(client.invocation(row.inference_id), clock=lambda: NOW)
    text = line.text.value
    assert "Endpoint ep has 0 instances and 1 pending invocation(s) of yours; it is scaling out" in text
    assert "1 pending invocation(s) expire within 5m 00s (the first in 1m 30s)" in text
    line.stop()
