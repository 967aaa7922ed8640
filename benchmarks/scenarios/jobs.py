"""(m) Jobs (SPEC §16): N requests through an emulated endpoint of known capacity whose TTL is shorter
than the whole queue needs, submitted all at once (today's ``submit_many``) and with
``max_pending="auto"``, side by side in one run on one stack (``time_scale`` makes the TTL pass in
seconds): requests that expired, how busy the endpoint was while the batch ran (the runtime's own
start/finish records), wall time, the client process's peak RSS growth, and S3/runtime requests
per completed invocation (counted on the client's botocore clients).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil

from sm_async_nb import LocalStack

from ..report import Check, Row, seconds

if TYPE_CHECKING:
    from ..harness import Bench

ENDPOINT = "jobs-ep"
CAPACITY = 4          # requests the endpoint runs at once
WORK_S = 30.0         # real seconds the whole queue needs on the endpoint (the model time follows from it)
TTL = 60              # RequestTTLSeconds (emulated), the API's shortest
TTL_REAL_S = 10.0     # ...which passes in this many real seconds (time_scale = TTL / TTL_REAL_S): a third of
                      # the queue, and well above the client's polling lag, as a real TTL of minutes is
QUICK_SHRINK = 3.0    # --quick: the same proportions, three times shorter


def steady_model(workdir: Path, seconds: float) -> Path:
    """A handler file whose model takes ``seconds`` per request. It runs in the engine's process, so the
    endpoint's pace does not depend on how busy the client being measured keeps this one."""
    path = workdir / "steady_model.py"
    path.write_text("import time\n\n\ndef input_fn(body, content_type):\n    return body\n\n\n"
                    f"def predict_fn(data, model):\n    time.sleep({seconds!r})\n    return data\n\n\n"
                    "def output_fn(prediction, accept):\n    return prediction, 'text/csv'\n")
    return path


class _Peak:
    """The process's peak RSS above where it started, sampled every 20 ms."""

    def __init__(self) -> None:
        self.process = psutil.Process()
        self.base = self.peak = self.process.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, self.process.memory_info().rss)

    def __enter__(self) -> _Peak:
        self._thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def growth_mb(self) -> float:
        return (self.peak - self.base) / 1024 ** 2


def _count_requests(client: Any) -> dict[str, int]:
    counts = {"s3": 0, "runtime": 0}
    for name, boto in (("s3", client.aws.s3), ("runtime", client.aws.runtime)):
        def count(name: str = name, **_: Any) -> None:
            counts[name] += 1
        boto.meta.events.register("before-send", count)
    return counts


def _one(stack: LocalStack, workdir: Any, label: str, count: int, max_pending: str | None) -> dict[str, Any]:
    rows = [f"{label},{i}\n" for i in range(count)]
    with stack.client(journal_path=workdir / f"jobs-{label}.sqlite3") as client, _Peak() as peak:
        requests = _count_requests(client)
        started = time.perf_counter()
        extra = {} if max_pending is None else {"max_pending": max_pending}
        batch = client.submit_many(ENDPOINT, rows, request_ttl_seconds=TTL, label=label, **extra)
        batch.wait(timeout=1800)
        wall = time.perf_counter() - started
        counts = batch.status_counts()
        ids = {part.inference_id for part in batch.parts()}
        decision = client.jobs.decision(batch.batch_id)
    ran = [r for r in stack.records(ENDPOINT) if r["inference_id"] in ids and r.get("started_at")]
    first, last = min(r["started_at"] for r in ran), max(r["finished_at"] for r in ran)
    busy = sum(r["finished_at"] - r["started_at"] for r in ran) / (CAPACITY * (last - first))
    completed = counts.get("COMPLETED", 0)
    return {"counts": counts, "expired": counts.get("EXPIRED", 0), "completed": completed, "wall_s": wall,
            "busy": busy, "rss_growth_mb": peak.growth_mb, "s3_requests": requests["s3"],
            "runtime_requests": requests["runtime"],
            "requests_per_completed": (requests["s3"] + requests["runtime"]) / max(1, completed),
            "window": None if decision is None else decision.window, "why": None if decision is None else decision.why}


def run(bench: Bench) -> list[Row]:
    count = 2_000 if bench.sizes.payloads >= 500 else 200
    shrink = 1.0 if count == 2_000 else QUICK_SHRINK
    work_s, scale = WORK_S / shrink, TTL / (TTL_REAL_S / shrink)
    with LocalStack(time_scale=scale) as stack:
        stack.add_endpoint(ENDPOINT, model=steady_model(bench.workdir, work_s * CAPACITY / count), concurrency=CAPACITY)
        everything = _one(stack, bench.workdir, "submit-all", count, None)
        stack.wait_until_idle(120)
        auto = _one(stack, bench.workdir, "auto", count, "auto")
    ttl_real = TTL / scale
    return [Row("m", f"Job of {count:,} requests, capacity {CAPACITY}, TTL {ttl_real:.1f} s real "
                     f"(queue needs {work_s:.1f} s)", None,
                ours=f"max_pending=\"auto\": {auto['expired']} expired, busy {auto['busy']:.0%}, "
                     f"{seconds(auto['wall_s'])}, RSS +{auto['rss_growth_mb']:.0f} MB, "
                     f"{auto['requests_per_completed']:.2f} requests/completed",
                baselines=f"submit all: {everything['expired']} expired, busy {everything['busy']:.0%}, "
                          f"{seconds(everything['wall_s'])}, RSS +{everything['rss_growth_mb']:.0f} MB, "
                          f"{everything['requests_per_completed']:.2f} requests/completed",
                ratios=f"{everything['expired'] - auto['expired']:,} fewer expired",
                checks=[Check("auto: 0 expired", auto["expired"], auto["expired"] == 0),
                        Check("auto: endpoint ≥ 90 % busy", auto["busy"], auto["busy"] >= 0.9),
                        Check("submit-all loses requests (the problem is real)", everything["expired"],
                              everything["expired"] > 0)],
                data={"submit_all": everything, "auto": auto, "time_scale": scale, "ttl_real_s": ttl_real})]
