"""The live panel without a kernel: every comm message the widgets would send is recorded (with its
JSON size), actions are driven with ``button.click()``, and status changes come from
``tracker.refresh()`` after output objects are written to (in-process) moto. Clicks and refreshes
only post intents to the panel's loop: ``drawn(panel)`` waits until the loop has drawn them."""

from __future__ import annotations

import html
import json
import re
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
from comm.base_comm import BaseComm
from panelkit import START, bucket_key, complete, drawn, fail, pending, shown, statuses, tick

from sm_async_nb.records import BatchRecord, Finish, Status

XSS = ("<img src=x onerror=alert(1)>", "</table><script>alert(1)</script>")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


# --- rows, paging, filters -------------------------------------------------------------------

def test_rows_render_newest_first_with_every_column(client, make_panel):
    rows = pending(client, 3)
    panel = make_panel()
    first = shown(panel)[0]
    newest = rows[-1]
    assert first[:3] == ("row2", "ep", f"{newest.inference_id[:8]}…{newest.inference_id[-4:]}")
    assert ">PENDING<" in first[3] and "color:" in first[3]
    assert first[4] == "1m 38s"  # pending: elapsed since submission (now - START - 2)
    view = drawn(panel)
    slot = view.table.slots[0]
    assert slot.ident.tooltip == newest.inference_id
    assert slot.submitted.value == time.strftime("%H:%M:%S", time.localtime(START + 2))
    assert [r[0] for r in shown(panel)] == ["row2", "row1", "row0"]
    assert "3</b> tracked" in view.w.counts.value and "pending 3" in view.w.counts.value
    assert view.w.progress.value == 0 and view.w.progress.max == 3


def test_the_first_snapshot_is_drawn_before_the_constructor_returns(client, make_panel):
    pending(client, 2)
    panel = make_panel()  # no wait: display(panel) right after shows the rows
    assert [s.label.value for s in panel.view.table.slots if s.inference_id] == ["row1", "row0"]
    assert panel.state.last is not None and panel.state.last.total == 2 and "2 invocations" in repr(panel)


def test_paging_reuses_a_fixed_set_of_slots(client, make_panel, wire):
    pending(client, 45)
    panel = make_panel()
    w = panel.view.w
    slot_boxes = [s.box for s in panel.view.table.slots]
    assert len(panel.view.table.slots) == 20 and len(panel.view.table.box.children) == 21
    assert w.page_text.value == "Page 1 of 3 · 45 shown"
    assert w.prev.disabled and not w.next.disabled
    opened = sum(1 for m in wire.messages if m[1] == "comm_open")
    w.next.click()
    assert [r[0] for r in shown(panel)][:2] == ["row24", "row23"]
    w.next.click()
    assert drawn(panel).w.page_text.value.startswith("Page 3 of 3")
    assert [r[0] for r in shown(panel)] == [f"row{i}" for i in range(4, -1, -1)]
    assert len(panel.view.table.box.children) == 1 + 5 and w.next.disabled
    w.prev.click()
    assert drawn(panel).w.page_text.value.startswith("Page 2 of 3")
    assert sum(1 for m in wire.messages if m[1] == "comm_open") == opened  # no widget per row or page
    assert [s.box for s in panel.view.table.slots] == slot_boxes


def test_status_endpoint_and_text_filters(client, make_panel, s3):
    a = pending(client, 4, endpoint="alpha", label="cats")
    pending(client, 3, endpoint="beta", label="dogs", start=START + 10)
    complete(s3, a[:1])
    client.tracker.refresh()
    panel = make_panel()
    w = panel.view.w
    assert [o[1] for o in w.endpoint_filter.options] == ["", "alpha", "beta"]
    w.status_filter.value = "COMPLETED"
    assert [r[0] for r in shown(panel)] == ["cats0"]
    w.status_filter.value = "unfinished"
    assert len(shown(panel)) == 6
    w.status_filter.value = ""
    w.endpoint_filter.value = "beta"
    assert {r[1] for r in shown(panel)} == {"beta"} and len(shown(panel)) == 3
    w.endpoint_filter.value = ""
    w.text_filter.value = "CATS"
    assert sorted(r[0] for r in shown(panel)) == ["cats0", "cats1", "cats2", "cats3"]
    w.text_filter.value = a[2].inference_id[:13]
    assert [r[0] for r in shown(panel)] == ["cats2"]
    w.text_filter.value = "nothing-like-this"
    assert shown(panel) == [] and panel.view.table.box.children[1] is panel.view.table.empty
    assert w.page_text.value == "Page 1 of 1 · 0 shown of 7"


def test_a_burst_of_keystrokes_ends_on_the_last_one(client, make_panel):
    pending(client, 3, label="cats")
    pending(client, 2, label="dogs", start=START + 10)
    panel = make_panel()
    for prefix in ("d", "do", "dog", "dogs", "dogs1"):  # typed faster than the loop draws
        panel.view.w.text_filter.value = prefix
    assert [r[0] for r in shown(panel)] == ["dogs1"]
    assert panel.state.query.text == "dogs1"


def test_filter_resets_to_first_page_and_endpoint_options_follow_new_rows(client, make_panel):
    pending(client, 30)
    panel = make_panel()
    w = panel.view.w
    w.next.click()
    assert drawn(panel).w.page_text.value.startswith("Page 2 of 2")
    w.endpoint_filter.value = "ep"
    assert drawn(panel).w.page_text.value.startswith("Page 1 of 2")
    pending(client, 2, endpoint="gamma", start=START + 50)
    client.tracker.refresh()  # a submission is not a status change: the count check reloads
    assert "gamma" in [o[1] for o in drawn(panel).w.endpoint_filter.options]
    assert w.endpoint_filter.value == "ep" and panel.state.query.endpoint == "ep"
    assert drawn(panel).w.page_text.value.startswith("Page 1 of 2")  # the options' echo is not an edit


# --- live updates ----------------------------------------------------------------------------

def test_tracker_refresh_turns_rows_completed_and_failed(client, make_panel, s3):
    rows = pending(client, 4)
    panel = make_panel()
    complete(s3, rows[:2], body=b"0.1\n0.9\n")
    fail(s3, rows[2:3], "ModelError: boom")
    client.tracker.refresh()
    by_label = {r[0]: r for r in shown(panel)}
    assert ">COMPLETED<" in by_label["row0"][3] and by_label["row0"][5] == "8 B"
    assert ">FAILED<" in by_label["row2"][3]
    assert ">PENDING<" in by_label["row3"][3]
    w = drawn(panel).w
    assert w.progress.value == 3 and w.progress.bar_style == "warning"  # failures, still running
    assert "completed 2" in w.counts.value and "failed 1" in w.counts.value
    assert "S3 request" in w.refreshed.value and w.refreshed.value.startswith("Last refresh")


def test_background_thread_updates_while_nothing_else_runs(client, make_panel, s3):
    rows = pending(client, 3)
    client.settings.poll_interval = 0.2
    panel = make_panel(auto_refresh=True)
    assert client.tracker.running and panel.view.w.auto.value
    finished: list[str] = []
    heard = threading.Event()

    def listener(changes):  # subscribed after the panel: it hears each refresh after the panel did
        finished.extend(c.inference_id for c in changes)
        if len(finished) == 3:
            heard.set()

    client.tracker.subscribe(listener)
    complete(s3, rows)
    assert heard.wait(10)  # the tracker's thread found them, with no call from here
    assert statuses(panel) == ["COMPLETED"] * 3  # once the loop's thread has drawn what the panel heard
    client.tracker.stop()


def test_bytes_sent_per_refresh_one_row_versus_all_rows(client, make_panel, s3, wire, stage_row):
    rows = pending(client, 20)
    panel = make_panel()
    cells = {w.comm.comm_id: name for s in panel.view.table.slots
             for name, w in vars(s).items() if isinstance(getattr(w, "comm", None), BaseComm)}
    client.tracker.refresh()
    drawn(panel)
    mark = wire.mark()
    client.tracker.refresh()  # nothing changed: at most the "last refresh" line
    drawn(panel)
    idle = wire.bytes_since(mark)
    assert not wire.updated_ids(mark) & set(cells)

    mark = wire.mark()
    complete(s3, rows[:1])
    client.tracker.refresh()
    drawn(panel)
    one, one_msgs = wire.bytes_since(mark), len(wire.since(mark))
    assert sorted(cells[i] for i in wire.updated_ids(mark) & set(cells)) == ["expires", "size", "status", "timing"]

    s3.delete_object(**bucket_key(rows[0].output_location))  # back to 20 pending rows
    stage_row(client.journal, rows[0].inference_id, status=Status.PENDING, finished_at=None, output_size=None)
    panel.refresh()
    assert statuses(panel) == ["PENDING"] * 20
    mark = wire.mark()
    complete(s3, rows)
    client.tracker.refresh()
    drawn(panel)
    every, every_msgs = wire.bytes_since(mark), len(wire.since(mark))
    assert len(wire.updated_ids(mark) & set(cells)) == 4 * 20
    numbers = {"idle_refresh_bytes": idle, "one_row_bytes": one, "one_row_messages": one_msgs,
               "all_20_rows_bytes": every, "all_20_rows_messages": every_msgs}
    print("\npanel bytes per refresh (JSON of comm data):", numbers)
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "panel_bytes.json").write_text(json.dumps(numbers, indent=2))
    assert idle < 400 and one < 1500 and every > 5 * one


def test_new_submissions_and_other_processes_show_on_the_next_refresh(client, make_panel, s3):
    pending(client, 2)
    panel = make_panel()
    later = pending(client, 1, start=START + 30, label="late")
    client.journal.finish([Finish(later[0].inference_id, Status.COMPLETED, START + 40, output_size=3)])
    client.tracker.refresh()
    assert shown(panel)[0][0] == "late0" and ">COMPLETED<" in shown(panel)[0][3]


def test_a_failing_snapshot_never_reaches_the_tracker(client, make_panel, monkeypatch, caplog):
    pending(client, 1)
    panel = make_panel()
    monkeypatch.setattr(panel.state.reader, "read", lambda query, now: 1 / 0)
    client.tracker.refresh()
    assert "Panel update failed: ZeroDivisionError" in drawn(panel).w.message.value
    assert not [r for r in caplog.records if r.name == "sm_async_nb.tracking.bus"]  # the panel caught it
    assert any(r.name == "sm_async_nb.notebook.panel.loop" and r.exc_info for r in caplog.records)
    monkeypatch.undo()
    panel.view.w.next.click()  # the loop goes on
    assert shown(panel) and "Panel update failed" in panel.view.w.message.value  # the line stays until replaced


# --- selection and actions -------------------------------------------------------------------

def test_load_one_invocation_into_the_named_variable(client, make_panel, s3, user_ns):
    rows = pending(client, 2)
    complete(s3, rows[:1], body=b"0.1\n0.9\n")
    client.tracker.refresh()
    panel = make_panel()
    tick(panel, rows[0].inference_id)
    assert panel.selected == [rows[0].inference_id] and drawn(panel).w.selection_text.value == "1 selected"
    w = panel.view.w
    w.var.value = "preds"
    w.load.click()
    assert panel.wait_idle()
    assert isinstance(user_ns["preds"], pd.DataFrame) and user_ns["preds"][0].tolist() == [0.1, 0.9]
    assert w.message.value.startswith("preds: DataFrame with 2 rows × 1 columns")
    assert not w.load.disabled


def test_load_a_batch_in_input_order_skipping_unfinished_parts(client, make_panel, s3, user_ns):
    batch = BatchRecord("batch-abc", "ep", 4, label="quad", created_at=START)
    rows = pending(client, 4, batch=batch)
    for i in (3, 0, 1):
        complete(s3, rows[i:i + 1], body=json.dumps([i * 10]).encode(), content_type="application/json")
    client.tracker.refresh()
    panel = make_panel()
    w = panel.view.w
    w.select_shown.click()
    assert drawn(panel).w.progress_text.value.startswith("3 / 4 finished (batch quad)")
    w.load.click()
    assert panel.wait_idle()
    frame = user_ns["df"]
    assert frame.index.tolist() == [0, 1, 3] and frame.iloc[:, 0].tolist() == [0, 10, 30]
    assert "skipped 1 not completed (1 pending)" in w.message.value


def test_load_mixed_selection_concatenates_with_a_source_level(client, make_panel, s3, user_ns):
    single = pending(client, 1, label="solo")
    batch = BatchRecord("batch-two", "ep", 2, created_at=START + 5)
    parts = pending(client, 2, batch=batch, start=START + 5, label="part")
    complete(s3, single + parts, body=b"7\n")
    client.tracker.refresh()
    panel = make_panel()
    panel.view.w.select_shown.click()
    panel.view.w.load.click()
    assert panel.wait_idle()
    frame = user_ns["df"]
    assert frame.index.names == ["source", None]
    assert list(dict.fromkeys(frame.index.get_level_values(0))) == [single[0].inference_id, "batch-two"]
    assert len(frame) == 3


def test_load_reports_bad_names_and_nothing_completed(client, make_panel, user_ns):
    rows = pending(client, 2)
    panel = make_panel()
    w = panel.view.w
    w.load.click()
    assert "Select one or more rows" in drawn(panel).w.message.value
    tick(panel, rows[0].inference_id)
    w.var.value = "1st result"
    w.load.click()
    assert "not a valid Python variable name" in drawn(panel).w.message.value
    w.var.value = "ok"
    w.load.click()
    assert panel.wait_idle()
    assert "None of the selected invocations has completed (1 pending)" in w.message.value
    assert user_ns == {}


def test_a_second_slow_action_while_one_runs_is_refused(client, make_panel, s3, monkeypatch):
    rows = pending(client, 1)
    panel = make_panel()
    release = threading.Event()
    original = client.tracker.refresh
    monkeypatch.setattr(client.tracker, "refresh", lambda *a, **k: (release.wait(10), original(*a, **k))[1])
    w = panel.view.w
    w.refresh_now.click()
    assert panel.loop.flush()  # the click is applied and drawn; the worker holds the action
    assert w.load.disabled and w.resubmit.disabled and w.refresh_now.disabled
    panel.view.table.slots[0].check.value = True  # the buttons are disabled: as if a click got through
    w.load.click()
    assert panel.loop.flush()  # drawn, while the action still runs
    assert w.message.value == "Still working on the previous action…" and panel.selected == [rows[0].inference_id]
    release.set()
    assert panel.wait_idle()
    assert w.message.value.startswith("Refreshed: 0 changed") and not w.load.disabled


def test_failure_reason_and_uris_are_shown(client, make_panel, s3, wire):
    rows = pending(client, 2)
    fail(s3, rows[:1], "ModelError: shape mismatch (4 != 3)")
    client.tracker.refresh()
    panel = make_panel()
    w = panel.view.w
    tick(panel, *(r.inference_id for r in rows))
    w.why.click()
    assert drawn(panel).w.details.children[0] is w.reasons
    assert "shape mismatch (4 != 3)" in w.reasons.value
    w.uris.click()
    text = drawn(panel).w.uri_text.value
    for r in rows:
        assert r.input_location in text and r.output_location in text and r.failure_location in text
    w.uri_text.value = "edited by the user"  # read-only: the edit is undone
    assert w.uri_text.value == text
    w.hide.click()
    assert drawn(panel).w.details.children == ()
    w.clear.click()
    tick(panel, rows[1].inference_id)
    w.why.click()
    assert "No failure reason: the selection is 1 pending" in drawn(panel).w.message.value


def test_forget_needs_a_confirming_second_click(client, make_panel):
    rows = pending(client, 3)
    panel = make_panel()
    w = panel.view.w
    tick(panel, rows[0].inference_id, rows[1].inference_id)
    w.forget.click()
    assert drawn(panel).w.forget.description == "Confirm forget (2)" and len(shown(panel)) == 3
    w.forget.click()
    assert [r[0] for r in shown(panel)] == ["row2"]
    assert client.journal.get(rows[0].inference_id) is None and panel.selected == []
    assert "Forgot 2" in w.message.value and w.forget.description == "Forget"


def test_changing_the_selection_disarms_forget(client, make_panel):
    rows = pending(client, 2)
    panel = make_panel()
    w = panel.view.w
    tick(panel, rows[0].inference_id)
    w.forget.click()
    tick(panel, rows[1].inference_id)
    assert drawn(panel).w.forget.description == "Forget"
    w.forget.click()
    assert len(shown(panel)) == 2


def test_resubmit_sends_failed_ones_again(client, make_panel, s3, user_ns):
    inv = client.submit("ep", "1,2\n", label="retry-me")
    s3.delete_object(**bucket_key(inv.output_location))
    s3.put_object(**bucket_key(inv.failure_location), Body=b"ModelError: flaky")
    client.tracker.refresh()
    ok = client.submit("ep", "3\n", label="fine")
    client.tracker.refresh()
    panel = make_panel()
    tick(panel, inv.inference_id, ok.inference_id)
    panel.view.w.resubmit.click()
    assert panel.wait_idle()
    assert "Resubmitted 1 invocation(s); left 1 pending or completed ones alone." == panel.view.w.message.value
    [new_id] = panel.selected
    assert new_id != inv.inference_id and client.journal.get(new_id).status is Status.PENDING
    assert [r[0] for r in shown(panel)][0] == "retry-me"


def test_resubmit_of_pending_rows_is_a_message_not_a_traceback(client, make_panel):
    rows = pending(client, 1)
    panel = make_panel()
    tick(panel, rows[0].inference_id)
    panel.view.w.resubmit.click()
    assert panel.wait_idle()
    assert panel.view.w.message.value.startswith("Only ERROR, FAILED or EXPIRED invocations can be resubmitted")


# --- refresh controls ------------------------------------------------------------------------

def test_refresh_controls_drive_the_tracker(client, make_panel, s3):
    rows = pending(client, 2)
    panel = make_panel()
    w = panel.view.w
    assert not client.tracker.running and not w.auto.value
    w.interval.value = 3
    assert drawn(panel).w.message.value == "Polling at least every 3 s."
    assert client.settings.poll_interval == 3
    complete(s3, rows)
    w.refresh_now.click()
    assert panel.wait_idle()
    assert re.fullmatch(r"Refreshed: 2 changed, [1-4] S3 request\(s\)\.", w.message.value)
    assert statuses(panel) == ["COMPLETED", "COMPLETED"]
    w.auto.value = True
    assert drawn(panel).w.message.value.startswith("Auto-refresh on") and client.tracker.running
    w.auto.value = False
    assert panel.wait_idle() and not client.tracker.running  # stopped on a thread of its own
    assert not w.auto.value and w.message.value == "Auto-refresh off."


# --- escaping --------------------------------------------------------------------------------

@pytest.mark.parametrize("evil", XSS)
def test_outside_strings_are_escaped_in_every_html_value(client, make_panel, s3, wire, evil):
    rows = pending(client, 2, label=evil, request={"custom_attributes": evil})
    fail(s3, rows[:1], f"ModelError: {evil}")
    client.tracker.refresh()
    client.tracker.notices["test"] = f"notice {evil}"
    mark = wire.mark()
    panel = make_panel()
    tick(panel, *(r.inference_id for r in rows))
    panel.view.w.why.click()
    drawn(panel)  # each click drawn (clicks the loop takes together draw only the last)
    panel.view.w.uris.click()
    drawn(panel)
    values = wire.html_values(mark)
    assert values and not any(tag in v for v in values for tag in ("<img", "<script", "</table"))
    escaped = html.escape(evil, quote=True)
    assert "".join(values).count(escaped) >= 4  # label, custom attributes and reason of the failed row; notice
    # The label goes into Label widgets (text, not HTML) and the tooltip attribute.
    assert shown(panel)[0][0] == evil + "1" and panel.view.table.slots[0].label.tooltip == evil + "1"


def test_a_journal_that_cannot_be_read_fails_the_build_and_leaves_nothing_behind(client, make_panel, wire,
                                                                                monkeypatch):
    from sm_async_nb.errors import JournalError
    from sm_async_nb.notebook.panel.query import JournalReader

    pending(client, 1)
    before = client.tracker.bus.listener_count
    monkeypatch.setattr(JournalReader, "read", lambda self, query, now: (_ for _ in ()).throw(
        JournalError("The journal is corrupt: restore it or move it away.")))
    with pytest.raises(JournalError, match="corrupt"):
        make_panel()
    opened = {m[0] for m in wire.messages if m[1] == "comm_open"}
    closed = {m[0] for m in wire.messages if m[1] == "comm_close"}
    assert opened and opened == closed and client.tracker.bus.listener_count == before
    assert not any(t.name.startswith("sm-async-nb-panel-loop") for t in threading.enumerate())


# --- display, close, several panels ----------------------------------------------------------

def test_displaying_twice_shows_two_views_of_the_same_models(client, make_panel):
    from IPython.core.formatters import DisplayFormatter

    pending(client, 1)
    panel = make_panel()
    formatter = DisplayFormatter()
    first, _ = formatter.format(panel)
    second, _ = formatter.format(panel)
    view = "application/vnd.jupyter.widget-view+json"
    assert first[view]["model_id"] == second[view]["model_id"] == panel.widget.model_id


def test_close_unsubscribes_stops_the_threads_and_other_panels_keep_updating(client, make_panel, s3, wire):
    rows = pending(client, 2)
    before = client.tracker.bus.listener_count
    one, two = make_panel(), make_panel()
    assert client.tracker.bus.listener_count == before + 2
    one_ids = {w.comm.comm_id for w in one.view.widgets()}
    loop_thread = one.loop._thread
    one.close()
    assert client.tracker.bus.listener_count == before + 1 and not loop_thread.is_alive()
    assert one.closed and one.widget.comm is None and "closed" in repr(one)
    mark = wire.mark()
    complete(s3, rows)
    client.tracker.refresh()
    assert statuses(two) == ["COMPLETED", "COMPLETED"]
    assert not (wire.updated_ids(mark) & one_ids)
    assert {m[0] for m in wire.messages if m[1] == "comm_close"} >= one_ids
    one.close()  # twice is harmless
    assert "closed" in one._repr_mimebundle_()["text/plain"]
    two.close()
    assert not any(t.name.startswith("sm-async-nb-panel-loop") for t in threading.enumerate())


# --- scale -----------------------------------------------------------------------------------

@pytest.fixture
def decoded(monkeypatch):
    """Counts the journal rows turned into records (the work that grows with rows read)."""
    from sm_async_nb.journal import schema

    seen = {"rows": 0}
    original = schema.invocation_from_row

    def counting(row):
        seen["rows"] += 1
        return original(row)

    monkeypatch.setattr(schema, "invocation_from_row", counting)
    return seen


def test_thousands_of_rows_are_read_one_page_at_a_time(client, make_panel, wire, decoded, s3):
    rows = pending(client, 5000, endpoint="big", step=0.01)
    pending(client, 10, endpoint="small", label="needle", start=START - 100)
    mark = wire.mark()
    panel = make_panel()
    w = panel.view.w
    opened = sum(1 for m in wire.since(mark) if m[1] == "comm_open")
    assert opened < 450  # widgets for one page, not per row
    assert decoded["rows"] <= 20  # the build read one page of rows, not 5,010
    for _ in range(10):
        w.next.click()
    assert drawn(panel).w.page_text.value.startswith("Page 11 of 251")
    for name, value in (("text_filter", "needle"), ("text_filter", ""), ("endpoint_filter", "small"),
                        ("status_filter", "COMPLETED"), ("status_filter", "")):
        decoded["rows"] = 0
        getattr(w, name).value = value
        drawn(panel)
        assert decoded["rows"] <= 20, name
    w.endpoint_filter.value = "small"
    assert len(shown(panel)) == 10 and w.page_text.value == "Page 1 of 1 · 10 shown of 5,010"
    w.endpoint_filter.value = ""
    drawn(panel)
    complete(s3, rows[-3:])
    decoded["rows"] = 0
    client.tracker.refresh()  # the tracker decodes the changed rows, the panel one page
    assert statuses(panel)[:3] == ["COMPLETED"] * 3
    assert decoded["rows"] <= 20 + 2 * 3
    decoded["rows"] = 0
    panel.refresh()
    assert decoded["rows"] == 20


def test_not_in_ipython_the_frame_stays_on_the_panel(client, make_panel, s3, monkeypatch):
    import IPython

    monkeypatch.setattr(IPython, "get_ipython", lambda: None)
    rows = pending(client, 1)
    complete(s3, rows)
    client.tracker.refresh()
    panel = make_panel()
    tick(panel, rows[0].inference_id)
    panel.view.w.load.click()
    assert panel.wait_idle()
    assert isinstance(panel.last_frame, pd.DataFrame) and "panel.last_frame" in panel.view.w.message.value


def test_panel_module_imports_no_aws_client_of_its_own():
    folder = Path(__file__).resolve().parents[2] / "sm_async_nb" / "notebook" / "panel"
    files = sorted(folder.glob("*.py"))
    assert {f.name for f in files} >= {"panel.py", "table.py", "rows.py", "actions.py", "widgets.py"}
    source = "".join(f.read_text() for f in files)
    assert "boto3" not in source and ".aws.s3" not in source and "get_object" not in source


def test_the_view_reads_no_journal_and_the_state_starts_no_thread():
    import ast

    folder = Path(__file__).resolve().parents[2] / "sm_async_nb" / "notebook" / "panel"

    def imports(name):
        tree = ast.parse((folder / f"{name}.py").read_text())
        found = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                found.add("." * node.level + (node.module or ""))
            elif isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
        return found

    for view_module in ("view", "table", "widgets"):  # it never reads the journal nor runs work
        assert not {m for m in imports(view_module) if "journal" in m or m in (".state", ".query", ".workers")}
    assert not {"threading", "queue", "concurrent.futures"} & imports("state")  # test_panel_state: no ipywidgets


def test_columns_hidden_by_width_leave_what_stays_room_at_its_least_widths():
    from sm_async_nb.notebook.panel.table import COLUMNS, GAP_PX, HIDE_BELOW, PANEL_CSS

    hidden: set[str] = set()
    floors = [width for width, _ in HIDE_BELOW][1:] + [0]  # each band runs down to the next width
    for floor, (_, going) in zip(floors, HIDE_BELOW, strict=True):
        hidden |= set(going)
        staying = sum(least + GAP_PX for _, _, least, _, css in COLUMNS if css not in hidden)
        assert staying <= (floor or 340), (floor, hidden, staying)  # the last band: a 340 px output
    every = sum(least + GAP_PX for _, _, least, _, _ in COLUMNS)
    assert every <= HIDE_BELOW[0][0]  # all nine fit wherever none is hidden
    for width, going in HIDE_BELOW:
        assert f"@container (max-width:{width}px)" in PANEL_CSS
        assert all(f".sm-async-col-{c}" in PANEL_CSS for c in going)
