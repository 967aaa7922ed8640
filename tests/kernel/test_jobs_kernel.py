"""Jobs in real kernels (SPEC §16): QUEUED rows survive a kernel killed mid-job and show as paused;
nothing resumes by itself; ``%sm_async resume`` continues (a dataset read from where it stopped); and
the job magics (--max-pending, --background, pause, resume, cancel, attach) in a kernel."""

from __future__ import annotations

import time

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

IRIS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]]
SPECIES = ["setosa", "virginica", "versicolor"]
FRAME = ("import pandas as pd\n"
         f"frame = pd.DataFrame({IRIS!r} * 4, index=[f'r{{i}}' for i in range(12)])\n")


def restart(kernel) -> None:
    kernel.manager.restart_kernel(now=True)  # kills the kernel process; a new one starts
    kernel.client.wait_for_ready(timeout=60)
    kernel.run("%load_ext sm_async_nb")
    assert "reattached" in kernel.run("%sm_async local start")


def test_queued_rows_survive_a_killed_kernel_and_resume_on_request(kernels, user_env):
    kernel = kernels(user_env)
    kernel.run("%load_ext sm_async_nb")
    assert "detached" in kernel.run("%sm_async local start --delay 0.2 --concurrency 1")
    kernel.run(FRAME + "job = %invoke_async local-async frame --rows-per-request 1 --max-pending 1 --accept text/csv "
               "--label flow")
    before = kernel.run("print(job.status_counts())")
    assert "'QUEUED'" in before, before
    restart(kernel)

    paused = kernel.run("client = %sm_async client\nprint(client.paused_jobs)\n"
                        "job = client.batch(client.journal.with_label('flow')[0].batch_id)\n"
                        "print('STATE', job.job_state.value, job.status_counts())")
    assert "STATE paused" in paused and "'QUEUED'" in paused, paused
    # Nothing resumes by itself: the queued count stays while the endpoint drains what it had.
    kernel.run("import time\nq0 = job.status_counts()['QUEUED']\ntime.sleep(1.5)\n"
               "assert job.status_counts()['QUEUED'] == q0, job.status_counts()")
    out = kernel.run("%sm_async resume flow")
    assert "Resumed" in out, out
    kernel.run("%sm_async wait flow --timeout 90")
    kernel.run("%sm_async result flow -o scored\n"
               "assert scored.index.tolist() == [f'r{i}' for i in range(12)], scored.index\n"
               f"assert scored[0].tolist() == {SPECIES * 4!r}, scored\n"
               "assert job.status_counts() == {'COMPLETED': 12}, job.status_counts()")


def test_a_dataset_read_continues_where_it_stopped(kernels, user_env, tmp_path):
    path = tmp_path / "rows.parquet"
    frame = pd.DataFrame(IRIS * 100, columns=["sl", "sw", "pl", "pw"])
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path, row_group_size=50)
    kernel = kernels(user_env)
    kernel.run("%load_ext sm_async_nb")
    kernel.run("%sm_async local start --delay 0.05 --concurrency 1")
    kernel.run(f"job = %invoke_async local-async --dataset {path} --rows-per-request 1 --max-pending 1 "
               "--accept text/csv --background --label ds\n"
               "import time\nt = time.time()\n"
               "while job.status_counts().get('QUEUED', 0) < 5 and time.time() - t < 30: time.sleep(0.02)\n"
               "print('UNSENT', job.unsent)")
    restart(kernel)
    out = kernel.run("client = %sm_async client\njob = client.batch(client.journal.with_label('ds')[0].batch_id)\n"
                     "print('STATE', job.job_state.value, job.unsent, job.record.read_position)")
    state, unsent, position = out.split("STATE", 1)[1].split()
    assert state == "paused" and int(unsent) > 0, out  # killed while reading: part of the dataset never read
    kernel.run("%sm_async resume ds")
    kernel.run("job.wait(timeout=240)\nassert job.unsent == 0 and job.status_counts() == {'COMPLETED': 300}, "
               "(job.unsent, job.status_counts())\n"
               f"df = job.result()\nassert df.index.tolist() == list(range(300)) and df[0].tolist() == {SPECIES * 100!r}",
               timeout=300)


def test_job_magics(kernels, user_env):
    kernel = kernels(user_env)
    kernel.run("%load_ext sm_async_nb")
    kernel.run("%sm_async local start --delay 0.2 --concurrency 1")
    kernel.run(FRAME)
    out = kernel.run("job = %invoke_async local-async frame --rows-per-request 1 --max-pending 2 --background "
                     "--retries 1 --label magic")
    assert "Job batch-" in out and "max_pending=2" in out and "pause|resume|cancel" in out, out
    assert "Paused" in kernel.run("%sm_async pause magic")
    assert "Resumed" in kernel.run("%sm_async resume magic")
    assert "Cancelled" in kernel.run("%sm_async cancel magic")
    kernel.run("assert job.job_state.value == 'cancelled'")
    for bad, why in (("--max-pending 0", "max_pending"), ("--max-pending lots", "auto"), ("--retries 99", "retries"),
                     ("--max-pending 1.5", "whole number")):
        out = kernel.run(f"try:\n    %invoke_async local-async frame --rows-per-request 1 {bad}\n"
                         "except Exception as exc:\n    print('ERR', type(exc).__name__, exc)")
        assert "ERR ValidationError" in out and why in out, (bad, out)
    # attach: an invocation another tool made (boto3 here, as the CLI would)
    kernel.run("import boto3\nc = %sm_async client\n"
               "s3 = c.aws.s3\nbucket = c.input_prefix().bucket\n"
               "s3.put_object(Bucket=bucket, Key='cli/in.csv', Body=b'5.1,3.5,1.4,0.2\\n')\n"
               "ans = c.aws.runtime.invoke_endpoint_async(EndpointName='local-async', ContentType='text/csv', "
               "InputLocation=f's3://{bucket}/cli/in.csv', InferenceId='from-the-cli', Accept='text/csv')")
    out = kernel.run("%sm_async attach local-async from-the-cli {ans['OutputLocation']} --label cli")
    assert "Attached from-the-cli" in out, out
    kernel.run("%sm_async wait cli --timeout 60\n%sm_async result cli -o got\nassert got[0].tolist() == ['setosa']")
    error = kernel.execute("%sm_async attach local-async other-id not-a-uri", allow_errors=True).error
    assert error["ename"] == "ValidationError" and "S3 URI" in error["evalue"], error
    assert error["traceback"] == [f"ValidationError: {error['evalue']}"]  # one line
    kernel.run("assert c.journal.get('other-id') is None")  # nothing journaled


def test_ctrl_c_during_a_jobs_foreground_part_pauses_it(kernels, tmp_path):
    """A real SIGINT while a job's cell still reads and uploads: nothing is invoked after it (the job is
    paused, its QUEUED rows stay QUEUED, the rows never uploaded are ERROR "not sent"), and nothing
    resumes by itself."""
    from sm_async_nb.local import LocalStack

    with LocalStack(delay=0.3, concurrency=1) as stack:
        kernel = kernels({**stack.env, "SM_ASYNC_NB_JOURNAL_PATH": str(tmp_path / "journal.sqlite3"),
                          "SM_ASYNC_NB_MAX_WORKERS": "4"})
        kernel.run(f"%load_ext sm_async_nb\nimport pandas as pd\nframe = pd.DataFrame({IRIS[:1]!r} * 3000)")
        msg_id = kernel.execute_nowait("%invoke_async local-async frame --rows-per-request 1 --max-pending 2 "
                                       "--accept text/csv --label ctrlc -o job")
        deadline = time.monotonic() + 60
        while len(stack.records()) < 1:  # the job thread invokes while the cell still uploads
            assert time.monotonic() < deadline
            time.sleep(0.02)
        kernel.manager.interrupt_kernel()
        interrupted_at = len(stack.records())
        error = kernel.collect(msg_id, timeout=60, allow_errors=True).error
        assert error is not None and error["ename"] == "SubmissionInterrupted", "\n".join(error["traceback"])
        settled = len(stack.records())
        time.sleep(1.5)  # an absence: a refill left running would reach the stack well within it
        assert len(stack.records()) == settled
        out = kernel.run("c = job.status_counts()\nprint('STATE', job.job_state.value, c.get('QUEUED', 0), job.unsent)")
        state, queued, unsent = out.split("STATE", 1)[1].split()
        assert state == "paused" and int(queued) > 0 and int(unsent) > 0, out  # held, and not all read
        # resume() reads on from where the interrupt stopped it; cancel() then ends what is still queued.
        assert "Resumed" in kernel.run("%sm_async resume ctrlc")
        kernel.run("import time\nt = time.time()\n"
                   "while job.unsent > 0 and time.time() - t < 90: time.sleep(0.2)\nassert job.unsent == 0, job.unsent",
                   timeout=120)
        assert settled <= interrupted_at + 2, (interrupted_at, settled)  # at most one window's refill raced it
        assert "Cancelled" in kernel.run("%sm_async cancel ctrlc")
        kernel.run("assert job.status_counts().get('QUEUED', 0) == 0 and job.job_state.value == 'cancelled'")
