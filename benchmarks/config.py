"""Sizes of a full and a quick run; the issue's targets are checked at TARGET_LATENCY_MS."""

from __future__ import annotations

from dataclasses import dataclass

from sm_async_nb.payloads.encoding import MAX_S3_PAYLOAD

TARGET_LATENCY_MS = 20


@dataclass(frozen=True)
class Sizes:
    """How big each scenario is. ``seq_sample``: a sequential baseline is timed over this many
    items, in chunks interleaved with the other contenders, and scaled linearly to the
    scenario's size (its requests go one after another, so its time is linear in the count)."""

    payloads: int = 500          # (a), (b), (d)
    pending: int = 1_000         # (c), (e)
    memory_rows: int = 10_000    # (f)
    kernel_runs: int = 100       # (e) executions per condition
    repeats: int = 5             # timed rounds of ours, the raw pool and a sequential chunk (median)
    refresh_repeats: int = 5     # (c) refreshes timed per state (median)
    seq_sample: int = 250
    workers: int = 16
    latencies: tuple[int, ...] = (0, TARGET_LATENCY_MS)
    dataset_rows: int = 10_000_000        # (g)
    dataset_rows_per_request: int = 10_000
    tracked: int = 100_000                # (h) rows in the journal
    tracked_pending: int = 1_000          # (h) of which pending
    upload_bytes: int = MAX_S3_PAYLOAD     # (i) one local file, as large as SageMaker takes


FULL = Sizes()
QUICK = Sizes(payloads=40, pending=60, memory_rows=1_000, kernel_runs=12, repeats=1, refresh_repeats=2,
              seq_sample=20, dataset_rows=30_000, dataset_rows_per_request=1_000, tracked=5_000, tracked_pending=100,
              upload_bytes=48 * 1024 ** 2)
