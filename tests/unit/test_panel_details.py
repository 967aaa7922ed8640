"""The panel as an exploration surface, without a kernel: sorting by any column, the details of
one row (fields, a background preview of the output, log lines) and the endpoint strip, with the
injected callables replaced by fakes that record where and how often they are called."""

from __future__ import annotations

import html
import threading

import pytest
from panelkit import NOW, START, complete, drawn, fail, pending, shown, slot_of, statuses

from sm_async_nb.display.previews import HEAD_BYTES, TEXT_BYTES, build
from sm_async_nb.endpoints.status import EndpointStatus
from sm_async_nb.notebook.panel.intents import OpenDetails
from sm_async_nb.records import Finish, Status


def preview_html(body, content_type, total):
    return build(body, content_type, total).html


HOSTILE = b"name,value\n</table><script>alert(1)</script>,<img src=x onerror=alert(2)>\n"


def open_details(panel, inference_id):
    slot_of(panel, inference_id).ident.click()
    assert panel.wait_idle()


# --- sorting ---------------------------------------------------------------------------------

def test_a_header_click_sorts_and_a_second_click_reverses(client, make_panel):
    for i, label in enumerate(["bravo", "alpha", "delta", "charlie"]):
        pending(client, 1, label=label, start=START + i)
    panel = make_panel()
    heads = panel.view.table.heads
    assert [r[0] for r in shown(panel)] == ["charlie0", "delta0", "alpha0", "bravo0"]  # newest first
    heads["label"].click()
    assert [r[0] for r in shown(panel)] == ["alpha0", "bravo0", "charlie0", "delta0"]
    assert heads["label"].description == "Label ▲"
    assert heads["submitted"].description == "Submitted"
    heads["label"].click()
    assert [r[0] for r in shown(panel)] == ["delta0", "charlie0", "bravo0", "alpha0"]
    assert heads["label"].description == "Label ▼"


def test_sort_is_stable_across_pages_refreshes_and_filters(client, make_panel, s3):
    rows = pending(client, 45, label="same")  # labels same0..same44: a string sort
    panel = make_panel()
    heads, w = panel.view.table.heads, panel.view.w
    heads["status"].click()  # every row ties: the tie-break (newest first) decides
    first = [r[0] for r in shown(panel)]
    w.next.click()
    second = [r[0] for r in shown(panel)]
    w.next.click()
    third = [r[0] for r in shown(panel)]
    assert len(set(first + second + third)) == 45
    w.prev.click()
    panel.refresh()
    assert [r[0] for r in shown(panel)] == second  # same page after a refresh
    complete(s3, rows[:5])
    client.tracker.refresh()
    assert drawn(panel).w.page_text.value.startswith("Page 2 of 3")
    w.prev.click()
    assert statuses(panel)[:5] == ["COMPLETED"] * 5  # ascending: COMPLETED before PENDING
    w.status_filter.value = "PENDING"
    assert statuses(panel) == ["PENDING"] * 20 and heads["status"].description == "Status ▲"
    heads["output"].click()
    assert drawn(panel).w.page_text.value == "Page 1 of 2 · 40 shown of 45"


def test_sort_by_output_size_and_expiry(client, make_panel, stage_row):
    small, big = pending(client, 1, label="small"), pending(client, 1, label="big", start=START + 1)
    late = pending(client, 1, label="late", start=START + 2, request={"request_ttl_seconds": 60})
    client.journal.finish([Finish(small[0].inference_id, Status.COMPLETED, START + 5, output_size=10),
                           Finish(big[0].inference_id, Status.COMPLETED, START + 6, output_size=99_000)])
    stage_row(client.journal, late[0].inference_id, deadline=START + 2 + 960)
    panel = make_panel()
    panel.view.table.heads["output"].click()  # sizes start largest first; no size goes last
    assert [r[0] for r in shown(panel)] == ["big0", "small0", "late0"]
    panel.view.table.heads["expires"].click()
    assert shown(panel)[0][0] == "late0"
    assert slot_of(panel, late[0].inference_id).expires.value == "14m 22s"  # deadline - NOW
    assert slot_of(panel, big[0].inference_id).expires.value == ""


# --- details ---------------------------------------------------------------------------------

def test_details_show_every_field_and_timing(client, make_panel, s3):
    [row] = pending(client, 1, label="doc <1>", request={"custom_attributes": "trace=<x>", "content_type": "text/csv"})
    panel = make_panel()
    open_details(panel, row.inference_id)
    details = panel.view.details
    fields = details.fields.value
    assert panel.view.w.details.children[0] is details.box
    for text in (row.input_location, row.output_location, row.failure_location, row.inference_id):
        assert html.escape(text) in fields
    assert "doc &lt;1&gt;" in fields and "trace=&lt;x&gt;" in fields and "<x>" not in fields
    assert "Submitted" in fields and "Invoked" in fields and "Expires in" in fields and "Finished" not in fields
    assert "No output: the invocation is pending" in details.preview.value
    assert panel.view.w.message.value == "Details of doc <1>0 below."  # a Label: text, not HTML
    fail(s3, [row], "ModelError: <bad> input")
    client.tracker.refresh()  # the open details follow the row
    fields = drawn(panel).details.fields.value
    assert "Finished" in fields and "Latency" in fields and "Expires in" not in fields
    assert "ModelError: &lt;bad&gt; input" in fields
    panel.view.w.hide.click()
    assert drawn(panel).w.details.children == () and panel.state.details is None
    panel.show_details("no-such-id")  # the public path: returns once drawn
    assert panel.view.w.message.value == "no-such-id is no longer tracked." and panel.state.details is None


def test_preview_loads_in_the_background_once_and_is_cached(client, make_panel, s3):
    rows = pending(client, 2)
    complete(s3, rows, body=b"0.25,a\n0.75,b\n")
    client.tracker.refresh()
    calls = []
    release = threading.Event()

    def fetch_head(record, limit):
        calls.append((record.inference_id, limit, threading.current_thread() is threading.main_thread()))
        release.wait(10)
        return b"0.25,a\n0.75,b\n", "text/csv", 14

    panel = make_panel(fetch_head=fetch_head)
    slot_of(panel, rows[0].inference_id).ident.click()
    assert panel.loop.flush()  # the click returned at once; the loop drew while the fetch waits
    assert "Loading the preview" in panel.view.details.preview.value
    release.set()
    assert panel.wait_idle()
    assert calls == [(rows[0].inference_id, HEAD_BYTES, False)]  # never on the main thread
    assert "<td>0.25</td><td>a</td>" in panel.view.details.preview.value
    open_details(panel, rows[1].inference_id)
    open_details(panel, rows[0].inference_id)  # cached: no second fetch
    assert [c[0] for c in calls] == [rows[0].inference_id, rows[1].inference_id]
    assert "<td>0.25</td>" in panel.view.details.preview.value


def test_a_late_preview_answer_for_another_row_is_dropped(client, make_panel, s3):
    rows = pending(client, 2)
    complete(s3, rows)
    client.tracker.refresh()
    gate = threading.Event()

    def fetch_head(record, limit):
        if record.inference_id == rows[0].inference_id:
            gate.wait(10)
        return record.inference_id.encode(), "text/plain", 36

    panel = make_panel(fetch_head=fetch_head)
    slot_of(panel, rows[0].inference_id).ident.click()
    assert panel.loop.flush()
    slot_of(panel, rows[1].inference_id).ident.click()
    gate.set()
    assert panel.wait_idle()
    assert rows[1].inference_id in panel.view.details.preview.value
    assert rows[0].inference_id not in panel.view.details.preview.value
    assert panel.state.previews.get((rows[0].inference_id, rows[0].output_location, None)) is None  # not finished


def test_hostile_output_preview_stays_text_and_opening_details_sends_bounded_bytes(
        client, make_panel, s3, wire):
    rows = pending(client, 2)
    complete(s3, rows[:1], body=HOSTILE * 20_000, content_type="text/csv")  # ~1.5 MB
    complete(s3, rows[1:], body=b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 400, content_type="image/png")
    client.tracker.refresh()
    panel = make_panel()  # the real fetch: results.head, one ranged GET
    mark = wire.mark()
    open_details(panel, rows[0].inference_id)
    preview = panel.view.details.preview.value
    assert "<script" not in preview and "<img" not in preview and "</table><script>" not in preview
    assert "&lt;/table&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in preview
    assert "first 10 rows of the output&#x27;s start" in preview
    sent = wire.bytes_since(mark)
    assert sent < 20_000, sent  # fields and 10 rows, not 1.5 MB
    values = wire.html_values(mark)
    assert not any(tag in v for v in values for tag in ("<script", "<img"))
    mark = wire.mark()
    open_details(panel, rows[1].inference_id)  # magic bytes of a PNG, 100 KB: within the media limit
    details = panel.view.details
    assert "PNG image · 100.0 KB" in details.preview.value and details.image in details.box.children
    assert details.image.value[:8] == b"\x89PNG\r\n\x1a\n" and details.image.format == "png"
    assert wire.buffer_bytes_since(mark) == 102_408  # the bytes once, as a binary buffer


def test_results_head_reads_only_the_start(client, s3):
    from sm_async_nb.results.loading import head

    [row] = pending(client, 1)
    complete(s3, [row], body=b"x" * 1_000_000, content_type="text/plain")
    client.tracker.refresh()
    body, content_type, total = head(client.ctx, client.journal.get(row.inference_id), 4096)
    assert len(body) == 4096 and total == 1_000_000 and content_type == "text/plain"


@pytest.mark.parametrize(("body", "content_type", "total", "expected"), [
    (b'{"predictions": [1, 2]}', "application/json", None, "<td>1</td>"),
    (b'{"a": 1', "application/json", 100_000, "{&quot;a&quot;: 1</pre>"),  # cut JSON: as text
    (b'{"a": "<b>"}\n{"a": 2}\n{"a"', "application/jsonlines", 1000, "<td>&lt;b&gt;</td>"),
    (b"hello <b>world</b>", "text/plain", 18, "hello &lt;b&gt;world&lt;/b&gt;</pre>"),
    (b"\x00\x01\x02", None, 3, "binary, 3 bytes"),
    (b"PAR1....", "application/x-parquet", 10_000_000, "binary, 10,000,000 bytes"),
    (b"", "text/csv", 0, "empty output"),
])
def test_preview_formats(body, content_type, total, expected):
    assert expected in preview_html(body, content_type, total)


def test_text_preview_is_the_first_2_kb():
    out = preview_html("é".encode() * 5000, "text/plain", 10_000)
    assert "é" * (TEXT_BYTES // 2) in out and "é" * (TEXT_BYTES // 2 + 1) not in out
    assert "first 2,048 bytes of 9.8 KB" in out


# --- log lines -------------------------------------------------------------------------------

def test_a_failed_rows_details_show_its_log_lines(client, make_panel, s3):
    rows = pending(client, 1)
    fail(s3, rows, "ModelError: boom")
    client.tracker.refresh()
    asked = []

    def row_logs(record):
        asked.append((record.inference_id, threading.current_thread() is threading.main_thread()))
        return [f"2026-01-01 {record.inference_id} Traceback <module>", "ValueError: </pre><script>x"]

    panel = make_panel(row_logs=row_logs)
    open_details(panel, rows[0].inference_id)
    details = panel.view.details
    logs = details.logs.value
    assert asked == [(rows[0].inference_id, False)]
    assert "Traceback &lt;module&gt;" in logs and "&lt;/pre&gt;&lt;script&gt;x" in logs and "<script" not in logs
    assert details.logs in details.box.children


def test_without_row_logs_or_for_completed_rows_the_log_section_is_hidden(client, make_panel, s3):
    rows = pending(client, 2)
    complete(s3, rows[1:])
    client.tracker.refresh()
    panel = make_panel()
    open_details(panel, rows[0].inference_id)
    assert panel.view.details.logs not in panel.view.details.box.children
    asked = []
    with_logs = make_panel(row_logs=lambda record: asked.append(record.inference_id) or ["line"])
    details = with_logs.view.details
    open_details(with_logs, rows[1].inference_id)  # completed: its output, not its logs
    assert details.logs not in details.box.children and asked == []
    open_details(with_logs, rows[0].inference_id)  # pending: what the model is saying
    assert details.logs in details.box.children and asked == [rows[0].inference_id]


# --- endpoint strip --------------------------------------------------------------------------

def test_endpoint_strip_for_endpoints_with_unfinished_rows_at_its_own_pace(client, make_panel, s3):
    alpha = pending(client, 2, endpoint="alpha")
    pending(client, 1, endpoint="beta", start=START + 5)
    done = pending(client, 1, endpoint="gamma", start=START + 6)
    complete(s3, done)
    client.tracker.refresh()
    now = [NOW]
    asked = []

    def endpoint_status(name):
        asked.append((name, threading.current_thread() is threading.main_thread()))
        return EndpointStatus(name=name, status="InService", current_instances=0, desired_instances=1,
                              backlog=12, oldest_request_age_s=125.0, scales_from_zero=True,
                              warnings=[f"<b>{name}</b> scaling out from zero: first results take minutes"])

    panel = make_panel(endpoint_status=endpoint_status, clock=lambda: now[0])
    assert panel.wait_idle()
    assert sorted(asked) == [("alpha", False), ("beta", False)]  # gamma has nothing unfinished
    strip = panel.view.strip.html.value
    assert "<b>alpha</b> · InService · instances 0/1 · backlog 12 · oldest request 2m 05s" in strip
    assert "&lt;b&gt;alpha&lt;/b&gt; scaling out from zero" in strip and "<b>alpha</b> scaling" not in strip
    for _ in range(5):  # refreshes every 10 s: the tracker's pace, not the metrics'
        now[0] += 10
        client.tracker.refresh()
    assert panel.wait_idle() and len(asked) == 2
    now[0] += 15  # 65 s after the first fetch
    complete(s3, alpha)
    client.tracker.refresh()
    assert panel.wait_idle()
    assert sorted(asked[2:]) == [("beta", False)]  # alpha is done: no strip, no fetch
    assert "alpha" not in panel.view.strip.html.value and "beta" in panel.view.strip.html.value


def test_endpoint_strip_shows_a_failed_fetch_and_is_hidden_without_a_source(client, make_panel):
    pending(client, 1, endpoint="alpha")

    def broken(name):
        raise PermissionError("sagemaker:DescribeEndpoint <denied>")

    panel = make_panel(endpoint_status=broken)
    assert panel.wait_idle()
    assert "status not available: PermissionError: sagemaker:DescribeEndpoint &lt;denied&gt;" \
        in panel.view.strip.html.value
    plain = make_panel()
    assert plain.view.strip is None and "sm-async-endpoints" not in str(plain.widget.children)


def test_close_stops_the_background_workers(client, make_panel, s3):
    rows = pending(client, 1)
    complete(s3, rows)
    client.tracker.refresh()
    panel = make_panel(endpoint_status=lambda name: EndpointStatus(name=name))
    open_details(panel, rows[0].inference_id)
    workers = [t for t in threading.enumerate() if t.name.startswith(("sm-async-nb-preview", "sm-async-nb-endpoints"))]
    assert workers
    panel.close()
    assert panel.view.details.preview.comm is None and panel.view.strip.html.comm is None
    for thread in workers:
        thread.join(10)
        assert not thread.is_alive(), thread.name
    panel.loop.post(OpenDetails(rows[0].inference_id))  # after close: ignored, nothing drawn
    assert panel.loop.idle


def test_results_head_of_an_empty_output(client, s3):
    from sm_async_nb.results.loading import head

    [row] = pending(client, 1)
    complete(s3, [row], body=b"", content_type="text/csv")
    client.tracker.refresh()
    body, _, total = head(client.ctx, client.journal.get(row.inference_id), 4096)
    assert body == b"" and total == 0
    assert "empty output" in preview_html(body, "text/csv", total)
