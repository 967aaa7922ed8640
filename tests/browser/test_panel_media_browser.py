"""Seeing results in a real browser (SPEC §18, issue 25): JupyterLab in Chromium runs a notebook on
the local stack with the media demo model (notebooks/models/media.py: PNG images and WAV audio made
in code). Then, with no cell running: an image row's details show an ``<img>`` that decoded, an
audio row's details an ``<audio>`` player that read the WAV's duration, and the Activity toggle
draws charts of non-zero size; in the light theme and again after switching to the dark one, whose
chart text is light on the dark page. ``inv.show()`` and ``batch.show()`` outputs show their images.

Fit: with the file browser open and the cell output about 1,000 px wide, every column of the table
lies inside the output area and no header is cut; at 620 px the least needed columns are hidden
and the others still fit.

The README's picture is ``docs/panel-media.png`` (written when missing or UPDATE_PANEL_SCREENSHOT=1).
"""

from __future__ import annotations

import os
import re
import shutil
import time
import uuid

from labkit import (
    FIT_JS,
    REPO,
    measure_fit,
    notebook,
    open_notebook,
    run_all_from_menu,
    shot,
    snapshot,
    step,
    write_notebook,
)

RUN_S = 180
CELLS = [
    "import sm_async_nb as sma\n"
    "stack = sma.LocalStack(model='models/media.py', endpoint_name='local-media', concurrency=2).start()\n"
    "client = stack.client()",
    "picture = client.submit('local-media', {'kind': 'image', 'width': 160, 'height': 120, 'seed': 2}, "
    "label='picture')\n"
    "sound = client.submit('local-media', {'kind': 'audio', 'frequency': 330, 'seconds': 0.8}, label='sound')\n"
    "rings = [{'kind': 'image', 'width': 48, 'height': 48, 'seed': i, 'delay': 0.4 * (i % 4)} for i in range(7)]\n"
    "batch = client.submit_many('local-media', [*rings, {'kind': 'image', 'width': 99999}], label='rings')\n"
    "picture.wait(90); sound.wait(90); batch.wait(90); print('MEDIA-DONE')",
    "picture.show()",
    "batch.show()",
    "panel = client.panel()\npanel",
]

# The rendered media and charts, and the colours they are drawn in.
MEDIA_JS = """() => {
  const panel = document.querySelector('.jp-NotebookPanel .sm-async-panel');
  const details = panel.querySelector('.sm-async-row-details');
  const img = details && details.querySelector('img');
  const audio = details && details.querySelector('audio');
  const charts = [...panel.querySelectorAll('.sm-async-activity svg')].map(s => {
    const r = s.getBoundingClientRect(); return {w: r.width, h: r.height, cls: s.getAttribute('class')};
  });
  const text = panel.querySelector('.sm-async-activity svg text');
  const mean = v => v.reduce((a, b) => a + b, 0) / (v.length || 1);
  const rgb = c => (c.match(/\\d+/g) || []).slice(0, 3).map(Number);
  const page = document.querySelector('.jp-NotebookPanel .jp-Notebook');
  return {img: img ? {w: img.naturalWidth, h: img.naturalHeight, shown: img.getBoundingClientRect().width} : null,
          audio: audio ? {duration: audio.duration, controls: audio.controls, paused: audio.paused} : null,
          charts, chartText: text ? mean(rgb(getComputedStyle(text).fill)) : null,
          background: page ? mean(rgb(getComputedStyle(page).backgroundColor)) : null,
          light: document.body.dataset.jpThemeLight};
}"""


def wait_for(page, what: str, check, timeout_s: float):
    deadline = time.monotonic() + timeout_s
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, f"{what} within {timeout_s:.0f} s"
        page.wait_for_timeout(150)


def open_row(panel, label: str) -> None:
    row = panel.locator(".sm-async-row").filter(
        has=panel.page.locator(".widget-label", has_text=re.compile(rf"^{re.escape(label)}$")))
    row.locator("button.sm-async-open").first.click()


def check_media_and_charts(page, panel, theme: str) -> dict:
    step(page, f"{theme}: image details")
    open_row(panel, "picture")
    seen = wait_for(page, f"{theme}: the picture's <img> did not decode",
                    lambda: (lambda m: m if m["img"] and m["img"]["w"] == 160 else None)(page.evaluate(MEDIA_JS)), 30)
    assert seen["img"]["h"] == 120 and seen["img"]["shown"] > 0, seen
    picture = shot(panel, f"media-{theme}-image.png")
    step(page, f"{theme}: audio details")
    open_row(panel, "sound")
    seen = wait_for(page, f"{theme}: the sound's <audio> did not load its metadata",
                    lambda: (lambda m: m if m["audio"] and m["audio"]["duration"] > 0 else None)(page.evaluate(MEDIA_JS)),
                    30)
    assert abs(seen["audio"]["duration"] - 0.8) < 0.05 and seen["audio"]["controls"] and seen["audio"]["paused"], seen
    assert seen["img"] is None, "the image player still shows after opening an audio row"
    step(page, f"{theme}: activity")
    toggle = panel.locator(".sm-async-activity-toggle")
    if "mod-active" not in (toggle.get_attribute("class") or ""):
        toggle.click()
    seen = wait_for(page, f"{theme}: the activity charts did not draw",
                    lambda: (lambda m: m if len(m["charts"]) >= 3 else None)(page.evaluate(MEDIA_JS)), 30)
    assert all(c["w"] > 100 and c["h"] > 40 for c in seen["charts"]), seen["charts"]
    open_row(panel, "picture")
    wait_for(page, "the picture came back", lambda: page.evaluate(MEDIA_JS)["img"], 30)
    return {"picture": picture, **page.evaluate(MEDIA_JS)}


def switch_to_dark(page) -> None:
    """Settings → Theme → JupyterLab Dark, in the page (no reload: the kernel's widgets stay)."""
    page.locator(".lm-MenuBar-item", has_text=re.compile(r"^\s*Settings\s*$")).click()
    page.locator(".lm-Menu:visible .lm-Menu-item", has_text=re.compile(r"^\s*Theme")).first.hover()
    page.locator(".lm-Menu:visible .lm-Menu-item", has_text=re.compile(r"^\s*JupyterLab Dark\s*$")).click()
    wait_for(page, "the dark theme was not applied", lambda: page.evaluate(
        "() => document.body.dataset.jpThemeLight === 'false'"), 30)


def test_media_previews_activity_and_fit_in_jupyterlab(lab_server, page):
    name = write_notebook(lab_server.root, "media.ipynb", CELLS)
    open_notebook(page, lab_server.page_url(f"/lab/workspaces/media-{uuid.uuid4().hex[:8]}/tree/{name}?reset"))
    step(page, "run all")
    run_all_from_menu(page)
    done = wait_for(page, "the media notebook did not finish", lambda: (lambda s: s if s["status"] == "idle" and all(
        re.fullmatch(r"\[\d+\]:", p) for p in s["prompts"]) else None)(snapshot(page)), RUN_S)
    assert not done["errors"], done["errors"]
    nb = notebook(page)
    assert "MEDIA-DONE" in nb.inner_text()
    # inv.show() and batch.show() in cells: images as images, a gallery grid with labels.
    shows = page.evaluate("""() => [...document.querySelectorAll('.jp-NotebookPanel .sm-async-show img, '
        + '.jp-NotebookPanel .sm-async-gallery img')].map(i => [i.naturalWidth, i.closest('.sm-async-gallery') !== null])""")
    assert [w for w, in_gallery in shows if not in_gallery] == [160], shows
    assert [w for w, in_gallery in shows if in_gallery] == [48] * 7, shows
    gallery = nb.locator(".sm-async-gallery")
    assert gallery.locator("figcaption").count() == 8 and "width and height must be 1..2048" in gallery.inner_text()
    prompts = done["prompts"]
    panel = nb.locator(".sm-async-panel")

    light = check_media_and_charts(page, panel, "light")
    assert light["light"] == "true"
    page.set_viewport_size({"width": 1950, "height": 1700})  # room for the activity beside the table
    panel.scroll_into_view_if_needed()
    screenshot = shot(panel, "media-light.png")
    target = REPO / "docs" / "panel-media.png"
    if not target.exists() or os.environ.get("UPDATE_PANEL_SCREENSHOT") == "1":
        shutil.copyfile(screenshot, target)

    step(page, "dark theme")
    switch_to_dark(page)
    dark = check_media_and_charts(page, panel, "dark")
    assert dark["chartText"] > 150 > dark["background"], f"chart text does not read on the dark page: {dark}"
    shot(panel, "media-dark.png")

    # Fit: the table inside a 1,000 px output area with the file browser open, every header whole.
    step(page, "fit at 1000 px")
    if not page.evaluate(FIT_JS)["fileBrowser"]:
        page.locator('.jp-SideBar [data-id="filebrowser"]').click()
        wait_for(page, "the file browser did not open", lambda: page.evaluate(FIT_JS)["fileBrowser"], 10)
    fit = measure_fit(page, 1000)
    assert fit["fileBrowser"] and abs(fit["areaWidth"] - 1000) <= 4, fit
    shown_cells = [c for c in fit["cells"] if c["shown"]]
    assert len(shown_cells) == 9, f"a column is hidden at 1,000 px: {fit['cells']}"
    assert all(fit["areaLeft"] - 1 <= c["left"] and c["right"] <= fit["areaRight"] + 1 for c in shown_cells), fit
    assert not [c["text"] for c in shown_cells if c["cut"]], f"headers cut at 1,000 px: {shown_cells}"
    assert max(fit["rowRights"]) <= fit["areaRight"] + 1 and not fit["cutValues"], fit
    shot(panel, "fit-1000.png")
    step(page, "fit at 620 px")
    narrow = measure_fit(page, 620)
    visible = [c["text"] for c in narrow["cells"] if c["shown"]]
    assert "Submitted" not in visible and "Endpoint" not in visible and "Expires in" not in visible, narrow
    assert {"Label", "Inference id", "Status", "Output"} <= set(visible), visible
    assert all(c["right"] <= narrow["areaRight"] + 1 for c in narrow["cells"] if c["shown"]), narrow
    assert max(narrow["rowRights"]) <= narrow["areaRight"] + 1 and not narrow["cutValues"], narrow
    shot(panel, "fit-620.png")
    assert snapshot(page)["prompts"] == prompts, "a cell ran while the panel was explored"
    assert page.dialogs == [], page.dialogs
