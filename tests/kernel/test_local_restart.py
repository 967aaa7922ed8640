"""The restart promise on the default, no-AWS path: the detached local stack outlives a kernel
restart (jupyter_client ``restart_kernel``), and two kernels share one stack."""

from __future__ import annotations

import psutil

ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]] * 4
SPECIES = ["setosa", "virginica", "versicolor"] * 4


def stack_pid(kernel) -> int:
    out = kernel.run("from sm_async_nb.local.detached import handle as detached\nprint('PID', detached.find().stack.pid)")
    return int(out.split("PID")[1])


def test_a_kernel_restart_loses_nothing_on_the_local_stack(kernels, user_env):
    kernel = kernels(user_env)
    kernel.run("%load_ext sm_async_nb")
    started = kernel.run("%sm_async local start --delay 0.3 --concurrency 2")
    assert "detached" in started
    pid = stack_pid(kernel)
    server = psutil.Process(pid)  # is_running() compares its start time too: a reused pid is not the server
    kernel.run("%%invoke_async local-async --label flowers --accept text/csv\n5.1,3.5,1.4,0.2\n6.7,3.0,5.2,2.3\n")
    kernel.run(f"import pandas as pd\nframe = pd.DataFrame({ROWS!r}, index=[f'r{{i}}' for i in range({len(ROWS)})])\n"
               "job = %invoke_async local-async frame --rows-per-request 1 --accept text/csv --label batch")

    kernel.manager.restart_kernel(now=True)  # kills the kernel process; a new one starts
    kernel.client.wait_for_ready(timeout=60)
    assert server.is_running(), "the stack must outlive the kernel"

    kernel.run("%load_ext sm_async_nb")
    again = kernel.run("%sm_async local start")
    assert f"pid {pid}" in again and "reattached" in again
    kernel.run("%sm_async wait flowers batch --timeout 90")
    kernel.run("%sm_async result flowers -o df\nassert df[0].tolist() == ['setosa', 'virginica'], df")
    kernel.run("%sm_async result batch -o scored\n"
               f"assert scored.index.tolist() == [f'r{{i}}' for i in range({len(ROWS)})], scored.index\n"
               f"assert scored[0].tolist() == {SPECIES!r}, scored")
    stopped = kernel.run("%sm_async local stop")
    assert "Local stack stopped." in stopped
    assert not server.is_running() or server.status() == psutil.STATUS_ZOMBIE


def test_two_kernels_share_one_stack(kernels, user_env):
    first, second = kernels(user_env), kernels(user_env)
    for kernel in (first, second):
        kernel.run("%load_ext sm_async_nb")
    first.run("%sm_async local start --endpoint ep-a")
    second.run("%sm_async local start --endpoint ep-b")
    assert stack_pid(first) == stack_pid(second)
    # Each kernel reaches the endpoint the other one added.
    first.run("%%invoke_async ep-b --label from-a --accept text/csv\n5.1,3.5,1.4,0.2\n")
    second.run("%%invoke_async ep-a --label from-b --accept text/csv\n6.7,3.0,5.2,2.3\n")
    first.run("%sm_async wait from-a --timeout 60\n%sm_async result from-a -o df\nassert df[0].tolist() == ['setosa']")
    second.run("%sm_async wait from-b --timeout 60\n%sm_async result from-b -o df\n"
               "assert df[0].tolist() == ['virginica']")
    first.manager.shutdown_kernel(now=True)
    assert "detached" in second.run("%sm_async local status")  # still there for the other kernel
