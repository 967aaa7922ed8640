"""(g) A dataset larger than a small notebook's memory: N rows of Parquet streamed through the echo
endpoint with ``submit_dataset`` and its results written back with ``write_results``, in a fresh
process whose peak RSS above its own baseline is measured; side by side, the peak of the naive way
(``pd.read_parquet`` of the same file, before anything is even sent).

Run as ``python -m benchmarks.scenarios.dataset CONFIG_JSON`` it is one of those child processes.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..children import child_client, run_child
from ..report import Check, Row, seconds
from .memory import MB, _maxrss, _reset_peak, _rss

if TYPE_CHECKING:
    from ..harness import Bench

MODULE = "benchmarks.scenarios.dataset"
ROW_GROUP = 100_000
TARGET_MB = 300


def run(bench: Bench) -> list[Row]:
    sizes = bench.sizes
    rows, per_request = sizes.dataset_rows, sizes.dataset_rows_per_request
    with bench.phase(0) as phase:
        source = phase.workdir / "big.parquet"
        _generate(source, rows)
        config = {"source": str(source), "rows": rows, "rows_per_request": per_request,
                  "dest": str(phase.workdir / "scored.parquet"), "journal": str(phase.workdir / "dataset.sqlite3"),
                  "prefix": f"s3://{phase.stack.input_bucket}/inputs/", "urls": phase.stack.endpoint_urls,
                  "region": phase.stack.region, "endpoint": "bench-echo", "workers": sizes.workers}
        env = {**os.environ, **phase.stack.env, "SM_ASYNC_NB_HOME": str(phase.workdir / "home")}
        ours = run_child(MODULE, {**config, "mode": "stream"}, env, timeout=3600)
        naive = run_child(MODULE, {**config, "mode": "read_parquet"}, env, timeout=3600)
    ratio = naive["peak_delta_bytes"] / max(1, ours["peak_delta_bytes"])
    return [Row("g", f"Dataset, {rows:,} rows ({ours['requests']:,} requests of {per_request:,})", None,
                ours=f"peak RSS +{ours['peak_delta_bytes'] / MB:.0f} MB; submitted {seconds(ours['submit_s'])}, "
                     f"written {seconds(ours['write_s'])}; {ours['written_rows']:,} rows back in order",
                baselines=f"pd.read_parquet alone +{naive['peak_delta_bytes'] / MB:.0f} MB",
                ratios=f"{ratio:.1f}× less memory",
                checks=[Check(f"peak RSS < {TARGET_MB} MB above baseline", ours["peak_delta_bytes"] / MB,
                              ours["peak_delta_bytes"] < TARGET_MB * MB),
                        Check("every row back, in input order", ours["written_rows"],
                              ours["written_rows"] == rows and ours["in_order"])],
                data={"ours": ours, "read_parquet": naive}, note=f"source {ours['source_bytes'] / MB:.0f} MB of "
                f"Parquet; the stack runs in its own process, so its memory is not counted.")]


def _generate(path: Path, rows: int) -> None:
    """Two integer columns, written a row group at a time (the parent never holds the table)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([("row", pa.int64()), ("x", pa.int32())])
    with pq.ParquetWriter(path, schema) as writer:
        for start in range(0, rows, ROW_GROUP):
            ids = np.arange(start, min(rows, start + ROW_GROUP), dtype=np.int64)
            writer.write_table(pa.table({"row": ids, "x": (ids % 1000).astype(np.int32)}, schema=schema))


# --- the child process ---------------------------------------------------------------------------

def child(config: dict[str, Any]) -> dict[str, Any]:
    import gc

    import pandas as pd
    import pyarrow.parquet as pq

    client = child_client(config, max_workers=config["workers"])
    gc.collect()
    base = _rss()
    _reset_peak()
    answer: dict[str, Any] = {"mode": config["mode"], "source_bytes": Path(config["source"]).stat().st_size}
    if config["mode"] == "read_parquet":
        frame = pd.read_parquet(config["source"])
        answer["rows_read"] = len(frame)
    else:
        started = time.perf_counter()
        batch = client.submit_dataset(config["endpoint"], config["source"],
                                      rows_per_request=config["rows_per_request"])
        answer["submit_s"] = time.perf_counter() - started
        phases = {"submit": _maxrss() - base}
        batch.wait(timeout=3000)
        answer["wait_s"] = time.perf_counter() - started
        phases["wait"] = _maxrss() - base
        started = time.perf_counter()
        written = batch.write_results(config["dest"])
        answer["write_s"] = time.perf_counter() - started
        phases["write"] = _maxrss() - base
        answer["requests"] = len(batch)
        answer["phase_peaks_bytes"] = phases
    answer["peak_delta_bytes"] = _maxrss() - base
    answer["base_rss_bytes"] = base
    if config["mode"] == "stream":  # checked after the peak is taken: reading back costs memory too
        answer["written_rows"], answer["in_order"] = _compare(pq.ParquetFile(written), pq.ParquetFile(config["source"]))
    client.close()
    return answer


def _compare(written: Any, source: Any) -> tuple[int, bool]:
    """Rows written, and whether column 0 of the results equals the source's row numbers in order."""
    import numpy as np

    count, in_order = 0, True
    expected = source.iter_batches(batch_size=ROW_GROUP, columns=["row"])
    pending = np.array([], dtype=np.int64)
    for part in written.iter_batches(batch_size=ROW_GROUP):
        got = part.column(0).to_numpy()
        while len(pending) < len(got):
            try:
                pending = np.concatenate([pending, next(expected).column(0).to_numpy()])
            except StopIteration:
                return count + len(got), False
        in_order = in_order and bool(np.array_equal(got.astype(np.int64), pending[:len(got)]))
        pending = pending[len(got):]
        count += len(got)
    return count, in_order and len(pending) == 0 and next(expected, None) is None


if __name__ == "__main__":
    print(json.dumps(child(json.loads(sys.argv[1]))))
