"""The panel's state and loop without widgets: intents in, snapshots and effects out, over a real
journal (the client fixture's SQLite file) and a tracker stand-in that only holds what the state
reads. Nothing here imports ipywidgets."""

from __future__ import annotations

import subprocess
import sys
import threading
from types import SimpleNamespace

import pytest
from panelkit import NOW, START, pending

from sm_async_nb.notebook.panel.intents import (
    ActionDone,
    ClearSelection,
    DeleteRows,
    EndpointLoaded,
    FetchEndpoint,
    FetchLogs,
    FetchPreview,
    Filter,
    Forget,
    Forgotten,
    Load,
    LoadFrame,
    LogsLoaded,
    OpenDetails,
    PreviewLoaded,
    Redraw,
    Refreshed,
    Select,
    SelectShown,
    ShowReasons,
    SortBy,
    Toggle,
    TurnPage,
)
from sm_async_nb.notebook.panel.loop import PanelLoop
from sm_async_nb.notebook.panel.query import JournalReader
from sm_async_nb.notebook.panel.snapshot import Progress, Reasons, RowDetails
from sm_async_nb.notebook.panel.state import SELECT_FIRST, PanelState
from sm_async_nb.records import BatchRecord, Finish, Status
from sm_async_nb.tracking.tracker import RefreshStats


def tracker_view(**changes):
    return SimpleNamespace(**{"stats": RefreshStats(), "problem": None, "notices": {}, "running": False, **changes})


@pytest.fixture
def make_state(client):
    def make(**options):
        tracker = options.pop("tracker", tracker_view())
        return PanelState(JournalReader(client.journal, client.origin, options.pop("page_size", 20)), tracker,
                          poll_interval=lambda: 2.0, **options)
    return make


def step(state, *intents, now=NOW):
    """What one loop turn does, without the loop: apply, then snapshot; returns (snapshot, effects)."""
    effects = []
    for intent in intents:
        state.apply(intent, now)
        effects += state.take_effects()
    snapshot = state.snapshot(now)
    return snapshot, effects + state.take_effects()


def labels(snapshot):
    return [row.label for row in snapshot.rows]


def test_the_state_and_the_loop_import_without_ipywidgets():
    code = ("import sys; sys.modules['ipywidgets'] = None\n"
            "import sm_async_nb.notebook.panel.state, sm_async_nb.notebook.panel.loop, "
            "sm_async_nb.notebook.panel.workers\n"
            "loaded = [m for m, module in sys.modules.items() if module is not None\n"
            "          and m.startswith(('ipywidgets', 'IPython', 'ipykernel'))]\n"
            "assert not loaded, loaded")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_filters_sort_and_pages_make_snapshots(client, make_state):
    pending(client, 25, endpoint="alpha")
    pending(client, 3, endpoint="beta", label="other", start=START + 100)
    state = make_state()
    snap, effects = step(state, Redraw())
    assert labels(snap)[:4] == ["other2", "other1", "other0", "row24"] and effects == []
    assert (snap.page, snap.pages, snap.matching, snap.total) == (0, 2, 28, 28)
    assert snap.endpoints == ("alpha", "beta") and dict(snap.counts) == {Status.PENDING: 28}
    snap, _ = step(state, TurnPage(1))
    assert snap.page == 1 and len(snap.rows) == 8
    snap, _ = step(state, Filter("endpoint", "beta"))  # a filter goes back to the first page
    assert labels(snap) == ["other2", "other1", "other0"] and snap.endpoint == "beta" and snap.page == 0
    snap, _ = step(state, Filter("endpoint", ""), Filter("text", "ROW2"), SortBy("label"))
    assert labels(snap) == ["row2", "row20", "row21", "row22", "row23", "row24"] and not snap.descending
    snap, _ = step(state, SortBy("label"))
    assert labels(snap)[0] == "row24" and snap.descending and snap.sort == "label"
    snap, _ = step(state, Filter("text", ""), TurnPage(10))  # past the end: clamped to the last page
    assert snap.page == 1 and state.query.page == 1
    snap, _ = step(state, TurnPage(-1))
    assert snap.page == 0


def test_selection_survives_paging_and_reports_what_the_filters_hide(client, make_state):
    alpha = pending(client, 25, endpoint="alpha")
    beta = pending(client, 2, endpoint="beta", start=START + 100)
    state = make_state()
    snap, _ = step(state, Toggle(alpha[0].inference_id, True), Toggle(beta[0].inference_id, True))
    assert snap.selected == {alpha[0].inference_id, beta[0].inference_id} and snap.hidden == 0
    snap, _ = step(state, Filter("endpoint", "beta"))
    assert snap.hidden == 1
    snap, _ = step(state, SelectShown())
    assert snap.selected == {alpha[0].inference_id, *(r.inference_id for r in beta)}
    snap, _ = step(state, ClearSelection(), Select(("no-such-id", alpha[3].inference_id)))
    assert snap.selected == {alpha[3].inference_id}  # ids no longer tracked are left out
    client.journal.forget([alpha[3].inference_id])  # forgotten elsewhere: the next snapshot drops it
    snap, _ = step(state, Redraw())
    assert snap.selected == frozenset()


def test_forget_is_armed_then_asks_for_one_delete(client, make_state):
    rows = pending(client, 3)
    state = make_state()
    snap, effects = step(state, Forget())
    assert snap.message == SELECT_FIRST and effects == []
    ids = frozenset(r.inference_id for r in rows[:2])
    snap, effects = step(state, *(Toggle(i, True) for i in ids), Forget())
    assert snap.forget_armed and effects == [] and "Click again to confirm" in snap.message
    snap, effects = step(state, Forget())
    assert effects == [DeleteRows(ids)] and not snap.forget_armed
    snap, _ = step(state, Forgotten(ids, 2))
    assert snap.selected == frozenset() and snap.message.startswith("Forgot 2 invocation(s)")
    step(state, Toggle(rows[0].inference_id, True), Forget())
    snap, effects = step(state, Toggle(rows[1].inference_id, True))  # another selection: disarmed
    assert not snap.forget_armed and effects == []


def test_slow_actions_run_one_at_a_time(client, make_state):
    rows = pending(client, 2)
    state = make_state()
    snap, effects = step(state, Load("1st"))
    assert "not a valid Python variable name" in snap.message and effects == [] and not snap.busy
    snap, effects = step(state, Load("df"))
    assert snap.message == SELECT_FIRST and effects == []
    snap, effects = step(state, Toggle(rows[0].inference_id, True), Load("df"))
    assert effects == [LoadFrame((client.journal.get(rows[0].inference_id),), "df")]
    assert snap.busy and snap.message == "Loading 1 output(s) into df…"
    snap, effects = step(state, Load("other"))
    assert effects == [] and snap.message == "Still working on the previous action…" and snap.busy
    snap, _ = step(state, ActionDone("done", select=(rows[1].inference_id,)))
    assert not snap.busy and snap.message == "done" and snap.selected == {rows[1].inference_id}


def test_failure_reasons_show_in_the_details_area(client, make_state):
    rows = pending(client, 2)
    client.journal.finish([Finish(rows[0].inference_id, Status.FAILED, START + 5, failure_reason="<b>boom</b>")])
    state = make_state()
    snap, _ = step(state, Toggle(rows[1].inference_id, True), ShowReasons())
    assert snap.details is None and snap.message == "No failure reason: the selection is 1 pending."
    snap, _ = step(state, Toggle(rows[0].inference_id, True), ShowReasons())
    assert isinstance(snap.details, Reasons) and "&lt;b&gt;boom&lt;/b&gt;" in snap.details.html


def test_details_ask_for_a_preview_once_and_show_the_answer_for_their_row_only(client, make_state):
    rows = pending(client, 2)
    for row in rows:
        client.journal.finish([Finish(row.inference_id, Status.COMPLETED, START + 5, output_size=4)])
    state = make_state()
    snap, effects = step(state, OpenDetails(rows[0].inference_id))
    key = (rows[0].inference_id, rows[0].output_location, START + 5)
    assert [type(e) for e in effects] == [FetchPreview] and effects[0].key == key
    assert isinstance(snap.details, RowDetails) and "Loading the preview" in snap.details.preview
    snap, effects = step(state, Redraw())
    assert effects == []  # asked once
    other = (rows[1].inference_id, rows[1].output_location, START + 5)
    snap, _ = step(state, PreviewLoaded(other, "<p>other</p>", True), PreviewLoaded(key, "<p>mine</p>", True))
    assert snap.details.preview == "<p>mine</p>"
    snap, effects = step(state, OpenDetails(rows[1].inference_id))  # answered before it was asked: cached
    assert effects == [] and snap.details.preview == "<p>other</p>"
    snap, effects = step(state, OpenDetails(rows[0].inference_id))
    assert effects == [] and snap.details.preview == "<p>mine</p>"


def test_a_rows_details_follow_it_as_it_finishes(client, make_state):
    [row] = pending(client, 1)
    state = make_state(logs=True)
    snap, effects = step(state, OpenDetails(row.inference_id))
    assert [type(e) for e in effects] == [FetchLogs] and "No output: the invocation is pending" in snap.details.preview
    snap, _ = step(state, LogsLoaded(effects[0].key, "<pre>line</pre>", True))
    assert snap.details.logs == "<pre>line</pre>" and "Expires in" in snap.details.fields
    client.journal.finish([Finish(row.inference_id, Status.COMPLETED, START + 5, output_size=4)])
    snap, effects = step(state, Refreshed(0, None))
    assert [type(e) for e in effects] == [FetchPreview] and snap.details.logs is None  # no log section now
    assert "Latency" in snap.details.fields


def test_the_strip_asks_each_endpoint_at_its_own_pace(client, make_state):
    pending(client, 1, endpoint="alpha")
    pending(client, 1, endpoint="beta")
    state = make_state(strip_interval=60.0)
    snap, effects = step(state, Redraw())
    assert effects == [FetchEndpoint("alpha"), FetchEndpoint("beta")]
    assert snap.strip == ("<div><b>alpha</b> · checking…</div>", "<div><b>beta</b> · checking…</div>")
    snap, effects = step(state, EndpointLoaded("alpha", "<div>alpha ok</div>"), now=NOW + 30)
    assert effects == [] and snap.strip[0] == "<div>alpha ok</div>"
    _, effects = step(state, Redraw(), now=NOW + 60)
    assert effects == [FetchEndpoint("alpha"), FetchEndpoint("beta")]
    assert make_state().snapshot(NOW).strip is None


def test_a_failed_refresh_is_shown_until_the_next_one(client, make_state):
    pending(client, 1)
    tracker = tracker_view(problem="Credentials expired: run aws sso login", notices={"acl": "no ListBucket"})
    state = make_state(tracker=tracker)
    snap, _ = step(state, Refreshed(1, "ExpiredToken"))
    assert tuple(n.text for n in snap.notices) == ("Credentials expired: run aws sso login", "no ListBucket",
                            "Last refresh failed: ExpiredToken")
    snap, _ = step(state, Refreshed(1, "ExpiredToken"))  # no new error since: the refresh worked
    assert snap.notices[-1].text == "no ListBucket"


def test_progress_follows_a_selected_batch(client, make_state):
    batch = BatchRecord("batch-q", "ep", 3, label="quad", created_at=START)
    rows = pending(client, 3, batch=batch)
    pending(client, 2, start=START + 50)
    client.journal.finish([Finish(rows[0].inference_id, Status.FAILED, START + 3)])
    state = make_state()
    snap, _ = step(state, Redraw())
    assert snap.progress == Progress(1, 5, 1, "shown")
    snap, _ = step(state, Toggle(rows[1].inference_id, True))
    assert snap.progress == Progress(1, 3, 1, "batch quad")


# --- the loop --------------------------------------------------------------------------------

def test_the_loop_draws_one_snapshot_per_turn_in_order(client, make_state):
    pending(client, 30)
    state = make_state()
    drawn, gate = [], threading.Event()

    def draw(snapshot):
        drawn.append(snapshot)
        if len(drawn) == 2:
            gate.wait(10)  # hold the loop while intents pile up

    loop = PanelLoop(state, draw=draw, say=lambda message: None, clock=lambda: NOW)
    loop.start(lambda effect: None, Redraw())
    assert len(drawn) == 1 and drawn[0].page == 0  # the first one on this thread
    loop.post(TurnPage(1))
    threads = [threading.Thread(target=lambda: [loop.post(Refreshed(0, None)) for _ in range(50)]) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    loop.post(Filter("text", "row2"))
    gate.set()
    assert loop.flush(10)
    assert len(drawn) <= 3  # the first, then the 202 intents in at most two turns
    assert drawn[-1].page == 0 and {r.label for r in drawn[-1].rows} == {f"row{i}" for i in (2, *range(20, 30))}
    loop.close()
    loop.post(Redraw())  # ignored once closed
    assert loop.flush(1)


def test_a_failing_turn_is_logged_and_shown_and_the_loop_goes_on(client, make_state, caplog):
    pending(client, 1)
    state = make_state()
    said, drawn = [], []

    def draw(snapshot):
        if snapshot.message == "boom":
            raise RuntimeError("view broke")
        drawn.append(snapshot)

    loop = PanelLoop(state, draw=draw, say=said.append, clock=lambda: NOW)
    loop.start(lambda effect: None, Redraw())
    loop.post(ActionDone("boom"))
    assert loop.flush(10)
    assert said == ["Panel update failed: RuntimeError: view broke"]
    assert any(r.name == "sm_async_nb.notebook.panel.loop" and r.exc_info for r in caplog.records)
    loop.post(ActionDone("fine"))
    assert loop.flush(10) and drawn[-1].message == "fine"
    loop.close()
