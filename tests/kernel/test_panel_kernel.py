"""The panel in a real ipykernel: invocations complete AFTER the cell that displayed the panel has
finished, and the kernel sends the row updates on its own (iopub comm_msg), with no cell running.

The moto server (the ``moto_server`` fixture) plays S3; the kernel reaches it through
AWS_ENDPOINT_URL_S3. The test process writes the output objects over HTTP, then only listens.
"""

from __future__ import annotations

import json
import queue
import textwrap
import time

import boto3


def listen_for_completed(kernel, comm_ids: set[str], timeout: float = 90) -> tuple[set[str], set[str]]:
    """Only listen (no cell runs) until each of ``comm_ids`` was sent a value showing COMPLETED;
    returns those that were, and every iopub message type seen meanwhile."""
    completed: set[str] = set()
    seen_types: set[str] = set()
    deadline = time.time() + timeout
    while completed != comm_ids and time.time() < deadline:
        try:
            msg = kernel.client.get_iopub_msg(timeout=0.5)
        except queue.Empty:
            continue
        seen_types.add(msg["msg_type"])
        content = msg["content"]
        if msg["msg_type"] == "comm_msg" and content["comm_id"] in comm_ids:
            if ">COMPLETED<" in content["data"].get("state", {}).get("value", ""):
                completed.add(content["comm_id"])
    return completed, seen_types


SETUP = textwrap.dedent("""
    import json, time
    import sm_async_nb as sma
    from sm_async_nb.records import InvocationRecord, Status, SubmitStep, new_inference_id

    client = sma.AsyncInferenceClient("s3://out/inputs/", journal_path="journal.sqlite3")
    client.settings.poll_interval = 0.3
    now = time.time()
    rows = []
    for i in range(3):
        iid = new_inference_id(now + i / 1000)
        rows.append(InvocationRecord(
            iid, "ep", origin=client.origin, status=Status.PENDING, submit_step=SubmitStep.DONE,
            label=f"<b>kernel-{i}</b>", output_location=f"s3://out/outputs/{iid}.out",
            failure_location=f"s3://out/failures/{iid}-error.out", submitted_at=now, invoked_at=now))
    client.journal.add(rows)
    panel = client.panel()
    display(panel)
    print(json.dumps([r.output_location.split("/", 3)[3] for r in rows]))
""")

CHECK = textwrap.dedent("""
    # The rows were seen COMPLETED; the header and progress bar are drawn in the same turn of the
    # panel's loop: wait for that turn to end.
    assert panel.loop.flush()
    w, table = panel.view.w, panel.view.table
    shown = [s.status.value for s in table.slots if s.inference_id]
    assert len(shown) == 3 and all(">COMPLETED<" in v for v in shown), shown
    assert "completed 3" in w.counts.value, w.counts.value
    assert w.progress.value == 3 and w.progress.bar_style == "success"
    assert client.tracker.running
    print(json.dumps({"labels": [s.label.value for s in table.slots if s.inference_id],
                      "refreshes": client.tracker.stats.refreshes}))
    panel.close()
    client.close()
""")


def test_rows_turn_completed_while_no_cell_runs(kernel, moto_server):
    s3 = boto3.client("s3", endpoint_url=moto_server, region_name="us-east-1")
    s3.create_bucket(Bucket="out")

    setup = kernel.execute(SETUP)
    messages = setup.messages
    keys = json.loads(setup.stdout.strip().splitlines()[-1])
    views = [m for m in messages if m["msg_type"] == "display_data"
             and "application/vnd.jupyter.widget-view+json" in m["content"]["data"]]
    assert len(views) == 1
    opened: dict[str, dict] = {}  # widget state as the frontend would hold it after the cell
    for m in messages:
        if m["msg_type"] == "comm_open":
            opened[m["content"]["comm_id"]] = dict(m["content"]["data"]["state"])
        elif m["msg_type"] == "comm_msg" and m["content"]["comm_id"] in opened:
            opened[m["content"]["comm_id"]].update(m["content"]["data"].get("state", {}))
    status_cells = {cid for cid, state in opened.items()
                    if state.get("_model_name") == "HTMLModel" and ">PENDING<" in state.get("value", "")}
    assert len(status_cells) == 3
    # The label is outside text: it travels as Label text, never inside an HTML value.
    assert not any("<b>kernel" in s.get("value", "") for s in opened.values() if s.get("_model_name") == "HTMLModel")

    # The cell is finished. Complete the invocations from outside the kernel...
    for key in keys:
        s3.put_object(Bucket="out", Key=key, Body=b"0.5\n", ContentType="text/csv")

    # ...and only listen: the tracker thread must push the new row state by itself.
    completed, seen_types = listen_for_completed(kernel, status_cells)
    assert completed == status_cells, f"only {len(completed)} of 3 rows updated; saw {seen_types}"
    assert "execute_input" not in seen_types  # no cell ran meanwhile

    summary = json.loads(kernel.execute(CHECK).stdout.strip().splitlines()[-1])
    assert sorted(summary["labels"]) == [f"<b>kernel-{i}</b>" for i in range(3)]
    assert summary["refreshes"] >= 1


RESHOW = textwrap.dedent("""
    import json, time
    from sm_async_nb.records import InvocationRecord, Status, SubmitStep, new_inference_id
    %load_ext sm_async_nb
    %config SageMakerAsync.s3_input_path = "s3://out/inputs/"
    %config SageMakerAsync.journal_path = "journal.sqlite3"
    %config SageMakerAsync.poll_interval = 0.3
    client = %sm_async client
    now = time.time()
    iid = new_inference_id(now)
    client.journal.add([InvocationRecord(iid, "ep", origin=client.origin, status=Status.PENDING,
                        submit_step=SubmitStep.DONE, label="<b>live</b>", output_location=f"s3://out/outputs/{iid}.out",
                        failure_location=f"s3://out/failures/{iid}-error.out", submitted_at=now, invoked_at=now)])
    before = client.tracker.bus.listener_count
    print(json.dumps({"key": f"outputs/{iid}.out", "iid": iid}))
""")


def _widget_views(messages: list[dict]) -> list[str]:
    return [m["content"]["data"]["application/vnd.jupyter.widget-view+json"]["model_id"] for m in messages
            if m["msg_type"] in ("display_data", "execute_result")
            and "application/vnd.jupyter.widget-view+json" in m["content"]["data"]]


def test_panel_is_shown_again_and_a_handle_is_a_live_status_line(kernel, moto_server):
    s3 = boto3.client("s3", endpoint_url=moto_server, region_name="us-east-1")
    s3.create_bucket(Bucket="out")
    made = json.loads(kernel.execute(RESHOW).stdout.strip().splitlines()[-1])
    first = _widget_views(kernel.execute("%sm_async panel").messages)
    second = _widget_views(kernel.execute("%sm_async panel").messages)
    assert len(first) == 1 and first == second  # the same panel's root box, not a new copy
    out = kernel.execute("magics = get_ipython().magics_manager.registry['SageMakerAsyncMagics']\n"
                         "print(len(magics.session.panels), client.tracker.bus.listener_count - before)").stdout
    assert out.split() == ["1", "1"]

    messages = kernel.execute("inv = client.invocation(iid)\ninv").messages
    assert len(_widget_views(messages)) == 1
    results = [m["content"]["data"] for m in messages if m["msg_type"] == "execute_result"]
    assert results[0]["text/plain"].startswith(f"<Invocation {made['iid']} PENDING")
    html: dict[str, str] = {}  # HTML models opened by this cell -> their value after it
    for m in messages:
        content = m["content"]
        if m["msg_type"] == "comm_open" and content["data"]["state"].get("_model_name") == "HTMLModel":
            html[content["comm_id"]] = content["data"]["state"].get("value", "")
        elif m["msg_type"] == "comm_msg" and content["comm_id"] in html:
            html[content["comm_id"]] = content["data"].get("state", {}).get("value", html[content["comm_id"]])
    lines = {cid for cid, value in html.items() if "elapsed" in value}
    assert len(lines) == 1
    state = html[next(iter(lines))]
    assert "&lt;b&gt;live&lt;/b&gt;" in state and ">PENDING<" in state

    s3.put_object(Bucket="out", Key=made["key"], Body=b"1\n", ContentType="text/csv")
    completed, seen = listen_for_completed(kernel, lines)
    updated = completed == lines
    assert updated, f"the status line did not update; saw {seen}"
    assert "execute_input" not in seen
    out = kernel.execute("print(repr(inv).split()[2], client.tracker.bus.listener_count - before)").stdout
    assert out.split() == ["COMPLETED", "1"]  # the status line stopped listening; the panel did not
