"""SIGKILL the kernel in the middle of a 300-request batch; a new kernel loses nothing and sends again only
what was in flight."""

from __future__ import annotations

import os
import signal
import time

from sm_async_nb.local import LocalStack

SUBMIT = """
import pandas as pd
frame = pd.DataFrame({"a": range(300), "b": range(300)}, index=[f"row{i}" for i in range(300)])
job = %invoke_async local-async frame --rows-per-request 1 --inference-id crash300 --label crash
"""


def echo(body: bytes, content_type: str):
    return body, "text/csv"


def test_kernel_killed_mid_batch_is_recovered_by_the_next_kernel(kernels, tmp_path):
    with LocalStack(model=echo, concurrency=4, latency_ms=15) as stack:
        env = {**stack.env, "SM_ASYNC_NB_JOURNAL_PATH": str(tmp_path / "journal.sqlite3"),
               "SM_ASYNC_NB_MAX_WORKERS": "4"}
        first = kernels(env)
        first.run("%load_ext sm_async_nb")
        first.execute_nowait(SUBMIT)
        deadline = time.time() + 60
        while len(stack.records()) < 80 and time.time() < deadline:
            time.sleep(0.01)
        received_before_kill = len(stack.records())
        os.kill(first.pid, signal.SIGKILL)
        assert 80 <= received_before_kill < 300

        second = kernels(env)
        report = second.run(
            "%load_ext sm_async_nb\n"
            "client = %sm_async client\n"
            "rows = client.records()\n"
            "from collections import Counter\n"
            "print('ROWS', len(rows), 'RECOVERED', len(client.recovered), dict(Counter(r.status.value for r in rows)))")
        assert report.startswith("ROWS 300 RECOVERED ") and "SUBMITTING" not in report, report
        assert int(report.split()[3]) > 0  # the killed kernel's in-flight rows were resolved
        # Re-running the same cell continues the batch under the same ids and inputs.
        second.run(SUBMIT)
        result = second.run(
            "scored = job.wait(timeout=180).result()\n"
            "assert scored.index.tolist() == frame.index.tolist(), scored.index[:5]\n"
            "assert scored.values.tolist() == frame.values.tolist()\n"
            "print('COMPLETE', job.status_counts())")
        assert "COMPLETE {'COMPLETED': 300}" in result

        records = stack.records()
        ids = [r["inference_id"] for r in records]
        assert sorted(set(ids)) == sorted(f"crash300-{i:04d}" for i in range(300))
        # An invoke in flight at the kill may have reached the runtime with its answer lost: the journal
        # says so ("SageMaker may have accepted it") and the re-run sends it again, which AWS (like the
        # local runtime) runs a second time. Only those: at most the 4 workers' requests in flight.
        assert len(ids) - 300 <= 4, len(ids)
        s3 = stack.boto3_client("s3")
        keys = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(
            Bucket=stack.input_bucket, Prefix="inputs/") for o in page.get("Contents", [])]
        assert sorted(keys) == sorted(f"inputs/crash300-{i:04d}.csv" for i in range(300))
