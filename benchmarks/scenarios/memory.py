"""(f) Memory: peak RSS of a fresh process that creates a client, journals N pending invocations
(outputs under the stack's output prefix) and runs tracker refreshes over them; and the journal's
size on disk. A second, traced refresh attributes the Python heap to source lines.

Run as ``python -m benchmarks.scenarios.memory CONFIG_JSON`` it is that child process.
"""

from __future__ import annotations

import json
import linecache
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..children import child_client
from ..report import Check, Row

if TYPE_CHECKING:
    from ..harness import Bench

REFRESHES = 3
MB = 1024 * 1024


def run(bench: Bench) -> list[Row]:
    sizes = bench.sizes
    with bench.phase(0) as phase:
        stack = phase.stack
        config = {"rows": sizes.memory_rows, "journal": str(phase.workdir / "memory.sqlite3"),
                  "prefix": f"s3://{stack.input_bucket}/inputs/", "urls": stack.endpoint_urls,
                  "output_path": stack.output_path, "failure_path": stack.failure_path, "region": stack.region}
        env = {**os.environ, **stack.env, "SM_ASYNC_NB_HOME": str(phase.workdir / "home")}
        done = subprocess.run([sys.executable, "-m", "benchmarks.scenarios.memory", json.dumps(config)],
                              cwd=Path(__file__).resolve().parents[2], env=env, capture_output=True,
                              text=True, timeout=900)
    if done.returncode != 0:
        raise RuntimeError(f"the memory child failed:\n{done.stderr[-2000:]}")
    data = json.loads(done.stdout.strip().splitlines()[-1])
    peak = data["peak_delta_bytes"]
    return [Row("f", f"Memory, {sizes.memory_rows:,} tracked", None,
                ours=f"peak RSS +{peak / MB:.1f} MB ({peak / sizes.memory_rows / 1024:.1f} KB per invocation); "
                     f"journal {data['journal_bytes'] / MB:.1f} MB on disk",
                baselines="—", ratios="—", data=data, note=_dominant(data),
                checks=[Check("reported, with what dominates", peak / MB, True)])]


def _dominant(data: dict[str, Any]) -> str:
    """Say which phase and which source lines dominate the peak."""
    phases = data["phase_peaks_bytes"]
    sites = "; ".join(f"{site['where']} `{site['code']}` {site['bytes'] / MB:.1f} MB"
                      for site in data["refresh_top_sites"])
    return (f"peak RSS rises {phases['journal'] / MB:.1f} MB while journaling the rows and "
            f"{phases['refresh'] / MB:.1f} MB during {REFRESHES} refreshes. One refresh's Python heap peaks at "
            f"{data['refresh_traced_peak_bytes'] / MB:.1f} MB: the pending rows it reads from the journal "
            f"({sites}) and the S3 listing botocore parses. Journal: "
            f"{data['journal_bytes'] / data['rows']:.0f} bytes per invocation.")


# --- the child process ---------------------------------------------------------------------------

def _status_bytes(field: str) -> int | None:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _maxrss() -> int:
    """Peak RSS since the last reset: VmHWM, which clear_refs resets. (ru_maxrss of a process
    started by a large parent keeps the parent's size from before exec on Linux.)"""
    import resource

    peak = _status_bytes("VmHWM")
    return peak if peak is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _rss() -> int:
    current = _status_bytes("VmRSS")
    return current if current is not None else _maxrss()


def _reset_peak() -> bool:
    """Start a new peak-RSS high-water mark here (Linux), so start-up transients (botocore's
    JSON models) do not hide what tracking costs."""
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
        return True
    except OSError:
        return False


def _pending_rows(client: Any, config: dict[str, Any]) -> list[Any]:
    from sm_async_nb.records import InvocationRecord, Status, SubmitStep, new_inference_id

    rows = []
    now = time.time()
    for _ in range(config["rows"]):
        iid = new_inference_id(now)
        rows.append(InvocationRecord(
            inference_id=iid, endpoint_name="bench-held", origin=client.origin, status=Status.PENDING,
            submit_step=SubmitStep.DONE, request={"content_type": "text/csv"}, inline=False,
            input_location=f"{config['prefix']}{iid}.csv", input_size=24, input_sha256="0" * 64,
            output_location=f"{config['output_path']}{iid}.out",
            failure_location=f"{config['failure_path']}{iid}-error.out",
            submitted_at=now, invoked_at=now))
    return rows


def child(config: dict[str, Any]) -> dict[str, Any]:
    import gc
    import tracemalloc


    client = child_client(config)
    tracker = client.tracker
    gc.collect()
    base = _rss()
    reset = _reset_peak()
    client.journal.add(_pending_rows(client, config))
    journal_peak = _maxrss()
    gc.collect()
    before_refresh = _rss()
    _reset_peak()
    durations = []
    for _ in range(REFRESHES):
        started = time.perf_counter()
        tracker.refresh()
        durations.append(time.perf_counter() - started)
    refresh_peak = _maxrss()
    tracemalloc.start()
    tracker.refresh()
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    sites = _peak_sites(tracker)
    assert tracker.stats.pending == config["rows"], tracker.stats
    client.close()  # checkpoints the WAL into the database file
    path = Path(config["journal"])
    size = sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())
    return {"rows": config["rows"], "base_rss_bytes": base, "peak_reset": reset,
            "peak_delta_bytes": max(journal_peak, refresh_peak) - base,
            "phase_peaks_bytes": {"journal": journal_peak - base, "refresh": refresh_peak - before_refresh},
            "retained_after_journal_bytes": before_refresh - base,
            "refresh_s": durations, "refresh_s3_requests": tracker.stats.s3_requests,
            "refresh_traced_peak_bytes": traced_peak, "refresh_top_sites": sites, "journal_bytes": size}


def _peak_sites(tracker: Any, count: int = 3) -> list[dict[str, Any]]:
    """Where one refresh's memory lives at its largest: hold the rows it reads, snapshot then."""
    import tracemalloc

    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    rows = tracker.journal.pending(tracker.ctx.origin)  # what Tracker.refresh reads
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    del rows
    sites = []
    for stat in after.compare_to(before, "lineno")[:count]:
        frame = stat.traceback[0]
        sites.append({"where": f"{Path(frame.filename).name}:{frame.lineno}", "bytes": stat.size_diff,
                      "code": linecache.getline(frame.filename, frame.lineno).strip()})
    return sites


if __name__ == "__main__":
    print(json.dumps(child(json.loads(sys.argv[1]))))
