"""(h) A team-sized journal: N tracked invocations, P of them pending under the stack's output
prefix. Measured in a fresh process: the panel's first build, one tracker refresh (S3 requests,
wall and client CPU), ``tracker.to_frame()`` against building the frame from records the obvious
way, and the journal's bytes per row.

Run as ``python -m benchmarks.scenarios.tracked CONFIG_JSON`` it is that child process.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..children import child_client
from ..report import Check, Row, plural, seconds

if TYPE_CHECKING:
    from ..harness import Bench

REPEATS = 3


def run(bench: Bench) -> list[Row]:
    sizes = bench.sizes
    with bench.phase(0) as phase:
        stack = phase.stack
        config = {"rows": sizes.tracked, "pending": sizes.tracked_pending,
                  "journal": str(phase.workdir / "tracked.sqlite3"), "prefix": f"s3://{stack.input_bucket}/inputs/",
                  "urls": stack.endpoint_urls, "output_path": stack.output_path, "failure_path": stack.failure_path,
                  "region": stack.region}
        env = {**os.environ, **stack.env, "SM_ASYNC_NB_HOME": str(phase.workdir / "home")}
        done = subprocess.run([sys.executable, "-m", "benchmarks.scenarios.tracked", json.dumps(config)],
                              cwd=Path(__file__).resolve().parents[2], env=env, capture_output=True, text=True,
                              timeout=1800)
    if done.returncode != 0:
        raise RuntimeError(f"the tracked child failed:\n{done.stderr[-2000:]}")
    data = json.loads(done.stdout.strip().splitlines()[-1])
    title = f"{sizes.tracked:,} tracked, {sizes.tracked_pending:,} pending"
    frame_ratio = data["records_frame_s"] / data["to_frame_s"]
    panel = data.get("panel_build_s")
    checks = [Check("refresh ≤ 3 S3 requests", data["refresh_s3_requests"], data["refresh_s3_requests"] <= 3),
              Check("to_frame() < 1 s", data["to_frame_s"], data["to_frame_s"] < 1)]
    if panel is not None:
        checks.append(Check("panel build < 1 s", panel, panel < 1))
    return [Row("h", f"Journal scale, {title}", None,
                ours=f"panel build {seconds(panel) if panel is not None else 'n/a'}; refresh "
                     f"{seconds(data['refresh_s'])} wall, {seconds(data['refresh_cpu_s'])} CPU, "
                     f"{plural(data['refresh_s3_requests'], 'S3 request')}; to_frame() {seconds(data['to_frame_s'])}; "
                     f"journal {data['journal_bytes'] / data['rows']:.0f} B/row",
                baselines=f"DataFrame from records {seconds(data['records_frame_s'])}",
                ratios=f"to_frame() {frame_ratio:.1f}× faster", checks=checks, data=data)]


# --- the child process ---------------------------------------------------------------------------

def _rows(origin: str, config: dict[str, Any]) -> list[Any]:
    from sm_async_nb.records import InvocationRecord, Status, SubmitStep, new_inference_id

    now = time.time()
    made = []
    for n in range(config["rows"]):
        iid = new_inference_id(now - n)
        pending = n < config["pending"]
        made.append(InvocationRecord(
            inference_id=iid, endpoint_name="bench-held" if pending else "bench-echo", origin=origin,
            status=Status.PENDING if pending else Status.COMPLETED, submit_step=SubmitStep.DONE,
            label=f"run-{n // 1000}", request={"content_type": "text/csv"},
            input_location=f"{config['prefix']}{iid}.csv",
            input_size=24, input_sha256="0" * 64, output_location=f"{config['output_path']}{iid}.out",
            failure_location=f"{config['failure_path']}{iid}-error.out", submitted_at=now - n, invoked_at=now - n,
            finished_at=None if pending else now - n + 1, output_size=None if pending else 24))
    return made


def _median(fn: Any) -> float:
    times = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _panel_build(client: Any) -> float | None:
    """The first build of the panel over this journal (widgets made without a front end)."""
    try:
        import ipywidgets  # noqa: F401
    except ImportError:
        return None
    started = time.perf_counter()
    panel = client.panel()
    elapsed = time.perf_counter() - started
    close = getattr(panel, "close", None)
    if callable(close):
        close()
    return elapsed


def child(config: dict[str, Any]) -> dict[str, Any]:
    from dataclasses import asdict

    import pandas as pd


    client = child_client(config)
    client.journal.add(_rows(client.origin, config))
    answer: dict[str, Any] = {"rows": config["rows"], "pending": config["pending"]}
    answer["panel_build_s"] = _panel_build(client)
    cpu, started = time.process_time(), time.perf_counter()
    client.tracker.refresh()
    answer["refresh_s"], answer["refresh_cpu_s"] = time.perf_counter() - started, time.process_time() - cpu
    answer["refresh_s3_requests"] = client.tracker.stats.s3_requests
    assert client.tracker.stats.pending == config["pending"], client.tracker.stats
    client.tracker.to_frame()  # warm: SQLite's page cache, pandas' first-use imports
    answer["to_frame_s"] = _median(client.tracker.to_frame)
    answer["records_frame_s"] = _median(lambda: pd.DataFrame([asdict(r) for r in client.records()]))
    client.close()  # checkpoints the WAL into the database file
    path = Path(config["journal"])
    answer["journal_bytes"] = sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())
    return answer


if __name__ == "__main__":
    print(json.dumps(child(json.loads(sys.argv[1]))))
