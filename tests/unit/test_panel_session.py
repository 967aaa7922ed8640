"""One panel per kernel, the live status line of handles, and the quoting of hints and
completions, without a kernel (an in-process IPython shell where one is needed)."""

from __future__ import annotations

import pytest
from IPython.utils.process import arg_split
from panelkit import NOW, START, complete, fail, pending

from sm_async_nb.config import SageMakerAsync
from sm_async_nb.notebook import live
from sm_async_nb.notebook.completion import current_word, quote
from sm_async_nb.notebook.session import NotebookSession
from sm_async_nb.records import BatchRecord

LABELS = ["my label", "<b>x</b>", "it's \"quoted\"", "cost $5 {x} $HOME", "tab\there", "ünï", "$$x", "it's $x",
          "$x it's", "a\\b", "}}{", "a $ b", "x$", "$.a", "plain", "50%"]


@pytest.fixture
def session(moto_aws, tmp_path, wire):
    settings = SageMakerAsync(s3_input_path="s3://input-bucket/p/", journal_path=str(tmp_path / "j.sqlite3"))
    made = NotebookSession(settings)
    yield made
    made.close()


def test_the_panel_is_shown_again_not_stacked(session):
    tracker = session.client.tracker
    before = tracker.bus.listener_count
    first = session.panel()
    assert session.panel() is first and tracker.bus.listener_count == before + 1
    first.close()  # closing unsubscribes; the next %sm_async panel makes a fresh one
    assert tracker.bus.listener_count == before
    second = session.panel()
    assert second is not first and not second.closed and tracker.bus.listener_count == before + 1
    tracker.stop()


def test_a_new_client_closes_the_old_panel(session):
    first = session.panel()
    session.settings.journal_path = session.settings.journal_path + ".other"  # rebuilds the client
    second = session.panel()
    assert first.closed and second is not first and second.ctx is session.client.ctx
    session.client.tracker.stop()


def test_status_line_of_one_invocation_follows_it_and_then_stops_listening(client, s3):
    [row] = pending(client, 1, label="<i>doc</i>")
    before = client.tracker.bus.listener_count
    line = live.StatusLine(client.invocation(row.inference_id), clock=lambda: NOW)
    text = line.text.value
    assert ">PENDING<" in text and "&lt;i&gt;doc&lt;/i&gt;" in text and "elapsed 1m 40s" in text and "<i>" not in text
    assert client.tracker.bus.listener_count == before + 1
    fail(s3, [row], "ModelError: <oops>")
    client.tracker.refresh()
    assert ">FAILED<" in line.text.value and "ModelError: &lt;oops&gt;" in line.text.value and line.done
    assert client.tracker.bus.listener_count == before


def test_status_line_of_a_batch_counts_its_parts(client, s3):
    batch = BatchRecord("batch-live", "ep", 3, label="trio", created_at=START)
    rows = pending(client, 3, batch=batch)
    line = live.StatusLine(client.batch("batch-live"), clock=lambda: NOW)
    assert "<b>trio</b> · 0/3 finished (3 pending)" in line.text.value and line.bar.max == 3
    complete(s3, rows[:2])
    client.tracker.refresh()
    assert "2/3 finished (2 completed, 1 pending)" in line.text.value and line.bar.value == 2
    complete(s3, rows[2:])
    client.tracker.refresh()
    assert line.done and line.bar.bar_style == "success"


def test_status_line_bundle_is_a_widget_view_with_the_plain_repr(client):
    [row] = pending(client, 1)
    handle = client.invocation(row.inference_id)
    bundle = live.status_line_bundle(handle)
    assert "application/vnd.jupyter.widget-view+json" in bundle and bundle["text/plain"] == repr(handle)
    assert not live.register(object())  # not in a kernel: the plain repr stays


@pytest.mark.parametrize("label", LABELS)
def test_quoted_words_parse_back_as_the_magics_parse_them(label):
    from IPython.testing.globalipapp import get_ipython

    shell = get_ipython()
    shell.user_ns["x"], shell.user_ns["HOME"] = "EXPANDED", "EXPANDED"
    line = shell.var_expand(f"result {quote(label)} -o df")
    assert arg_split(line, posix=True, strict=True) == ["result", label, "-o", "df"]


def test_words_that_cannot_be_arguments_are_not_offered():
    assert quote("-dash") is None and quote("") is None


def test_the_word_being_completed():
    assert current_word("%sm_async result ") == (17, "")
    assert current_word("%sm_async result 'my la") == (17, "my la")
    assert current_word('%sm_async wait "a b" c') == (21, "c")


def test_client_panel_is_one_per_client(client, wire):
    first = client.panel()
    assert client.panel() is first
    first.close()
    second = client.panel()
    assert second is not first and not second.closed
    second.close()
    client.tracker.stop()


def test_completion_reads_the_journal_right_after_a_restart(session):
    from sm_async_nb.notebook.completion import candidates

    journal, origin = session.journal_for_completion()  # no command ran yet: the client is made now
    assert journal is session.client.journal
    pending(session.client, 2, label="after restart")
    assert candidates(journal, origin, "result", "after") == []  # result: finished rows only
    assert candidates(journal, origin, "wait", "AFTER")[:2] == ["after restart1", "after restart0"]


def test_hints_name_a_submission_by_a_label_that_pastes_back_else_by_id():
    from sm_async_nb.notebook.magics import _key

    assert _key("my label", "id-1") == "'my label'"
    assert _key("plain", "id-1") == "plain"
    assert _key("-looks-like-an-option", "id-1") == "id-1" and _key(None, "id-1") == "id-1"
