"""The panel as an exploration surface in a real browser, in JupyterLab's dark theme: after the
cells have run, a click on a completed row's id opens its details and the output preview appears
while no cell runs; a hostile output (``</table><script>``, ``<img onerror>``) previews as text and
runs nothing; a click on a column header reorders the rows; a second click reverses them.

The screenshot of the dark panel with a row's details open is ``docs/panel-dark.png`` (the
README's picture), written when missing or when ``UPDATE_PANEL_SCREENSHOT=1``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
import uuid

from labkit import (
    LABEL,
    REPO,
    STATUS,
    notebook,
    open_notebook,
    run_all_from_menu,
    shot,
    snapshot,
    step,
    write_notebook,
)

LABELS = ("charlie", "alpha", "bravo")  # submitted in this order: the panel shows the newest first
RUN_S, COMPLETE_S, PREVIEW_S = 150, 60, 30
# A completed row whose output is hostile markup, written straight into the stack's S3.
HOSTILE_CELL = """import time
from sm_async_nb.records import InvocationRecord, Status, SubmitStep, new_inference_id
c = %sm_async client
iid, bucket, now = new_inference_id(), c.input_prefix().bucket, time.time()
body = b"name,value\\n</table><script>window.__xss=3</script>,<img src=x onerror=alert(3)>\\n"
c.aws.s3.put_object(Bucket=bucket, Key=f"hostile/{iid}.out", Body=body, ContentType="text/csv")
c.journal.add([InvocationRecord(iid, "local-async", origin=c.origin, status=Status.COMPLETED,
                                submit_step=SubmitStep.DONE, label="hostile", submitted_at=now - 60,
                                output_location=f"s3://{bucket}/hostile/{iid}.out", finished_at=now,
                                output_size=len(body))])"""
CELLS = ["%load_ext sm_async_nb", "%sm_async local start --delay 1",
         *(f"%%invoke_async local-async --label {label} --accept text/csv\n5.1,3.5,1.4,0.2\n6.7,3.0,5.2,2.3"
           for label in LABELS),
         HOSTILE_CELL, "%sm_async panel"]
DARK = "JupyterLab Dark"
# The brightness (0-255) of a panel label's text and of the notebook's background, as rendered.
COLOURS_JS = """() => {
  const rgb = e => (getComputedStyle(e).color.match(/\\d+/g) || []).slice(0, 3).map(Number);
  const bg = e => (getComputedStyle(e).backgroundColor.match(/\\d+/g) || []).slice(0, 3).map(Number);
  const mean = v => v.reduce((a, b) => a + b, 0) / (v.length || 1);
  const label = document.querySelector('.jp-NotebookPanel .sm-async-row .widget-label');
  const page = document.querySelector('.jp-NotebookPanel .jp-Notebook');
  return {light: document.body.dataset.jpThemeLight, text: label ? mean(rgb(label)) : null,
          background: page ? mean(bg(page)) : null};
}"""


def rows(page) -> list[list[str]]:
    return [r for r in snapshot(page)["rows"] if r[LABEL] in LABELS]


def wait_until(page, what: str, check, timeout_s: float):
    deadline = time.monotonic() + timeout_s
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, f"{what} within {timeout_s:.0f} s; panel rows: {rows(page)}"
        page.wait_for_timeout(100)


def test_details_preview_and_sorting_in_the_dark_theme(lab_server, page):
    lab_server.api("/lab/api/settings/@jupyterlab/apputils-extension:themes", method="PUT",
                   body={"raw": json.dumps({"theme": DARK})})
    name = write_notebook(lab_server.root, "explore.ipynb", CELLS)
    open_notebook(page, lab_server.page_url(f"/lab/workspaces/explore-{uuid.uuid4().hex[:8]}/tree/{name}?reset"))
    step(page, "run all")
    run_all_from_menu(page)

    def all_done():
        snap = snapshot(page)
        finished = snap["status"] == "idle" and all(re.fullmatch(r"\[\d+\]:", p) for p in snap["prompts"])
        ours = rows(page)
        return finished and len(ours) == 3 and all(r[STATUS] == "COMPLETED" for r in ours) and snap

    done = wait_until(page, "the run did not end with 3 COMPLETED rows", all_done, RUN_S + COMPLETE_S)
    assert not done["errors"], done["errors"]
    prompts = done["prompts"]
    assert [r[LABEL] for r in rows(page)] == ["bravo", "alpha", "charlie"]
    panel = notebook(page).locator(".sm-async-panel")
    colours = page.evaluate(COLOURS_JS)
    assert colours["light"] == "false", f"the dark theme is not applied: {colours}"
    assert colours["text"] > 150 > colours["background"], f"panel text does not read on the dark page: {colours}"

    # A click on the completed row's id: the details open, the preview follows with no cell run.
    step(page, "open details")
    alpha = panel.locator(".sm-async-row").filter(has=page.locator(".widget-label", has_text=re.compile("^alpha$")))
    alpha.locator(".sm-async-open button, button.sm-async-open").first.click()
    details = panel.locator(".sm-async-row-details")
    details.wait_for(timeout=10_000)
    preview = details.locator(".sm-async-preview")
    wait_until(page, "the preview did not show the output's rows",
               lambda: preview.locator("table td", has_text="setosa").count() > 0, PREVIEW_S)
    assert "virginica" in preview.inner_text()
    text = details.inner_text()
    assert "s3://" in text and "Latency" in text and "Submitted" in text, text
    after = snapshot(page)
    assert after["prompts"] == prompts and after["status"] == "idle", "a cell ran while the preview loaded"

    # A hostile output's preview is text: nothing made from it, nothing ran.
    step(page, "hostile preview")
    hostile = panel.locator(".sm-async-row").filter(has=page.locator(".widget-label", has_text=re.compile("^hostile$")))
    hostile.locator(".sm-async-open button, button.sm-async-open").first.click()
    wait_until(page, "the hostile preview did not show its text",
               lambda: "</table><script>window.__xss=3</script>" in preview.inner_text(), PREVIEW_S)
    assert preview.locator("script").count() == 0 and page.locator('img[src="x"]').count() == 0
    assert page.evaluate("typeof window.__xss") == "undefined", "the preview's <script> ran"
    alpha.locator(".sm-async-open button, button.sm-async-open").first.click()
    wait_until(page, "alpha's preview did not come back (from the cache)",
               lambda: preview.locator("table td", has_text="setosa").count() > 0, PREVIEW_S)

    # A click on the Label header sorts by label; a second click reverses the order.
    step(page, "sort")
    head = panel.locator(".sm-async-sort-label button, button.sm-async-sort-label").first
    head.click()
    wait_until(page, "the rows were not sorted by label",
               lambda: [r[LABEL] for r in rows(page)] == ["alpha", "bravo", "charlie"], 10)
    head.click()
    wait_until(page, "the label order was not reversed",
               lambda: [r[LABEL] for r in rows(page)] == ["charlie", "bravo", "alpha"], 10)
    assert "▼" in head.inner_text()
    assert snapshot(page)["prompts"] == prompts, "a cell ran while sorting"
    page.set_viewport_size({"width": 1700, "height": 1500})  # the whole panel in one picture
    panel.scroll_into_view_if_needed()
    picture = shot(panel, "explore-dark.png")
    target = REPO / "docs" / "panel-dark.png"
    if not target.exists() or os.environ.get("UPDATE_PANEL_SCREENSHOT") == "1":
        shutil.copyfile(picture, target)
    assert page.dialogs == [], page.dialogs
