"""(c) One tracker refresh over N invocations under one output prefix vs HEAD per id (the SDK
waiter's way: HEAD the output, then the failure object, one id after the other).

Measured twice: while all N are pending (the model is held), and when all N have just completed
(the refresh that discovers them; the journal rows are set back to PENDING between repeats).
"""

from __future__ import annotations

import contextlib
import sqlite3

from sm_async_nb import AsyncInferenceClient, Status

from ..baselines import RequestCount, head_per_id
from ..config import TARGET_LATENCY_MS, Sizes
from ..harness import Bench, Phase, Sampled, interleaved, per_latency, timed
from ..report import Check, Row, plural, ratio, seconds


def _at(bench: Bench, latency: int) -> list[Row]:
    sizes = bench.sizes
    with bench.phase(latency) as phase:
        held, client = phase.pending_behind_held(sizes.pending)
        ids = [r.inference_id for r in client.records(statuses=[Status.PENDING])]
        assert len(ids) == sizes.pending, "every invocation should be pending behind the held model"
        pending = _measure(phase, client, ids, "pending", sizes)
        phase.release(held)
        with phase.without_latency():
            if not phase.stack.wait_until_idle(600):
                raise TimeoutError("the local stack did not finish its queue")
        completed = _measure(phase, client, ids, "completed", sizes)
    return [_row(pending, latency, f"Refresh, {sizes.pending:,} pending under one prefix"),
            _row(completed, latency, f"Refresh, {sizes.pending:,} just completed")]


def _back_to_pending(journal_path: str, ids: list[str]) -> None:
    """Set finished rows back to PENDING, as no journal verb does (the benchmark's own staging, through
    its own connection, as another process would)."""
    with contextlib.closing(sqlite3.connect(journal_path)) as db, db:
        db.executemany("UPDATE invocations SET status = ?, finished_at = NULL, output_size = NULL "
                       "WHERE inference_id = ?", [(Status.PENDING.value, i) for i in ids])


def _measure(phase: Phase, client: AsyncInferenceClient, ids: list[str], state: str, sizes: Sizes) -> dict:
    """Median refresh time and S3 requests vs HEAD per id over a sample (scaled), interleaved."""
    rows = client.journal.get_many(ids)
    locations = [(rows[i].output_location, rows[i].failure_location) for i in ids]
    s3 = phase.boto3("s3")
    counter = RequestCount(s3)
    head_per_id_sample = Sampled(lambda part: head_per_id(s3, part), locations, sizes.seq_sample,
                                 sizes.refresh_repeats)
    requests: list[int] = []

    def refresh() -> float:
        if state == "completed":  # the refresh that discovers every output, again
            _back_to_pending(client.journal.path, ids)
        seconds = timed(client.tracker.refresh)
        stats = client.tracker.stats
        assert stats.changed == (len(ids) if state == "completed" else 0), f"refresh saw {stats.changed} changes"
        requests.append(stats.s3_requests)
        return seconds

    times, rounds = interleaved({"refresh": refresh, "head_per_id": head_per_id_sample}, sizes.refresh_repeats)
    return {"state": state, "tracked": len(ids), "refresh_s": times["refresh"],
            "refresh_s3_requests": max(requests), "head_per_id_s": head_per_id_sample.scale(times["head_per_id"]),
            "head_per_id_requests": round(counter.value * len(ids) / head_per_id_sample.timed_items),
            "head_items_timed": head_per_id_sample.timed_items, "rounds_s": rounds,
            "head_round_items": head_per_id_sample.size}


def _row(data: dict, latency: int, title: str) -> Row:
    speedup = data["head_per_id_s"] / data["refresh_s"]
    checks = [Check("≤ 3 S3 requests", data["refresh_s3_requests"], data["refresh_s3_requests"] <= 3),
              Check("≥ 20× HEAD per id", speedup, speedup >= 20)] if latency == TARGET_LATENCY_MS else []
    return Row("c", title, latency,
               ours=f"{seconds(data['refresh_s'])}, {plural(data['refresh_s3_requests'], 'S3 request')}",
               baselines=f"HEAD per id {seconds(data['head_per_id_s'])}, "
                         f"{plural(data['head_per_id_requests'], 'request')}",
               ratios=f"{ratio(speedup)} faster; "
                      f"{data['head_per_id_requests'] / max(1, data['refresh_s3_requests']):,.0f}× fewer requests",
               checks=checks, data=data)


run = per_latency(_at)
