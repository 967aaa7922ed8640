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
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil

from sm_async_nb import LocalStack
from sm_async_nb.aws.s3uri import S3Uri

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
FOLLOWED = 10_000     # as_completed over this many tracked invocations (--quick: a tenth)
WAVES = 20            # ...whose outputs appear in this many waves, oldest ids first (a FIFO endpoint)


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
    occupied = sum(r["finished_at"] - r["started_at"] for r in ran)  # slot-seconds: model, input read, output write
    busy = occupied / (CAPACITY * (last - first))
    completed = counts.get("COMPLETED", 0)
    return {"counts": counts, "expired": counts.get("EXPIRED", 0), "completed": completed, "wall_s": wall,
            "busy": busy, "slot_ms": 1000 * occupied / max(1, len(ran)), "endpoint_work_s": occupied / CAPACITY,
            "rss_growth_mb": peak.growth_mb, "s3_requests": requests["s3"],
            "runtime_requests": requests["runtime"],
            "requests_per_completed": (requests["s3"] + requests["runtime"]) / max(1, completed),
            "window": None if decision is None else decision.window, "why": None if decision is None else decision.why}


def _seed(client: Any, stack: LocalStack, count: int) -> tuple[str, list[str]]:
    """A batch of ``count`` PENDING invocations under the stack's output prefix, journaled as a submission
    would leave them (ids time-ordered, oldest first); returns its id and the output keys."""
    from sm_async_nb.records import BatchRecord, InvocationRecord, Status, SubmitStep, new_inference_id

    now = time.time()
    batch = BatchRecord(batch_id="batch-0000followed", endpoint_name=ENDPOINT, size=count, label="followed",
                        created_at=now - count * 0.001)
    rows = []
    for n in range(count):
        at = now - (count - n) * 0.001
        iid = new_inference_id(at)
        rows.append(InvocationRecord(
            inference_id=iid, endpoint_name=ENDPOINT, origin=client.origin, status=Status.PENDING,
            submit_step=SubmitStep.DONE, label="followed", request={"content_type": "text/csv"},
            input_location=f"s3://{stack.input_bucket}/inputs/{iid}.csv", input_size=4, input_sha256="0" * 64,
            output_location=f"{stack.output_path}{iid}.out", failure_location=f"{stack.failure_path}{iid}-error.out",
            submitted_at=at, invoked_at=at, batch_id=batch.batch_id, batch_index=n))
    client.journal.add(rows, batch)
    return batch.batch_id, [S3Uri.parse(r.output_location).key for r in rows]


def _follow(stack: LocalStack, workdir: Path, count: int) -> dict[str, Any]:
    """as_completed over ``count`` tracked invocations whose outputs appear in waves (written with plain boto3,
    as the endpoint would): the tracker's S3 requests per refresh, next to what HEAD per pending id would cost."""
    s3 = stack.boto3_client("s3")
    bucket = S3Uri.parse(stack.output_path).bucket
    with stack.client(journal_path=workdir / "jobs-followed.sqlite3") as client:
        batch_id, keys = _seed(client, stack, count)
        refreshes: dict[int, tuple[int, int]] = {}  # refresh number -> (its S3 requests, ids pending in it)

        def note(*_: Any) -> None:
            stats = client.tracker.stats
            refreshes[stats.refreshes] = (stats.s3_requests, stats.pending)

        unsubscribe = client.tracker.subscribe(note)
        wave = max(1, count // WAVES)

        def endpoint() -> None:
            with ThreadPoolExecutor(8) as pool:
                for start in range(0, count, wave):
                    list(pool.map(lambda key: s3.put_object(Bucket=bucket, Key=key, Body=b"1\n",
                                                            ContentType="text/csv"), keys[start:start + wave]))
                    time.sleep(0.2)

        writer = threading.Thread(target=endpoint, daemon=True)
        started = time.perf_counter()
        writer.start()
        seen = sum(1 for _ in client.batch(batch_id).as_completed(timeout=600))
        wall = time.perf_counter() - started
        writer.join()
        unsubscribe()
    polled = [(spent, pending) for spent, pending in refreshes.values() if pending]
    ours = sum(spent for spent, _ in polled)
    heads = sum(pending for _, pending in polled)  # HEAD per id: one request per pending id, every refresh
    return {"followed": count, "yielded": seen, "wall_s": wall, "refreshes": len(polled), "s3_requests": ours,
            "per_refresh_mean": ours / max(1, len(polled)), "per_refresh_max": max((s for s, _ in polled), default=0),
            "head_per_id": heads, "head_per_refresh_mean": heads / max(1, len(polled))}


def run(bench: Bench) -> list[Row]:
    count = 2_000 if bench.sizes.payloads >= 500 else 200
    shrink = 1.0 if count == 2_000 else QUICK_SHRINK
    work_s, scale = WORK_S / shrink, TTL / (TTL_REAL_S / shrink)
    with LocalStack(time_scale=scale) as stack:
        stack.add_endpoint(ENDPOINT, model=steady_model(bench.workdir, work_s * CAPACITY / count), concurrency=CAPACITY)
        everything = _one(stack, bench.workdir, "submit-all", count, None)
        stack.wait_until_idle(120)
        auto = _one(stack, bench.workdir, "auto", count, "auto")
        followed = _follow(stack, bench.workdir, FOLLOWED if count == 2_000 else FOLLOWED // 10)
    ttl_real = TTL / scale
    fewer = followed["head_per_id"] / max(1, followed["s3_requests"])
    follow_row = Row(
        "m", f"as_completed over {followed['followed']:,} tracked invocations (outputs in {WAVES} waves, one prefix)",
        None,
        ours=f"{followed['yielded']:,} yielded in {seconds(followed['wall_s'])}; {followed['refreshes']} refreshes, "
             f"{followed['per_refresh_mean']:.1f} S3 requests per refresh (max {followed['per_refresh_max']})",
        baselines=f"HEAD per pending id: {followed['head_per_refresh_mean']:,.0f} requests per refresh "
                  f"({followed['head_per_id']:,} in all)",
        ratios=f"{fewer:,.0f}× fewer requests",
        checks=[Check("every invocation yielded once", followed["yielded"],
                      followed["yielded"] == followed["followed"]),
                Check("requests per refresh O(prefixes), not O(ids): ≤ 2 + pages of 1,000 listed",
                      followed["per_refresh_max"], followed["per_refresh_max"] <= 2 + followed["followed"] // 1000)],
        data=followed)
    return [Row("m", f"Job of {count:,} requests, capacity {CAPACITY}, TTL {ttl_real:.1f} s real "
                     f"(queue needs {work_s:.1f} s)", None,
                ours=f"max_pending=\"auto\": {auto['expired']} expired, busy {auto['busy']:.0%}, "
                     f"{seconds(auto['wall_s'])} (endpoint's own work {seconds(auto['endpoint_work_s'])}, "
                     f"{auto['slot_ms']:.0f} ms a request), RSS +{auto['rss_growth_mb']:.0f} MB, "
                     f"{auto['requests_per_completed']:.2f} requests/completed",
                baselines=f"submit all: {everything['expired']} expired, busy {everything['busy']:.0%}, "
                          f"{seconds(everything['wall_s'])}, RSS +{everything['rss_growth_mb']:.0f} MB, "
                          f"{everything['requests_per_completed']:.2f} requests/completed",
                ratios=f"{everything['expired'] - auto['expired']:,} fewer expired",
                checks=[Check("auto: 0 expired", auto["expired"], auto["expired"] == 0),
                        Check("auto: endpoint ≥ 90 % busy", auto["busy"], auto["busy"] >= 0.9),
                        Check("submit-all loses requests (the problem is real)", everything["expired"],
                              everything["expired"] > 0)],
                data={"submit_all": everything, "auto": auto, "time_scale": scale, "ttl_real_s": ttl_real}),
            follow_row]
