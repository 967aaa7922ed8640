"""The magics in a real ipykernel, against the local stack."""

from __future__ import annotations

import ast
import time

from sm_async_nb.local import LocalStack


def test_new_user_flow_in_a_fresh_kernel(kernels):
    kernel = kernels()
    kernel.run("%load_ext sm_async_nb")
    kernel.run("%sm_async local start --delay 0.3")
    submitted = kernel.run("%%invoke_async local-async --label first --accept text/csv\n5.1,3.5,1.4,0.2\n6.7,3.0,5.2,2.3\n")
    assert "Submitted" in submitted and "input: s3://" in submitted
    assert "1 completed" in kernel.run("%sm_async wait first --timeout 60")
    assert "(2, 2)" in kernel.run("%sm_async result first -o df\nassert df[0].tolist() == ['setosa', 'virginica'], df\n"
                                  "df.shape")
    kernel.run("import pandas as pd\nframe = pd.DataFrame([[5.1, 3.5, 1.4, 0.2]] * 5)\n"
               "job = %invoke_async local-async frame --rows-per-request 2 --accept text/csv --wait -o scored\n"
               "assert scored[0].tolist() == ['setosa'] * 5 and scored.index.tolist() == list(range(5))")
    assert "COMPLETED" in kernel.run("%sm_async list")
    assert "Local stack stopped." in kernel.run("%sm_async local stop")


def test_user_error_is_one_line_without_traceback(kernels):
    kernel = kernels()
    kernel.run("%load_ext sm_async_nb")
    error = kernel.execute("%%invoke_async my-endpoint --ttl 10\n1,2\n", allow_errors=True).error
    assert error["ename"] == "ValidationError"
    assert error["traceback"] == [f"ValidationError: {error['evalue']}"]
    assert "RequestTTLSeconds 10 is invalid" in error["evalue"]


def waiting(msg: dict) -> bool:
    """The wait's progress label was drawn: the cell is inside ``wait_for``."""
    state = msg["content"].get("data", {}).get("state", {}) if msg["msg_type"] == "comm_msg" else {}
    return "finished (" in str(state.get("value", ""))


def test_interrupting_a_wait_keeps_the_invocation(kernels, tmp_path):
    with LocalStack(delay=30) as stack:
        kernel = kernels({**stack.env, "SM_ASYNC_NB_JOURNAL_PATH": str(tmp_path / "journal.sqlite3")})
        kernel.run("%load_ext sm_async_nb")
        msg_id = kernel.execute_nowait("%%invoke_async local-async --label slow --wait -o r\n5.1,3.5,1.4,0.2\n")
        kernel.read(msg_id, until=waiting, timeout=60)
        kernel.manager.interrupt_kernel()
        cell = kernel.collect(msg_id, timeout=30)
        assert "Stopped waiting; the invocation(s) keep running" in cell.text
        listing = kernel.run("frame = %sm_async list\nprint(frame[['label', 'status']].values.tolist())")
        assert "['slow', 'PENDING']" in listing


def test_ctrl_c_during_a_batch_stops_it_and_binds_the_batch(kernels, tmp_path):
    """A real kernel interrupt (SIGINT) in the middle of `%invoke_async ... -o job`: requests that had
    not started are never sent, `job` is the batch, and resubmit() sends the rest."""
    with LocalStack(latency_ms=20) as stack:
        kernel = kernels({**stack.env, "SM_ASYNC_NB_JOURNAL_PATH": str(tmp_path / "journal.sqlite3"),
                          "SM_ASYNC_NB_MAX_WORKERS": "4"})
        kernel.run("%load_ext sm_async_nb\nimport pandas as pd\nframe = pd.DataFrame([[5.1, 3.5, 1.4, 0.2]] * 400)")
        msg_id = kernel.execute_nowait("%invoke_async local-async frame --rows-per-request 1 -o job")
        deadline = time.monotonic() + 60
        while len(stack.records()) < 20:  # well under way
            assert time.monotonic() < deadline
            time.sleep(0.02)
        kernel.manager.interrupt_kernel()
        interrupted_at = len(stack.records())
        error = kernel.collect(msg_id, timeout=60, allow_errors=True).error
        received = len(stack.records())
        assert error is not None and error["ename"] == "SubmissionInterrupted"
        assert error["traceback"] == [f"SubmissionInterrupted: {error['evalue']}"]  # one line
        assert received - interrupted_at <= 4  # only the requests in flight (max_workers) went out
        # Nothing is sent after the cell ended: an absence, so it is watched for a while of real time
        # (a send left running in the kernel's pool would reach the stack well within it).
        time.sleep(1)
        assert len(stack.records()) == received
        counts = kernel.run("c = job.status_counts()\n"
                            "print(type(job).__name__, c.pop('ERROR'), sum(c.values()), list(c))")
        kind, not_sent, sent, statuses = counts.split(" ", 3)
        assert (kind, int(not_sent), int(sent)) == ("InvocationBatch", 400 - received, received)
        assert set(ast.literal_eval(statuses)) <= {"PENDING", "COMPLETED"}
        kernel.run("again = job.resubmit(); job.wait(timeout=120)\nassert job.status_counts() == {'COMPLETED': 400}")
        assert len(stack.records()) == 400
