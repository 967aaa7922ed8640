"""(n) One job through an inference router over three local endpoints vs the same job to one of them
(SPEC §20), and the same job when one destination is at 0 instances with no scale-out.

One ``sma.LocalStack``; three async endpoints made with plain boto3 from one model.tar.gz whose
``predict_fn`` waits 50 ms (scenario k's), MaxConcurrentInvocationsPerInstance 2, one instance each;
one inference router whose routing target lists the three. The client side of routers comes later
(issue 27), so the jobs are plain boto3: N inputs are uploaded before the clock starts, then N
InvokeEndpointAsync (to one endpoint) or InvokeInferenceRouterAsync (to the router) calls go out
from 8 threads, and a job's wall time runs from the first call to the last request finishing (the
runtime's records, which also say what expired, where each ran and how often it moved).

1. The job to endpoint a, then through the router (MaxTimeInBacklogSeconds 21600: nothing moves):
   the router's wall time against the endpoint's, and how many expired.
2. Endpoint c scaled to 0 instances (UpdateEndpointWeightsAndCapacities; no scaling policy, so it
   never scales out), a second router over a, b, c: the requests the router put at c (it uses a
   destination at 0 instances after the others, never excludes it) wait MaxTimeInBacklogSeconds
   there and move. That is set a little longer than a and b need for the whole job at the rate the
   one-endpoint job just measured (at least 60, the floor; ``time_scale`` keeps it a few real
   seconds in a quick run), so only what waits at c moves — a request that waited that long at a
   busy a or b would move too, and after a, b and c all had it the router gives up on it. Every
   request must complete; the row says how many moved.
"""

from __future__ import annotations

import math
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from botocore.config import Config

from sm_async_nb import LocalStack

from ..harness import Bench
from ..report import Check, Row, ratio, seconds
from .fleet import MODEL_SECONDS, PER_INSTANCE, create_endpoint, model_archive

ENDPOINTS = ("route-a", "route-b", "route-c")
THREADS = 8
MOVE_FLOOR = 60  # MaxTimeInBacklogSeconds' least value
FINISHED = frozenset({"Completed", "Failed", "Expired", "TimedOut"})


def _arn(stack: LocalStack, name: str) -> str:
    return f"arn:aws:sagemaker:{stack.region}:{stack.account_id}:endpoint/{name}"


def _router(stack: LocalStack, name: str, backlog: int) -> None:
    sm = stack.boto3_client("sagemaker")
    sm.create_inference_router(InferenceRouterName=name, RoutingTargets=[{
        "Name": "job", "Destinations": [{"ResourceArn": _arn(stack, e)} for e in ENDPOINTS],
        "AsyncInferenceConfig": {"OutputConfig": {"S3OutputPath": f"s3://{stack.input_bucket}/routed/{name}/",
                                                  "S3FailurePath": f"s3://{stack.input_bucket}/routed-failures/{name}/"},
                                 "ClientConfig": {"MaxTimeInBacklogSeconds": backlog}}}])
    while sm.describe_inference_router(InferenceRouterName=name)["Status"] != "InService":
        time.sleep(0.1)


def _upload(stack: LocalStack, count: int) -> list[str]:
    s3 = stack.boto3_client("s3", config=Config(max_pool_connections=16))
    keys = [f"route-inputs/{i}.csv" for i in range(count)]
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda key: s3.put_object(Bucket=stack.input_bucket, Key=key, Body=b"1,2,3\n"), keys))
    return [f"s3://{stack.input_bucket}/{key}" for key in keys]


def _job(stack: LocalStack, inputs: list[str], *, endpoint: str | None = None,
         router: str | None = None) -> dict[str, Any]:
    """Send one request per input, to ``endpoint`` or through ``router``; wait until each finished.
    Returns the wall time and the records of this job's requests."""
    config = Config(max_pool_connections=THREADS, retries={"mode": "standard", "max_attempts": 5})
    job = uuid.uuid4().hex[:8]
    if router is not None:
        client = stack.boto3_client("sagemaker-inference-router-runtime", config=config)

        def send(item: tuple[int, str]) -> str:
            return client.invoke_inference_router_async(InferenceRouterName=router, RoutingTargetName="job",
                                                        InputLocation=item[1], ContentType="text/csv",
                                                        InferenceId=f"{job}-{item[0]}")["InferenceId"]
    else:
        client = stack.boto3_client("sagemaker-runtime", config=config)

        def send(item: tuple[int, str]) -> str:
            return client.invoke_endpoint_async(EndpointName=endpoint, InputLocation=item[1], ContentType="text/csv",
                                                InferenceId=f"{job}-{item[0]}")["InferenceId"]
    started = time.time()
    with ThreadPoolExecutor(THREADS) as pool:
        ids = set(pool.map(send, enumerate(inputs)))
    if not stack.wait_until_idle(3600):  # waits in the engine: no polling that would compete for its CPU
        raise TimeoutError("the job did not finish within an hour")
    records = [r for r in stack.records(endpoint, router) if r["inference_id"] in ids]
    assert len(records) == len(ids) and all(r["status"] in FINISHED for r in records), "every request finished"
    return {"seconds": max(r["finished_at"] for r in records) - started, "records": records}


def _summary(records: list[dict[str, Any]]) -> dict[str, Any]:
    statuses: dict[str, int] = {}
    ran_at: dict[str, int] = {}
    for record in records:
        statuses[record["status"]] = statuses.get(record["status"], 0) + 1
        if record["started_at"] is not None:
            ran_at[record["endpoint_name"]] = ran_at.get(record["endpoint_name"], 0) + 1
    return {"statuses": statuses, "ran_at": ran_at, "moved": sum(1 for r in records if r["moves"]),
            "moves": sum(r["moves"] for r in records)}


def run(bench: Bench) -> list[Row]:
    count = bench.sizes.payloads * 4  # 2,000 (a full run), 160 (--quick)
    ideal = count * MODEL_SECONDS / (2 * PER_INSTANCE)  # the whole job on two endpoints at the model's pace, real s
    time_scale = MOVE_FLOOR / (1.2 * ideal + 1.0)  # 60 emulated seconds: a little longer than that
    with LocalStack(time_scale=time_scale) as stack:
        stack.boto3_client("s3").put_object(Bucket=stack.input_bucket, Key="route/model.tar.gz", Body=model_archive())
        for name in ENDPOINTS:
            create_endpoint(stack, name, 1, f"s3://{stack.input_bucket}/route/model.tar.gz")
        _router(stack, "spread", 21600)
        inputs = _upload(stack, count)
        one = _job(stack, inputs, endpoint=ENDPOINTS[0])
        routed = _job(stack, inputs, router="spread")

        sm = stack.boto3_client("sagemaker")
        sm.update_endpoint_weights_and_capacities(EndpointName=ENDPOINTS[2], DesiredWeightsAndCapacities=[
            {"VariantName": "AllTraffic", "DesiredInstanceCount": 0}])
        while sm.describe_endpoint(EndpointName=ENDPOINTS[2])["ProductionVariants"][0]["CurrentInstanceCount"]:
            time.sleep(0.1)
        drain = count / 2 / (count / one["seconds"])  # two endpoints at the rate one endpoint just had
        move_after = min(21600, max(MOVE_FLOOR, math.ceil((1.2 * drain + 1.0) * time_scale)))
        _router(stack, "rescue", move_after)
        rescued = _job(stack, inputs, router="rescue")

    speedup = one["seconds"] / routed["seconds"]
    one_summary, routed_summary, rescued_summary = (_summary(j["records"]) for j in (one, routed, rescued))
    expired = routed_summary["statuses"].get("Expired", 0) + one_summary["statuses"].get("Expired", 0)
    completed = rescued_summary["statuses"].get("Completed", 0)
    common = {"requests": count, "model_seconds": MODEL_SECONDS, "per_instance": PER_INSTANCE, "threads": THREADS,
              "time_scale": time_scale}
    return [
        Row("n", f"A {count:,}-request job through an inference router over 3 endpoints vs to one of them "
                 f"({PER_INSTANCE} per instance, {MODEL_SECONDS * 1000:.0f} ms model; plain boto3)", None,
            ours=f"router {seconds(routed['seconds'])}, {routed_summary['statuses'].get('Expired', 0)} expired, "
                 f"ran at {routed_summary['ran_at']}",
            baselines=f"one endpoint {seconds(one['seconds'])}, {one_summary['statuses'].get('Expired', 0)} expired",
            ratios=f"{ratio(speedup)} faster (ideal 3×)",
            checks=[Check("≥ 2.5× faster", speedup, speedup >= 2.5), Check("0 expired", expired, expired == 0)],
            data={**common, "one_endpoint_seconds": one["seconds"], "router_seconds": routed["seconds"],
                  "speedup": speedup, "one_endpoint": one_summary, "router": routed_summary}),
        Row("n", f"The same job, one of the 3 destinations at 0 instances with no scale-out "
                 f"(MaxTimeInBacklogSeconds {move_after}, {seconds(move_after / time_scale)} real)", None,
            ours=f"{completed:,} of {count:,} completed in {seconds(rescued['seconds'])}; {rescued_summary['moved']:,} "
                 f"moved ({rescued_summary['moves']:,} moves); ran at {rescued_summary['ran_at']}",
            baselines="—", ratios="—",
            checks=[Check("every request completes", completed, completed == count)],
            data={**common, "seconds": rescued["seconds"], "router": rescued_summary,
                  "max_time_in_backlog_seconds": move_after, "move_after_real_seconds": move_after / time_scale}),
    ]
