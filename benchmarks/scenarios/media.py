"""(k) Seeing results (SPEC §18), in a fresh process on the phase's stack:

- the bytes sent to the browser when the panel opens the details of a 5 MB PNG output (every widget
  message recorded with its binary buffers, as a kernel would send them), next to a 1 MB PNG (within
  the 2 MiB preview limit: sent once, as a binary buffer) and to inlining the 5 MB image as a data:
  URI; and the bytes read from S3 for each;
- the activity view over a journal of N invocations (SQL aggregates and the SVG charts), in the
  panel end to end and on its own, ``batch.timeline()``, against the same series computed the obvious
  way: ``tracker.to_frame()`` and pandas.

Run as ``python -m benchmarks.scenarios.media CONFIG_JSON`` it is that child process.
"""

from __future__ import annotations

import base64
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..children import child_client, run_child
from ..report import Check, Row, seconds

if TYPE_CHECKING:
    from ..harness import Bench

REPEATS = 3
PNG_BIG = 5 * 1024 * 1024
PNG_SMALL = 1024 * 1024


def run(bench: Bench) -> list[Row]:
    sizes = bench.sizes
    with bench.phase(0) as phase:
        stack = phase.stack
        config = {"rows": sizes.tracked, "journal": str(phase.workdir / "media.sqlite3"),
                  "prefix": f"s3://{stack.input_bucket}/inputs/", "urls": stack.endpoint_urls,
                  "output_path": stack.output_path, "failure_path": stack.failure_path, "region": stack.region}
        env = {**os.environ, **stack.env, "SM_ASYNC_NB_HOME": str(phase.workdir / "home")}
        data = run_child("benchmarks.scenarios.media", config, env, timeout=1800)
    kb = lambda n: f"{n / 1024:,.1f} KB" if n < 1024 ** 2 else f"{n / 1024 ** 2:,.2f} MB"  # noqa: E731
    big, small = data["big_png"], data["small_png"]
    activity = data["activity"]
    rows = [
        Row("l", "Details of a 5 MB PNG output (panel, widget messages)", None,
            ours=f"{kb(big['sent'])} sent ({kb(big['buffers'])} binary), {kb(big['s3_read'])} read from S3; "
                 f"1 MB PNG: {kb(small['sent'])} sent, {kb(small['s3_read'])} read",
            baselines=f"the 5 MB image inlined as a data: URI {kb(data['inline_bytes'])}",
            ratios=f"{data['inline_bytes'] / max(big['sent'], 1):,.0f}× fewer bytes",
            checks=[Check("5 MB PNG: at most the preview's bytes (< 16 KB, no image bytes)", big["sent"],
                          big["sent"] < 16 * 1024 and big["buffers"] == 0),
                    Check("1 MB PNG: its bytes once", small["buffers"], small["buffers"] == PNG_SMALL)],
            data=data),
        Row("l", f"Activity view, {data['rows']:,} tracked", None,
            ours=f"panel (select → charts drawn) {seconds(activity['panel_s'])}; charts of everything "
                 f"{seconds(activity['render_all_s'])}, of the batch {seconds(activity['render_batch_s'])}; "
                 f"batch.timeline() {seconds(activity['timeline_s'])}",
            baselines=f"to_frame() + pandas (same series) {seconds(activity['pandas_s'])}",
            ratios=f"{activity['pandas_s'] / activity['render_all_s']:.1f}× faster",
            checks=[Check("activity view < 1 s", activity["panel_s"], activity["panel_s"] < 1)], data=activity),
    ]
    return rows


# --- the child process ---------------------------------------------------------------------------

def _png(size: int) -> bytes:
    """A PNG header (a real 64×64 image from the demo model) followed by filler up to ``size``."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("media_model", Path(__file__).resolve().parents[2] / "notebooks"
                                                  / "models" / "media.py")
    assert spec is not None and spec.loader is not None
    model = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(model)
    head: bytes = model.rings(64, 64, 1)
    return head + os.urandom(size - len(head))


def _record_comms() -> list[tuple[int, int]]:
    """Every widget message from now on: (JSON bytes, binary buffer bytes)."""
    import comm
    from comm.base_comm import BaseComm

    sent: list[tuple[int, int]] = []

    class Recording(BaseComm):  # type: ignore[misc]
        def publish_msg(self, msg_type: str, data: Any = None, metadata: Any = None, buffers: Any = None,
                        **keys: Any) -> None:
            sent.append((len(json.dumps(data or {}, separators=(",", ":"), default=str)),
                         sum(memoryview(b).nbytes for b in buffers or ())))

    comm.create_comm = lambda *a, **kw: Recording(*a, **kw)
    return sent


def _details(client: Any, sent: list[tuple[int, int]], config: dict[str, Any], size: int) -> dict[str, int]:
    from sm_async_nb.aws.s3uri import S3Uri
    from sm_async_nb.notebook.panel.panel import Panel
    from sm_async_nb.records import InvocationRecord, Status, SubmitStep, new_inference_id
    from sm_async_nb.results.loading import head

    iid = new_inference_id()
    location = f"{config['output_path']}{iid}.out"
    uri = S3Uri.parse(location)
    client.aws.s3.put_object(Bucket=uri.bucket, Key=uri.key, Body=_png(size), ContentType="image/png")
    now = time.time()
    client.journal.add([InvocationRecord(iid, "bench-media", status=Status.COMPLETED, submit_step=SubmitStep.DONE,
                                         origin=client.origin, submitted_at=now - 5, invoked_at=now - 5,
                                         finished_at=now, output_location=location, output_size=size)])
    read: list[int] = []

    def counted_head(record: Any, limit: int) -> Any:
        answer = head(client.ctx, record, limit)
        read.append(len(answer[0]))
        return answer

    panel = Panel(client._parts, auto_refresh=False, fetch_head=counted_head)
    mark = len(sent)
    panel.show_details(iid)
    assert panel.wait_idle(60)
    json_bytes = sum(j for j, _ in sent[mark:])
    buffers = sum(b for _, b in sent[mark:])
    panel.close()
    return {"size": size, "sent": json_bytes + buffers, "buffers": buffers, "s3_read": sum(read)}


def _journal_rows(client: Any, count: int) -> str:
    """``count`` invocations of one batch over ``count`` seconds: 90 % completed, 5 % failed, 2 % expired,
    3 % pending, latencies of 2-60 s."""
    from sm_async_nb.records import BatchRecord, InvocationRecord, Status, SubmitStep, new_inference_id

    now = time.time()
    batch = BatchRecord("bench-activity", "bench-echo", count, label="activity", created_at=now - count)
    rows = []
    for n in range(count):
        submitted = now - count + n
        status = (Status.PENDING if n % 100 < 3 else Status.FAILED if n % 100 < 8 else
                  Status.EXPIRED if n % 100 < 10 else Status.COMPLETED)
        rows.append(InvocationRecord(
            new_inference_id(submitted), "bench-echo", status=status, submit_step=SubmitStep.DONE,
            origin=client.origin, batch_id=batch.batch_id, batch_index=n, submitted_at=submitted,
            invoked_at=submitted + 0.1, finished_at=None if status is Status.PENDING else submitted + 2 + n % 59,
            output_size=24, request={"content_type": "text/csv"}))
    client.journal.add(rows, batch=batch)
    return rows[0].inference_id


def _median(fn: Any) -> float:
    fn()  # warm: SQLite's page cache, first-use imports
    times = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _pandas_series(client: Any) -> None:
    """The activity's series the obvious way: every row as a DataFrame, then pandas."""
    import pandas as pd

    frame = client.tracker.to_frame()
    start = frame["submitted_at"].min().floor("15min")
    bucket = lambda column: ((frame[column] - start) // pd.Timedelta("15min"))  # noqa: E731
    frame.groupby(bucket("submitted_at")).size()
    frame[frame["status"].isin(["COMPLETED", "FAILED", "EXPIRED"])].groupby([bucket("finished_at"), "status"]).size()
    invoked = frame.groupby(bucket("invoked_at")).size().cumsum()
    ended = frame.groupby(bucket("finished_at")).size().cumsum()
    invoked.sub(ended, fill_value=0)
    frame.loc[frame["status"] == "COMPLETED", "latency_s"].quantile([0.5, 0.95, 0.99])


def child(config: dict[str, Any]) -> dict[str, Any]:
    from sm_async_nb.display.activity import ActivityScope, render
    from sm_async_nb.journal.activity import Scope
    from sm_async_nb.notebook.panel.panel import Panel

    sent = _record_comms()
    client = child_client(config)
    answer: dict[str, Any] = {"rows": config["rows"]}
    answer["big_png"] = _details(client, sent, config, PNG_BIG)
    answer["small_png"] = _details(client, sent, config, PNG_SMALL)
    answer["inline_bytes"] = len(base64.b64encode(b"\0" * PNG_BIG)) + len("data:image/png;base64,")
    first = _journal_rows(client, config["rows"])
    now = time.time()
    everything = ActivityScope("everything tracked", Scope(client.origin), "bench-echo")
    batch = ActivityScope("batch activity", Scope(client.origin, batch_id="bench-activity"), "bench-echo")
    timings = {"render_all_s": _median(lambda: render(client.journal, everything, now)),
               "render_batch_s": _median(lambda: render(client.journal, batch, now)),
               "timeline_s": _median(lambda: client.batch("bench-activity").timeline(freq="1min")),
               "pandas_s": _median(lambda: _pandas_series(client))}
    panel = Panel(client._parts, auto_refresh=False)
    panel.select([first])
    started = time.perf_counter()
    panel.show_activity()
    assert panel.wait_idle(60)
    timings["panel_s"] = time.perf_counter() - started
    timings["svg_bytes"] = len(panel.view.w.activity.value)
    assert "sm-async-chart-finished" in panel.view.w.activity.value
    panel.close()
    client.close()
    answer["activity"] = timings
    return answer


if __name__ == "__main__":
    print(json.dumps(child(json.loads(sys.argv[1]))))
