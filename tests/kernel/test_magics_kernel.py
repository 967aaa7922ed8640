"""The magics in a real ipykernel (nbclient), against the embedded local stack."""

from __future__ import annotations

import ast

import pytest
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_notebook

pytestmark = pytest.mark.kernel


def run(cells, tmp_path, timeout=120):
    nb = new_notebook(cells=[new_code_cell(src) for src in cells],
                      metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    NotebookClient(nb, timeout=timeout, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    return nb


def outputs_text(cell):
    return "".join(o.get("text", "") + str(o.get("data", {}).get("text/plain", "")) for o in cell.outputs)


def test_new_user_flow_in_a_fresh_kernel(tmp_path):
    nb = run([
        "%load_ext sm_async_nb",
        "%sm_async local start --delay 0.3",
        "%%invoke_async local-async --label first --accept text/csv\n5.1,3.5,1.4,0.2\n6.7,3.0,5.2,2.3\n",
        "%sm_async wait first --timeout 60",
        "%sm_async result first -o df\nassert df[0].tolist() == ['setosa', 'virginica'], df\ndf.shape",
        "import pandas as pd\nframe = pd.DataFrame([[5.1, 3.5, 1.4, 0.2]] * 5)\n"
        "job = %invoke_async local-async frame --rows-per-request 2 --accept text/csv --wait -o scored\n"
        "assert scored[0].tolist() == ['setosa'] * 5 and scored.index.tolist() == list(range(5))",
        "%sm_async list",
        "%sm_async local stop",
    ], tmp_path)
    assert "Submitted" in outputs_text(nb.cells[2]) and "input: s3://" in outputs_text(nb.cells[2])
    assert "1 completed" in outputs_text(nb.cells[3])
    assert "(2, 2)" in outputs_text(nb.cells[4])
    assert "COMPLETED" in outputs_text(nb.cells[6])
    assert "Local stack stopped." in outputs_text(nb.cells[7])


def test_user_error_is_one_line_without_traceback(tmp_path):
    nb = new_notebook(cells=[new_code_cell("%load_ext sm_async_nb"),
                             new_code_cell("%%invoke_async my-endpoint --ttl 10\n1,2\n")],
                      metadata={"kernelspec": {"name": "python3", "display_name": "Python 3"}})
    client = NotebookClient(nb, timeout=60, kernel_name="python3", allow_errors=True,
                            resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    [error] = [o for o in nb.cells[1].outputs if o["output_type"] == "error"]
    assert error["ename"] == "ValidationError"
    assert error["traceback"] == [f"ValidationError: {error['evalue']}"]
    assert "RequestTTLSeconds 10 is invalid" in error["evalue"]


def test_interrupting_a_wait_keeps_the_invocation(kernels, tmp_path):
    import time

    from sm_async_nb.local import LocalStack

    with LocalStack(delay=30) as stack:
        kernel = kernels({**stack.env, "SM_ASYNC_NB_JOURNAL_PATH": str(tmp_path / "journal.sqlite3")})
        kernel.run("%load_ext sm_async_nb")
        msg_id = kernel.execute_nowait("%%invoke_async local-async --label slow --wait -o r\n5.1,3.5,1.4,0.2\n")
        time.sleep(3)
        kernel.manager.interrupt_kernel()
        text = ""
        while True:
            msg = kernel.client.get_iopub_msg(timeout=30)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "stream":
                text += msg["content"]["text"]
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                break
        assert "Stopped waiting; the invocation(s) keep running" in text
        listing = kernel.run("frame = %sm_async list\nprint(frame[['label', 'status']].values.tolist())")
        assert "['slow', 'PENDING']" in listing


def test_ctrl_c_during_a_batch_stops_it_and_binds_the_batch(kernels, tmp_path):
    """A real kernel interrupt (SIGINT) in the middle of `%invoke_async ... -o job`: requests that had
    not started are never sent, `job` is the batch, and resubmit() sends the rest."""
    import time

    from sm_async_nb.local import LocalStack

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
        error = None
        while True:
            msg = kernel.client.get_iopub_msg(timeout=60)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "error":
                error = msg["content"]
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                break
        received = len(stack.records())
        assert error is not None and error["ename"] == "SubmissionInterrupted"
        assert error["traceback"] == [f"SubmissionInterrupted: {error['evalue']}"]  # one line
        assert received - interrupted_at <= 4  # only the requests in flight (max_workers) went out
        time.sleep(1)
        assert len(stack.records()) == received  # and nothing after the cell ended
        counts = kernel.run("c = job.status_counts()\n"
                            "print(type(job).__name__, c.pop('ERROR'), sum(c.values()), list(c))")
        kind, not_sent, sent, statuses = counts.split(" ", 3)
        assert (kind, int(not_sent), int(sent)) == ("InvocationBatch", 400 - received, received)
        assert set(ast.literal_eval(statuses)) <= {"PENDING", "COMPLETED"}
        kernel.run("again = job.resubmit(); job.wait(timeout=120)\nassert job.status_counts() == {'COMPLETED': 400}")
        assert len(stack.records()) == 400
