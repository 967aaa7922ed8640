"""(e) Kernel responsiveness: round-trip time of ``1+1`` through a real kernel (jupyter_client),
while that kernel's client tracks N pending invocations with its tracker thread polling, vs the
same kernel with the tracker stopped (nothing tracked).

The tracker polls as often as it can (``poll_interval`` 0.5 s, the minimum interval); cells are
sent at random moments (0–100 ms apart) in alternating blocks of both conditions, so drift hits
both alike and executions land anywhere in the polling cycle.
"""

from __future__ import annotations

import ast
import json
import os
import random
import statistics
import time
from pathlib import Path
from typing import Any

from ..config import TARGET_LATENCY_MS
from ..harness import Bench, Phase, per_latency
from ..report import Check, Row

BLOCKS = 4
POLL_INTERVAL = 0.5
SETUP = """
import boto3, sm_async_nb as sma
_bench = {config}
_client = sma.AsyncInferenceClient(_bench["prefix"], session=boto3.Session(**_bench["credentials"]),
                                   endpoint_urls=_bench["urls"], journal_path=_bench["journal"])
_client.settings.poll_interval = {interval}
"""


class KernelSession:
    """A real IPython kernel (ipykernel, this Python) driven through jupyter_client."""

    def __init__(self, workdir: Path, env: dict[str, str]):
        from jupyter_client import KernelManager

        self.log = workdir / "kernel.log"
        self.manager = KernelManager(kernel_name="python3", connection_file=str(workdir / "kernel.json"))
        with open(self.log, "w") as log:  # the kernel's own chatter, shown only if it fails
            self.manager.start_kernel(cwd=str(workdir), stdout=log, stderr=log, env={
                **os.environ, **env, "IPYTHONDIR": str(workdir / "ipython"),
                "SM_ASYNC_NB_HOME": str(workdir / "sm-async-nb"), "JUPYTER_RUNTIME_DIR": str(workdir)})
        self.client = self.manager.client()
        self.client.start_channels()
        try:
            self.client.wait_for_ready(timeout=120)
        except RuntimeError:
            self.close()
            raise RuntimeError(f"the benchmark kernel did not start:\n{self.log.read_text()[-2000:]}") from None

    def execute(self, code: str, user_expressions: dict[str, str] | None = None,
                timeout: float = 120) -> tuple[float, dict[str, Any]]:
        """Run ``code``; returns (seconds from the request to the kernel going idle, the reply)."""
        started = time.perf_counter()
        msg_id = self.client.execute(code, store_history=False, user_expressions=user_expressions)
        while True:
            msg = self.client.get_iopub_msg(timeout=timeout)
            if (msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == "status"
                    and msg["content"]["execution_state"] == "idle"):
                break
        elapsed = time.perf_counter() - started
        reply = self.client.get_shell_msg(timeout=timeout)
        while reply["parent_header"].get("msg_id") != msg_id:  # a late reply to an earlier request
            reply = self.client.get_shell_msg(timeout=timeout)
        content = reply["content"]
        if content["status"] != "ok":
            raise RuntimeError(f"kernel error running {code!r} ({content['status']}): {content.get('ename')}: "
                               f"{content.get('evalue')}\n{self.log.read_text()[-2000:]}")
        return elapsed, content

    def evaluate(self, expression: str) -> Any:
        """The value of a Python literal expression evaluated in the kernel."""
        result = self.execute("", {"value": expression})[1]["user_expressions"]["value"]
        if result["status"] != "ok":
            raise RuntimeError(f"kernel could not evaluate {expression!r}: {result.get('evalue')}")
        return ast.literal_eval(result["data"]["text/plain"])

    def close(self) -> None:
        self.client.stop_channels()
        self.manager.shutdown_kernel(now=False)


def _at(bench: Bench, latency: int) -> Row:
    sizes = bench.sizes
    with bench.phase(latency) as phase:
        _, submitter = phase.pending_behind_held(sizes.pending)
        kernel = KernelSession(phase.workdir, phase.stack.env)
        try:
            data = _measure(kernel, phase, str(submitter.journal.path), sizes.kernel_runs)
        finally:
            kernel.close()
    data["tracked"] = sizes.pending
    added = data["added_p95_ms"]
    checks = [Check("≤ 20 ms added at p95", added, added <= 20)] if latency == TARGET_LATENCY_MS else []
    return Row("e", f"Kernel round trip of `1+1`, {sizes.pending:,} tracked", latency,
               ours=f"p50 {data['tracked_p50_ms']:.1f} ms, p95 {data['tracked_p95_ms']:.1f} ms",
               baselines=f"none tracked: p50 {data['idle_p50_ms']:.1f} ms, p95 {data['idle_p95_ms']:.1f} ms",
               ratios=f"{added:+.1f} ms at p95", checks=checks, data=data,
               note=f"{data['refreshes']} tracker refreshes ran during the tracked executions "
                    f"(last took {data['last_refresh_ms']:.0f} ms, {data['last_refresh_s3_requests']} S3 requests).")


def _measure(kernel: KernelSession, phase: Phase, journal: str, runs: int) -> dict[str, Any]:
    config = {"prefix": f"s3://{phase.stack.input_bucket}/inputs/", "urls": phase.stack.endpoint_urls,
              "journal": journal, "credentials": {"aws_access_key_id": "testing", "aws_secret_access_key": "testing",
                                                  "region_name": phase.stack.region}}
    kernel.execute(SETUP.format(config=json.dumps(config), interval=POLL_INTERVAL))
    tracked = kernel.evaluate("len(_client.records(statuses=[sma.Status.PENDING]))")
    assert tracked > 0, "the kernel's client should see the pending invocations"
    samples: dict[str, list[float]] = {"idle": [], "tracked": []}
    rng = random.Random(8)
    per_block = max(1, runs // BLOCKS)
    refreshes = 0
    for block in range(BLOCKS * 2):
        condition = ("idle", "tracked")[block % 2]
        if condition == "tracked":
            before = kernel.evaluate("_client.tracker.stats.refreshes")
            kernel.execute("_client.tracker.start()")
        for _ in range(per_block):
            time.sleep(rng.uniform(0, 0.1))
            samples[condition].append(kernel.execute("1+1")[0])
        if condition == "tracked":
            kernel.execute("_client.tracker.stop()")
            refreshes += kernel.evaluate("_client.tracker.stats.refreshes") - before
    last = kernel.evaluate("(_client.tracker.stats.duration, _client.tracker.stats.s3_requests, "
                           "_client.tracker.stats.pending)")
    kernel.execute("_client.close()")
    stats = {f"{name}_{label}_ms": value * 1000 for name, values in samples.items()
             for label, value in (("p50", statistics.median(values)), ("p95", _p95(values)))}
    return {**stats, "added_p95_ms": stats["tracked_p95_ms"] - stats["idle_p95_ms"],
            "added_p50_ms": stats["tracked_p50_ms"] - stats["idle_p50_ms"], "executions_each": len(samples["idle"]),
            "refreshes": refreshes, "last_refresh_ms": last[0] * 1000, "last_refresh_s3_requests": last[1],
            "pending_seen_by_kernel": last[2], "poll_interval_s": POLL_INTERVAL, "samples_ms": {
                name: [round(v * 1000, 2) for v in values] for name, values in samples.items()}}


def _p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20, method="inclusive")[-1] if len(values) > 1 else values[0]


run = per_latency(_at)
