"""(j) ``sma.LocalStack`` and the detached stack with the model running, next to the SageMaker SDK v2.

Both stacks are the one engine (moto's server, the runtime, the worker writing moto's backends
directly, the scaler) in a process of its own: ``sma.LocalStack``'s child process, and the
detached server of ``sm-async-nb local start``. Each serves the echo model file 8 invocations at
a time (in the engine's process) with 20 ms of emulated latency per request. On each:

* submission: our client ``submit_many``s N CSV payloads (S3 path) while the model runs, against
  the naive sequential upload + invoke and the SageMaker Python SDK v2's
  ``AsyncPredictor.predict_async`` called once per payload (in its own venv:
  ``SM_ASYNC_NB_SDK_PYTHON``, default ``/tmp/sdkv2/bin/python``; skipped with a note otherwise);
* collection: from the end of that submission until every result is in one DataFrame
  (``batch.wait()`` then ``batch.result()``), against the SDK collecting right after its own
  submission: ``AsyncInferenceResponse.get_result(WaiterConfig())`` (its default waiter) per
  response, in order;
* the emulator's CPU per completed invocation (``psutil`` user + system of the engine's process
  tree, from the first submission until the last invocation completed), against the first map's
  figure recorded before issue 14 (``results/before-issue-14.json``; target ≤ 1/3).

Both stacks run at once and take turns round by round, so load from elsewhere on this shared
machine hits them alike. The SDK's figures are timed over a sample of the payloads and scaled
linearly to N (its calls go one after the other).
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil

from sm_async_nb import LocalStack
from sm_async_nb.local.config import StackConfig
from sm_async_nb.local.detached import handle as detached

from ..baselines import PutThenInvoke
from ..config import TARGET_LATENCY_MS
from ..harness import ECHO, ECHO_MODEL, Bench, Sampled, boto_config, csv_payloads, interleaved
from ..report import Check, Row, ratio, seconds

BEFORE = Path(__file__).resolve().parents[1] / "results" / "before-issue-14.json"
SDK_SCRIPT = Path(__file__).resolve().parents[1] / "sdk_client.py"
CONCURRENCY = 8


def tree_cpu(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and all its descendants."""
    root = psutil.Process(pid)
    total = 0.0
    for process in [root, *root.children(recursive=True)]:
        with contextlib.suppress(psutil.NoSuchProcess):
            times = process.cpu_times()
            total += times.user + times.system
    return total


def stack_config(latency_ms: float) -> StackConfig:
    return StackConfig(model=str(ECHO_MODEL), endpoint_name=ECHO, concurrency=CONCURRENCY, latency_ms=latency_ms)


@contextlib.contextmanager
def detached_stack(workdir: Path, latency_ms: float) -> Iterator[Any]:
    """The detached stack server, with a state file of this run's own."""
    path = workdir / "local-stack.json"
    stack = detached.start(stack_config(latency_ms).replace(idle_timeout=3600), path=path)
    try:
        yield stack
    finally:
        detached.stop(path)


def warm(stack: Any, client: Any, payloads: list[str]) -> None:
    """Warm connections and imports on both sides."""
    client.submit_many(ECHO, payloads[:16], content_type="text/csv").wait(120)
    stack.wait_until_idle(120)


def submit_collect(stack: Any, client: Any, payloads: list[str]) -> dict[str, float]:
    """One round: submission time, collection time and engine CPU per completed invocation."""
    before, started = tree_cpu(stack.pid), time.perf_counter()
    batch = client.submit_many(ECHO, payloads, content_type="text/csv")
    submitted = time.perf_counter()
    frame = batch.wait(600).result()
    collected = time.perf_counter()
    if len(frame) != len(payloads):
        raise AssertionError(f"collected {len(frame)} rows of {len(payloads)}")
    if not stack.wait_until_idle(600):
        raise TimeoutError("the stack did not finish its queue")
    return {"submit_s": submitted - started, "collect_s": collected - submitted,
            "cpu_per_invocation_s": (tree_cpu(stack.pid) - before) / len(payloads)}


def sdk_python() -> str | None:
    path = os.environ.get("SM_ASYNC_NB_SDK_PYTHON", "/tmp/sdkv2/bin/python")
    return path if os.path.exists(path) else None


def sdk_baseline(stack: Any, payloads: list[str]) -> dict[str, Any] | None:
    """The SDK's predict_async then get_result, one payload after the other, in its own interpreter."""
    python = sdk_python()
    if python is None:
        print("scenario j: no SageMaker SDK v2 venv (SM_ASYNC_NB_SDK_PYTHON); skipping the SDK baseline",
              file=sys.stderr)
        return None
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PYTHON"))}
    env.update(stack.env, SAGEMAKER_SUPPRESS_V2_WARNING="1")
    args = {"endpoint": ECHO, "bucket": stack.input_bucket, "payloads": payloads}
    done = subprocess.run([python, str(SDK_SCRIPT), json.dumps(args)], env=env, capture_output=True, text=True,
                          timeout=900)
    if done.returncode != 0:
        print(f"scenario j: the SDK baseline failed: {done.stderr[-1000:]}", file=sys.stderr)
        return None
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def measure(bench: Bench, stacks: dict[str, Any], payloads: list[str]) -> dict[str, dict[str, Any]]:
    """Every figure on every stack, the stacks taking turns round by round (rotating which goes
    first), so load from elsewhere on this shared machine hits them alike."""
    sizes = bench.sizes
    clients = {name: stack.client(journal_path=bench.workdir / f"j-journal-{name}.sqlite3", max_workers=sizes.workers)
               for name, stack in stacks.items()}
    figures: dict[str, dict[str, Any]] = {name: {} for name in stacks}
    try:
        for name, stack in stacks.items():
            warm(stack, clients[name], payloads)
        rounds: dict[str, list[dict[str, float]]] = {name: [] for name in stacks}
        names = list(stacks)
        for rep in range(sizes.repeats):
            for name in names[rep % len(names):] + names[:rep % len(names)]:
                rounds[name].append(submit_collect(stacks[name], clients[name], payloads))
    finally:
        for client in clients.values():
            client.close()
    for name, done in rounds.items():
        for key in ("submit_s", "collect_s", "cpu_per_invocation_s"):
            figures[name][key] = statistics.median(r[key] for r in done)
            figures[name][f"rounds_{key}"] = [r[key] for r in done]
    first = stacks[names[0]]
    naive = PutThenInvoke(first.boto3_client("s3", config=boto_config(sizes.workers)),
                          first.boto3_client("sagemaker-runtime", config=boto_config(sizes.workers)),
                          ECHO, first.input_bucket)
    sequential = Sampled(naive.sequential, payloads, sizes.seq_sample, sizes.repeats)
    times, _ = interleaved({"sequential": sequential}, sizes.repeats)
    figures[names[0]]["sequential_s"] = sequential.scale(times["sequential"])
    figures[names[0]]["sequential_items_timed"] = sequential.timed_items
    first.wait_until_idle(600)
    sample = payloads[:max(10, sizes.seq_sample // 2)]
    for name in names:  # one SDK run per stack, one after the other (each is minutes of sequential calls)
        sdk = sdk_baseline(stacks[name], sample)
        stacks[name].wait_until_idle(600)
        if sdk is not None:
            figures[name]["sdk"] = sdk
            figures[name]["sdk_submit_s"] = sdk["seconds"] / sdk["count"] * len(payloads)
            figures[name]["sdk_collect_s"] = sdk["collect_seconds"] / sdk["count"] * len(payloads)
    return figures


def run(bench: Bench) -> list[Row]:
    sizes, latency = bench.sizes, TARGET_LATENCY_MS
    payloads = csv_payloads(sizes.payloads)
    with LocalStack.from_config(stack_config(latency)) as local, detached_stack(bench.workdir, latency) as server:
        figures = measure(bench, {"sma.LocalStack": local, "detached": server}, payloads)
    ours, away = figures["sma.LocalStack"], figures["detached"]
    recorded = statistics.median(json.loads(BEFORE.read_text())["cpu_per_invocation_ms"]) / 1000
    data = {"local_stack": ours, "detached": away, "first_map_recorded_before_s": recorded,
            "payloads": sizes.payloads, "concurrency": CONCURRENCY}
    skipped = "SDK baseline skipped: no SageMaker SDK v2 venv (SM_ASYNC_NB_SDK_PYTHON)."
    rows = []
    cpu = {name: figures["cpu_per_invocation_s"] for name, figures in (("sma.LocalStack", ours), ("detached", away))}
    rows.append(Row("j", "Emulator CPU per completed invocation (the engine's process)", latency,
                    ours="; ".join(f"{name} {value * 1000:.2f} ms" for name, value in cpu.items()),
                    baselines=f"first map {recorded * 1000:.2f} ms (recorded before issue 14)",
                    ratios="; ".join(f"{name} {value / recorded:.2f}×" for name, value in cpu.items()),
                    checks=[Check("≤ 1/3 of the first map's", max(cpu.values()) / recorded,
                                  max(cpu.values()) / recorded <= 1 / 3)], data=data,
                    note=f"{sizes.payloads} CSV payloads submitted by our client, echo model running {CONCURRENCY} at "
                         "a time in the engine's process."))
    for name, figures in (("sma.LocalStack", ours), ("detached stack", away)):
        baselines, ratios, checks = [], [], []
        if "sequential_s" in figures:
            vs_seq = figures["sequential_s"] / figures["submit_s"]
            baselines.append(f"sequential put + invoke {seconds(figures['sequential_s'])}")
            ratios.append(f"{ratio(vs_seq)} sequential")
            checks.append(Check("≥ 10× sequential", vs_seq, vs_seq >= 10))
        if "sdk" in figures:
            vs_sdk = figures["sdk_submit_s"] / figures["submit_s"]
            baselines.append(f"SageMaker SDK {figures['sdk']['sdk_version']} AsyncPredictor.predict_async "
                             f"{seconds(figures['sdk_submit_s'])}")
            ratios.append(f"{ratio(vs_sdk)} SDK")
            checks.append(Check("≥ 10× SDK", vs_sdk, vs_sdk >= 10))
        rows.append(Row("j", f"Submit {sizes.payloads} CSV payloads with the model running ({name})", latency,
                        ours=f"{seconds(figures['submit_s'])} ({sizes.payloads / figures['submit_s']:.0f}/s)",
                        baselines="; ".join(baselines) or "—", ratios="; ".join(ratios) or "—", checks=checks,
                        data=data, note="" if "sdk" in figures else skipped))
        collect_checks, collect_base, collect_ratio = [], "—", "—"
        if "sdk" in figures:
            vs_sdk = figures["sdk_collect_s"] / figures["collect_s"]
            collect_base = (f"SageMaker SDK {figures['sdk']['sdk_version']} get_result(WaiterConfig()) per response "
                            f"{seconds(figures['sdk_collect_s'])}")
            collect_ratio = f"{ratio(vs_sdk)} SDK"
            collect_checks.append(Check("≥ 100× SDK", vs_sdk, vs_sdk >= 100))
        rows.append(Row("j", f"Collect {sizes.payloads} results into a DataFrame, model running ({name})", latency,
                        ours=f"batch.wait().result() {seconds(figures['collect_s'])}", baselines=collect_base,
                        ratios=collect_ratio, checks=collect_checks, data=data,
                        note="" if "sdk" in figures else skipped))
    return rows
