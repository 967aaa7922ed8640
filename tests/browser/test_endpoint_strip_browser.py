"""Endpoint awareness in a real browser (SPEC §10, issue 16): an endpoint at 0 instances with no
scale-from-zero policy, one request waiting on it; the panel's endpoint strip shows the instances
and the warning, and the pending row counts down to its expiry, while no cell runs."""

from __future__ import annotations

import re
import time
import uuid

from labkit import (
    EXPIRES,
    LABEL,
    STATUS,
    notebook,
    open_notebook,
    run_all_from_menu,
    snapshot,
    step,
    write_notebook,
)

CELLS = [
    "import sm_async_nb as sma\n"
    "stack = sma.LocalStack(min_instances=0, scale_out_seconds=None).start()\n"
    "client = stack.client()",
    "waiting = client.submit(stack.endpoint_name, '5.1,3.5,1.4,0.2', label='waiting',\n"
    "                        request_ttl_seconds=300, invocation_timeout_seconds=60)\n"
    "client.tracker.start()",
    "client.panel()",
]
DURATION = re.compile(r"^(\d+h )?(\d+m )?\d+ ?s$|^\d+h \d+m$|^\d+m \d+s$")


def test_the_endpoint_strip_and_an_expiry_countdown_render(lab_server, page):
    name = write_notebook(lab_server.root, "strip.ipynb", CELLS)
    open_notebook(page, lab_server.page_url(f"/lab/workspaces/strip-{uuid.uuid4().hex[:8]}/tree/{name}?reset"))
    step(page, "run all")
    run_all_from_menu(page)
    strip = notebook(page).locator(".sm-async-panel .sm-async-endpoints")
    deadline = time.monotonic() + 150
    while True:
        snap = snapshot(page)
        ours = [r for r in snap["rows"] if r[LABEL] == "waiting"]
        text = strip.inner_text() if strip.count() else ""
        if ours and "nothing scales it out from zero" in text and ours[0][EXPIRES] and "[*]:" not in snap["prompts"]:
            break  # drawn, and the cells have all finished (under load the last one may still be replying)
        assert time.monotonic() < deadline, f"no strip warning / countdown: strip {text!r}, rows {snap['rows']}"
        page.wait_for_timeout(250)
    assert not snap["errors"], snap["errors"]
    assert "local-async" in text and "instances 0/0" in text, text
    assert ours[0][STATUS] == "PENDING"  # waiting, never marked failed
    first = ours[0][EXPIRES]
    assert DURATION.match(first) and first != "overdue", first
    prompts = snap["prompts"]
    # It counts down while no cell runs (the tracker's refresh redraws the row).
    later = first
    deadline = time.monotonic() + 30
    while later == first and time.monotonic() < deadline:
        page.wait_for_timeout(500)
        later = next(r[EXPIRES] for r in snapshot(page)["rows"] if r[LABEL] == "waiting")
    assert later != first and DURATION.match(later), (first, later)
    assert snapshot(page)["prompts"] == prompts, "a cell ran meanwhile"
    assert page.dialogs == [], page.dialogs
