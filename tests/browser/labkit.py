"""What the browser tests share: where the checkout and the artifacts are, and how a test drives and
reads a notebook page in JupyterLab or Notebook 7 (open it and wait for its kernel, Run All, one
consistent snapshot of the page, screenshots, a notebook written for a test, the table's fit in its
output area)."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts" / "browser"
KERNEL_READY_S = 90      # first kernel start on a cold 2-core machine

# One consistent snapshot of the visible notebook: kernel state, prompts and the panel's rows.
SNAPSHOT_JS = """() => {
  const panel = [...document.querySelectorAll('.jp-NotebookPanel')].find(e => e.checkVisibility());
  if (!panel) return null;
  const indicator = panel.querySelector('.jp-Notebook-ExecutionIndicator');
  const kernel = panel.querySelector('[data-jp-item-name="kernelName"]');
  const prompts = [...panel.querySelectorAll('.jp-CodeCell .jp-InputPrompt')].map(e => e.innerText.trim());
  const rows = [...panel.querySelectorAll('.sm-async-panel .sm-async-row')].filter(e => e.checkVisibility())
      .map(r => [...r.children].slice(1).map(c => c.innerText.trim()));
  return {status: indicator ? indicator.dataset.status : null, kernel: kernel ? kernel.innerText.trim() : null,
          prompts, rows, panels: panel.querySelectorAll('.sm-async-panel').length,
          errors: [...panel.querySelectorAll('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')]
              .map(e => e.innerText.trim().slice(0, 500))};
}"""

KERNEL_READY_JS = """() => {
  const panel = [...document.querySelectorAll('.jp-NotebookPanel')].find(e => e.checkVisibility());
  const indicator = panel && panel.querySelector('.jp-Notebook-ExecutionIndicator');
  const kernel = panel && panel.querySelector('[data-jp-item-name="kernelName"]');
  return !!(indicator && kernel && indicator.dataset.status === 'idle' && /Python/.test(kernel.innerText));
}"""

# Row columns after the checkbox (see sm_async_nb/notebook/panel/table.py COLUMNS).
LABEL, ENDPOINT, IDENT, STATUS, SUBMITTED, TIMING, EXPIRES, SIZE = range(8)


def shot(target, name: str) -> str:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    target.screenshot(path=str(path))
    return str(path)


def step(page, name: str) -> None:
    """A marker in the saved console log, so browser messages can be placed against test steps."""
    page.console_messages.append(f"--- test step: {name}")


def notebook(page):
    return page.locator(".jp-NotebookPanel:visible")


def wait_kernel_ready(page, kernel_sockets: list[str]) -> None:
    """The indicator reads idle before any kernel exists, so also wait for the kernel's name in the
    toolbar and for the kernel's websocket to be open."""
    deadline = time.monotonic() + KERNEL_READY_S
    page.wait_for_function(KERNEL_READY_JS, timeout=KERNEL_READY_S * 1000, polling=100)
    while not kernel_sockets:
        assert time.monotonic() < deadline, "no kernel websocket was opened by the page"
        page.wait_for_timeout(100)
    page.wait_for_function(KERNEL_READY_JS, timeout=KERNEL_READY_S * 1000, polling=100)


def open_notebook(page, url: str) -> list[str]:
    sockets: list[str] = []
    page.on("websocket", lambda ws: sockets.append(ws.url) if "/api/kernels/" in ws.url else None)
    page.goto(url)
    notebook(page).wait_for(timeout=60_000)
    wait_kernel_ready(page, sockets)
    return sockets


def run_all_from_menu(page) -> None:
    """Run → "Run All Cells", matched exactly ("Restart Kernel and Run All Cells…" also contains it)."""
    page.locator(".lm-MenuBar-item", has_text=re.compile(r"^\s*Run\s*$")).click()
    item = page.locator(".lm-Menu:visible .lm-Menu-item").filter(
        has=page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")))
    try:
        item.wait_for(timeout=10_000)  # strict: fails if more than one item matches
    except Exception as exc:
        raise AssertionError(f"the Run menu has no single item labelled exactly 'Run All Cells': {exc}") from None
    item.click()


def write_notebook(root, name: str, sources: list[str]) -> str:
    """A notebook of these code cells (no outputs) in the server's root; returns its name."""
    cells = [{"cell_type": "code", "metadata": {}, "source": code, "outputs": [], "execution_count": None}
             for code in sources]
    (root / name).write_text(json.dumps({
        "cells": cells, "nbformat": 4, "nbformat_minor": 5,
        "metadata": {"kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python",
                                    "name": "python3"}, "language_info": {"name": "python"}}}))
    return name


def snapshot(page) -> dict:
    snap = page.evaluate(SNAPSHOT_JS)
    assert snap is not None, "no visible notebook panel"
    return snap


# The geometry of the panel's table against the output area it is shown in.
FIT_JS = """() => {
  const panel = document.querySelector('.jp-NotebookPanel .sm-async-panel');
  const area = panel.closest('.jp-OutputArea-output');
  const box = area.getBoundingClientRect();
  const cells = [...panel.querySelectorAll('.sm-async-head > *')].map(c => {
    const r = c.getBoundingClientRect();
    const style = getComputedStyle(c);
    const text = c.matches('button') ? c : c.querySelector('button') || c;
    return {cls: c.className, left: r.left, right: r.right, width: r.width, shown: style.display !== 'none',
            cut: text.scrollWidth > text.clientWidth + 1, text: (c.innerText || '').trim()};
  });
  const rows = [...panel.querySelectorAll('.sm-async-row')].filter(r => r.checkVisibility())
      .map(r => Math.max(...[...r.children].filter(c => getComputedStyle(c).display !== 'none')
                               .map(c => c.getBoundingClientRect().right)));
  // Values cut short, but for labels and endpoint names (those end in "…" by design, whole in a tooltip).
  const cutValues = [...panel.querySelectorAll('.sm-async-row .sm-async-cell')]
      .filter(c => c.checkVisibility() && !/sm-async-col-(label|endpoint)/.test(c.className))
      .map(c => c.matches('button') ? c : c.querySelector('button, span') || c)
      .filter(e => e.scrollWidth > e.clientWidth + 1 || e.getBoundingClientRect().right >
                   e.closest('.sm-async-cell').getBoundingClientRect().right + 1)
      .map(e => (e.innerText || '').trim());
  const browser = document.querySelector('#filebrowser');
  return {areaLeft: box.left, areaRight: box.right, areaWidth: box.width, cells, rowRights: rows, cutValues,
          fileBrowser: !!(browser && browser.checkVisibility() && browser.getBoundingClientRect().width > 100)};
}"""


def measure_fit(page, target_width: int) -> dict:
    """Resize the window so the output area is ``target_width`` px wide; its geometry then."""
    for _ in range(4):
        fit = page.evaluate(FIT_JS)
        if abs(fit["areaWidth"] - target_width) <= 4:
            break
        size = page.viewport_size
        page.set_viewport_size({"width": int(size["width"] + target_width - fit["areaWidth"]), "height": size["height"]})
        page.wait_for_timeout(700)
    return page.evaluate(FIT_JS)
