"""The panel in a real browser: JupyterLab (and Notebook 7) in Debian's Chromium, driven by Playwright.

The quickstart notebook is opened through a fresh workspace and run from the Run menu; then the
test only watches the page: rows of the ``iris-40`` batch turn from PENDING to COMPLETED while no
cell runs, the panel's own checkboxes and buttons load a DataFrame into the kernel, a failed
row's reason is shown, and XSS probes in labels and failure reasons render as text and run nothing.

Screenshots go to ``test-artifacts/browser/``. ``docs/panel.png`` (the README's picture) is
written when it is missing or when ``UPDATE_PANEL_SCREENSHOT=1``, so a test run does not dirty
the checkout with a new PNG every time.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
import uuid
from dataclasses import dataclass, field

from labkit import (
    ENDPOINT,
    IDENT,
    LABEL,
    REPO,
    STATUS,
    measure_fit,
    notebook,
    open_notebook,
    run_all_from_menu,
    shot,
    snapshot,
    step,
)

QUICKSTART = "quickstart.ipynb"
CODE_CELLS = sum(c["cell_type"] == "code" for c in json.loads((REPO / "notebooks" / QUICKSTART).read_text())["cells"])
RUN_ALL_S = 120          # %sm_async local start + first-flowers + the batch
COMPLETE_S = 60          # rows turning COMPLETED after the run
IMG_PROBE_LABEL = "<img src=x onerror=alert(1)>"
IMG_PROBE_BODY = "<img src=x onerror=alert(2)>"
SCRIPT_PROBE_LABEL = "</table><script>window.__xss=1</script>"
SCRIPT_PROBE_BODY = "</table><script>window.__xss=2</script>"
PROBE_WORDS = ("alert(", "onerror", "__xss", "<img", "<script")


@dataclass
class Watch:
    """What the test saw of each row (keyed by its short inference id), in page time order."""

    seen: dict[str, list[tuple[float, str]]] = field(default_factory=dict)

    def record(self, rows: list[list[str]], now: float) -> None:
        for row in rows:
            history = self.seen.setdefault(row[IDENT], [])
            if not history or history[-1][1] != row[STATUS]:
                history.append((now, row[STATUS]))


def run_finished(snap: dict) -> bool:
    return snap["status"] == "idle" and all(re.fullmatch(r"\[\d+\]:", p) for p in snap["prompts"])


def watch_batch_complete(page, label: str, expect_rows: int, pending_shot: str, done_shot: str | None) -> dict:
    """Watch the page after "Run All": the panel appears, rows of ``label`` show PENDING, the run
    ends, and then those rows turn COMPLETED while no cell runs (execution counts unchanged)."""
    watch = Watch()
    panel = notebook(page).locator(".sm-async-panel")
    start = time.monotonic()
    panel_at: float | None = None
    pending_shot_taken = False
    finished_at: float | None = None
    prompts_at_finish: list[str] = []
    stopped_since: float | None = None
    while True:
        snap = snapshot(page)
        now = time.monotonic() - start
        if panel_at is None and snap["panels"]:
            panel_at = now
        ours = [r for r in snap["rows"] if r[LABEL] == label]
        watch.record(ours, now)
        if not pending_shot_taken and any(r[STATUS] == "PENDING" for r in ours):
            shot(panel, pending_shot)
            pending_shot_taken = True
        if finished_at is None and run_finished(snap):
            finished_at, prompts_at_finish = now, snap["prompts"]
            assert len(prompts_at_finish) == CODE_CELLS, f"expected {CODE_CELLS} code cells: {prompts_at_finish}"
        if (finished_at is not None and len(ours) == expect_rows
                and all(r[STATUS] == "COMPLETED" for r in ours)):
            break
        # "Run All" stops at a failing cell: say so now instead of waiting for the panel.
        stopped = (snap["status"] == "idle" and "[*]:" not in snap["prompts"]
                   and any(re.fullmatch(r"\[\d+\]:", p) for p in snap["prompts"]) and not run_finished(snap))
        stopped_since = (stopped_since or now) if stopped else None
        assert stopped_since is None or now - stopped_since < 3, (
            f"Run All stopped before the end: prompts {snap['prompts']}; errors: {snap['errors']}")
        assert panel_at is not None or now < RUN_ALL_S, (
            f"the panel (.sm-async-panel) did not appear within {RUN_ALL_S} s; notebook state: {snap}")
        assert finished_at is not None or now < RUN_ALL_S, (
            f"Run All did not finish within {RUN_ALL_S} s; prompts: {snap['prompts']}; errors: {snap['errors']}")
        assert finished_at is None or now - finished_at < COMPLETE_S, (
            f"rows of {label!r} did not all turn COMPLETED within {COMPLETE_S} s of the run's end; "
            f"last rows: {ours}; history: {watch.seen}; prompts: {snap['prompts']}; errors: {snap['errors']}")
        page.wait_for_timeout(100)
    assert pending_shot_taken, f"no {label!r} row was ever seen PENDING; history: {watch.seen}"
    # The proof that the page updates by itself: a row was still PENDING after the last cell had
    # finished, and turned COMPLETED later, while the execution counts did not move.
    turned_later = [ident for ident, history in watch.seen.items()
                    if any(t >= finished_at and status == "COMPLETED" for t, status in history)
                    and any(status == "PENDING" for _, status in history)]
    assert turned_later, (f"no {label!r} row turned COMPLETED after the run had finished at {finished_at:.1f} s; "
                          f"history (s since Run All): {watch.seen}")
    final = snapshot(page)
    assert final["prompts"] == prompts_at_finish and final["status"] == "idle", (
        f"a cell ran while waiting for the rows: prompts {prompts_at_finish} -> {final['prompts']}")
    if done_shot:
        shot(panel, done_shot)
    return {"history": watch.seen, "panel_at": panel_at, "run_finished_at": finished_at, "completed_at": now}


def add_cell_and_run(page, code: str, marker: str, timeout_s: float = 60) -> str:
    """Insert a code cell at the end of the notebook (command mode "b"), type ``code`` and run it
    with Shift+Enter; return the text of its output once its execution count is shown."""
    nb = notebook(page)
    cells = nb.locator(".jp-Notebook .jp-Cell")
    before = cells.count()
    cells.last.locator(".jp-InputArea-editor").click()
    page.keyboard.press("Escape")
    page.keyboard.press("b")
    expect_count(cells, before + 1, timeout_s=10)
    new = cells.last
    new.locator(".jp-InputArea-editor").click()
    page.keyboard.insert_text(code)
    # Match on the input only: the panel's output (in another cell) may show the same text.
    cell = nb.locator(".jp-Notebook .jp-CodeCell").filter(has=page.locator(".jp-InputArea", has_text=marker))
    assert cell.count() == 1, f"expected one cell whose input has {marker!r}, found {cell.count()}"
    page.keyboard.press("Shift+Enter")
    prompt = cell.locator(".jp-InputPrompt")
    deadline = time.monotonic() + timeout_s
    while not re.fullmatch(r"\[\d+\]:", prompt.inner_text().strip()):
        assert time.monotonic() < deadline, f"the cell {marker!r} did not finish in {timeout_s:.0f} s"
        page.wait_for_timeout(100)
    return cell.locator(".jp-OutputArea").inner_text()


def panel_row(panel, label: str):
    """Rows whose label cell is exactly ``label`` (a Label widget: its text is the label)."""
    return panel.locator(".sm-async-row").filter(
        has=panel.page.locator(".widget-label", has_text=re.compile(rf"^{re.escape(label)}$")))


def wait_row_status(page, label: str, status: str, timeout_s: float = COMPLETE_S) -> list[list[str]]:
    deadline = time.monotonic() + timeout_s
    while True:
        rows = [r for r in snapshot(page)["rows"] if r[LABEL] == label]
        if rows and all(r[STATUS] == status for r in rows):
            return rows
        assert time.monotonic() < deadline, f"row labelled {label!r} never showed {status}; rows: {rows}"
        page.wait_for_timeout(100)


def expect_count(locator, count: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while locator.count() < count:
        assert time.monotonic() < deadline, f"fewer than {count} of {locator} after {timeout_s:.0f} s"
        locator.page.wait_for_timeout(100)


def button(panel, text: str):
    return panel.locator("button.widget-button").filter(has_text=re.compile(rf"^\s*{re.escape(text)}\s*$"))


def write_docs_screenshot(source: str) -> None:
    target = REPO / "docs" / "panel.png"
    if not target.exists() or os.environ.get("UPDATE_PANEL_SCREENSHOT") == "1":
        target.parent.mkdir(exist_ok=True)
        shutil.copyfile(source, target)


def test_panel_in_jupyterlab(lab_server, page):
    timings: dict[str, float] = {}
    t0 = time.monotonic()
    url = lab_server.page_url(f"/lab/workspaces/browser-{uuid.uuid4().hex[:8]}/tree/{QUICKSTART}?reset")
    open_notebook(page, url)
    timings["kernel ready"] = time.monotonic() - t0
    step(page, "run all")
    run_all_from_menu(page)

    # 1-2. The panel appears; iris-40 goes PENDING -> COMPLETED with no other cell run.
    seen = watch_batch_complete(page, "iris-40", 4, "lab-1-pending.png", "lab-2-completed.png")
    timings["rows completed"] = time.monotonic() - t0
    nb = notebook(page)
    panel = nb.locator(".sm-async-panel")
    assert panel.count() == 1, f"expected one panel in the notebook, found {panel.count()}"
    assert panel.is_visible(), "the panel is not visible"
    rows = snapshot(page)["rows"]
    assert {r[LABEL] for r in rows} == {"first-flowers", "iris-40"}, rows
    assert all(r[ENDPOINT] == "local-async" for r in rows), rows

    # 3. Select the iris-40 rows with their checkboxes; Load into a variable named in the panel.
    step(page, "select and load")
    iris_rows = panel_row(panel, "iris-40")
    assert iris_rows.count() == 4, f"expected 4 iris-40 rows, found {iris_rows.count()}"
    for i in range(4):
        iris_rows.nth(i).locator("input[type=checkbox]").check()
    panel.get_by_text("4 selected", exact=True).wait_for(timeout=10_000)
    var = panel.locator(".widget-text").filter(has_text="into").locator("input")
    var.fill("scored_from_panel")
    button(panel, "Load").click()
    message = panel.get_by_text(re.compile(r"^scored_from_panel: DataFrame with 40 rows × 2 columns"))
    try:
        message.wait_for(timeout=30_000)
    except Exception:
        raise AssertionError(f"Load did not report the DataFrame; panel text:\n{panel.inner_text()}") from None
    shot(panel, "lab-3-loaded.png")
    write_docs_screenshot(shot(panel, "panel.png"))
    step(page, "add the LOAD-OK cell")
    output = add_cell_and_run(
        page, "assert scored_from_panel.shape == (40, 2); print('LOAD-OK', scored_from_panel.shape)", "LOAD-OK")
    assert "LOAD-OK (40, 2)" in output, f"the kernel does not have the loaded DataFrame; cell output:\n{output}"
    timings["loaded"] = time.monotonic() - t0

    # 4. Failed rows show their reason; probes in labels and bodies render as text.
    step(page, "submit the probes")
    add_cell_and_run(page, f"%%invoke_async local-async --label '{IMG_PROBE_LABEL}'\n{IMG_PROBE_BODY},1,2,3\n",
                     "alert(1)")
    add_cell_and_run(page, f"%%invoke_async local-async --label '{SCRIPT_PROBE_LABEL}'\n{SCRIPT_PROBE_BODY},1,2,3\n",
                     "__xss=1")
    wait_row_status(page, IMG_PROBE_LABEL, "FAILED")
    wait_row_status(page, SCRIPT_PROBE_LABEL, "FAILED")
    img_row, script_row = panel_row(panel, IMG_PROBE_LABEL), panel_row(panel, SCRIPT_PROBE_LABEL)
    assert img_row.count() == 1 and script_row.count() == 1, "the probe labels are not shown as literal text"
    assert IMG_PROBE_LABEL in img_row.inner_text() and SCRIPT_PROBE_LABEL in script_row.inner_text()
    step(page, "select the failed rows, show their reasons")
    button(panel, "Clear selection").click()
    panel.get_by_text("Nothing selected", exact=False).wait_for(timeout=10_000)
    img_row.locator("input[type=checkbox]").check()
    script_row.locator("input[type=checkbox]").check()
    panel.get_by_text("2 selected", exact=True).wait_for(timeout=10_000)
    button(panel, "Failure reason").click()
    details = panel.locator(".sm-async-details")
    reasons = details.locator("pre")
    try:
        expect_count(reasons, 2, timeout_s=15)
    except AssertionError:
        raise AssertionError(f"the two failure reasons were not shown; panel text:\n{panel.inner_text()}") from None
    details.scroll_into_view_if_needed()
    assert reasons.nth(0).is_visible() and reasons.nth(1).is_visible(), "the failure reasons are not visible"
    shot(panel, "lab-4-failure-reasons.png")
    timings["failure reasons"] = time.monotonic() - t0

    # 5. Nothing ran: no element was made from the probes, no dialog, no console trace, no global.
    assert page.locator('img[src="x"]').count() == 0, "an <img src=x> element was created from a probe"
    assert panel.locator("script").count() == 0, "a <script> element was created inside the panel"
    assert page.evaluate("typeof window.__xss") == "undefined", "a probe's <script> ran (window.__xss is set)"
    assert page.dialogs == [], f"a dialog was opened: {page.dialogs}"
    # ... and the probes are there as text: the model's message quoting the bad value, and the labels.
    text = details.inner_text()
    assert f"{IMG_PROBE_BODY!r} is not a number" in text, f"the model's message is not shown as text:\n{text}"
    assert f"{SCRIPT_PROBE_BODY!r} is not a number" in text, f"the second failure reason is missing:\n{text}"
    assert IMG_PROBE_LABEL in text and SCRIPT_PROBE_LABEL in text, f"labels missing from the reasons:\n{text}"
    leaked = [m for m in page.console_messages if any(word in m for word in PROBE_WORDS)]
    assert not leaked, f"console messages mention the probes: {leaked}"
    shot(page, "lab-5-page.png")
    timings["total"] = time.monotonic() - t0
    print("\nJupyterLab timings (s):", {k: round(v, 1) for k, v in timings.items()}, "\nrows (s after Run All):", seen)


def test_panel_in_notebook7(lab_server, page):
    """Notebook 7 is served by the same jupyter_server (the `notebook` package's extension)."""
    t0 = time.monotonic()
    open_notebook(page, lab_server.page_url(f"/notebooks/{QUICKSTART}"))
    assert "/notebooks/" in page.url, f"not the Notebook 7 UI: {page.url}"
    assert page.locator(".jp-LabShell").count() == 0, "this is JupyterLab's shell, not Notebook 7"
    step(page, "run all")
    run_all_from_menu(page)
    seen = watch_batch_complete(page, "iris-40", 4, "notebook7-1-pending.png", "notebook7-2-completed.png")
    assert notebook(page).locator(".sm-async-panel").count() == 1, "expected one panel in the notebook"
    step(page, "fit")  # the table inside a 1,000 px output, and a 700 px one (VS Code's narrower outputs)
    for width, hidden in ((1000, set()), (700, {"Submitted"})):
        fit = measure_fit(page, width)
        shown = [c for c in fit["cells"] if c["shown"]]
        assert {c["text"].rstrip(" ▲▼") for c in fit["cells"] if not c["shown"]} == hidden, fit["cells"]
        assert all(c["right"] <= fit["areaRight"] + 1 for c in shown) and not [c for c in shown if c["cut"]], fit
        assert max(fit["rowRights"]) <= fit["areaRight"] + 1 and not fit["cutValues"], fit
        shot(notebook(page).locator(".sm-async-panel"), f"notebook7-fit-{width}.png")
    assert page.dialogs == [], f"a dialog was opened: {page.dialogs}"
    print(f"\nNotebook 7: rows completed {time.monotonic() - t0:.1f} s after opening;", seen)
