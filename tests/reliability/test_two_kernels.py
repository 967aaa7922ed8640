"""Two kernels submitting and tracking through one journal: no corruption, no lost rows, and each
status transition applied (and announced) by exactly one of them."""

from __future__ import annotations

import json
import sqlite3

from sm_async_nb.local import LocalStack

SETUP = """
%load_ext sm_async_nb
import json
client = %sm_async client
applied = []
client.tracker.subscribe(lambda changes: applied.extend((c.inference_id, c.new.value) for c in changes))
client.tracker.start()
"""


def echo(body: bytes, content_type: str):
    return body, "text/csv"


def test_two_kernels_share_one_journal(kernels, tmp_path):
    journal = tmp_path / "journal.sqlite3"
    with LocalStack(model=echo, concurrency=4, latency_ms=5) as stack:
        env = {**stack.env, "SM_ASYNC_NB_JOURNAL_PATH": str(journal), "SM_ASYNC_NB_POLL_INTERVAL": "0.5"}
        pair = [kernels(env), kernels(env)]
        for kernel in pair:
            kernel.run(SETUP)
        for n, kernel in enumerate(pair):
            kernel.execute_nowait(
                f"batch = client.submit_many('local-async', [f'{{i}},{n}' for i in range(100)], label='k{n}')")
        for kernel in pair:  # each waits (after its submission cell) until its own batch is finished
            kernel.run("batch.wait(timeout=120)", timeout=180)
        db = sqlite3.connect(journal)
        assert db.execute("SELECT COUNT(*) FROM invocations WHERE status = 'COMPLETED'").fetchone()[0] == 200
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert db.execute("SELECT COUNT(*) FROM invocations").fetchone()[0] == 200
        for kernel in pair:  # another round of both trackers over the finished rows changes nothing
            assert kernel.run("print(client.tracker.refresh())").strip() == "[]"
        announced = []
        for kernel in pair:
            announced += [tuple(t) for t in json.loads(kernel.run("print(json.dumps(applied))"))]
        ids = [i for i, _ in announced]
        assert len(ids) == 200 and len(set(ids)) == 200, "a transition was applied twice or missed"
        assert {s for _, s in announced} == {"COMPLETED"}
        assert len({r["inference_id"] for r in stack.records()}) == 200
