"""(k) Drain throughput of one async endpoint at 1 instance vs 3 instances (SPEC §17: every instance
runs MaxConcurrentInvocationsPerInstance requests at once, so N instances drain N times faster).

One ``sma.LocalStack``; two endpoints created through the control plane with plain boto3, from the
same model.tar.gz (``code/inference.py`` whose ``predict_fn`` waits 50 ms, as a model waiting on
I/O or an accelerator does) and the same MaxConcurrentInvocationsPerInstance (2); one with
InitialInstanceCount 1, the other with 3. Each round queues N requests (inline bodies) on one
endpoint, then on the other; throughput is N over the time from the first request starting to
the last one finishing (the runtime's own records), the median of the rounds.
"""

from __future__ import annotations

import io
import statistics
import tarfile

from sm_async_nb import LocalStack

from ..harness import Bench
from ..report import Check, Row, ratio

PER_INSTANCE = 2
MODEL_SECONDS = 0.05
HANDLER = f'''
import time

def model_fn(model_dir):
    return None

def input_fn(body, content_type):
    return body

def predict_fn(data, model):
    time.sleep({MODEL_SECONDS})
    return data

def output_fn(prediction, accept):
    return prediction, "text/csv"
'''


def model_archive() -> bytes:
    """model.tar.gz with ``code/inference.py`` waiting MODEL_SECONDS per request (also scenario n's)."""
    stream = io.BytesIO()
    with tarfile.open(fileobj=stream, mode="w:gz") as archive:
        data = HANDLER.encode()
        info = tarfile.TarInfo("code/inference.py")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    return stream.getvalue()


def create_endpoint(stack: LocalStack, name: str, instances: int, model_data: str) -> None:
    """An async endpoint of that model, made with plain boto3 (no scaling registered), once InService."""
    sm = stack.boto3_client("sagemaker")
    sm.create_model(ModelName=name, ExecutionRoleArn="arn:aws:iam::123456789012:role/bench",
                    PrimaryContainer={"Image": "bench/waiting-model:1", "ModelDataUrl": model_data})
    sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": name, "InstanceType": "ml.m5.large",
        "InitialInstanceCount": instances}], AsyncInferenceConfig={
        "OutputConfig": {"S3OutputPath": f"s3://{stack.input_bucket}/fleet/{name}/"},
        "ClientConfig": {"MaxConcurrentInvocationsPerInstance": PER_INSTANCE}})
    sm.create_endpoint(EndpointName=name, EndpointConfigName=name)
    sm.get_waiter("endpoint_in_service").wait(EndpointName=name, WaiterConfig={"Delay": 1})


def _drain(stack: LocalStack, runtime, name: str, count: int, round_: int) -> float:
    """Requests per second for ``count`` requests queued on ``name``."""
    ids = {runtime.invoke_endpoint_async(EndpointName=name, Body=b"1,2,3\n", ContentType="text/csv",
                                         InferenceId=f"r{round_}-{i}")["InferenceId"] for i in range(count)}
    if not stack.wait_until_idle(600):
        raise TimeoutError(f"{name} did not drain")
    records = [r for r in stack.records(name) if r["inference_id"] in ids]
    assert len(records) == count and {r["status"] for r in records} == {"Completed"}, "every request completes"
    return count / (max(r["finished_at"] for r in records) - min(r["started_at"] for r in records))


def run(bench: Bench) -> list[Row]:
    count = max(24, bench.sizes.payloads // 4)
    rounds = max(1, bench.sizes.repeats)
    with LocalStack() as stack:
        stack.boto3_client("s3").put_object(Bucket=stack.input_bucket, Key="fleet/model.tar.gz", Body=model_archive())
        model_data = f"s3://{stack.input_bucket}/fleet/model.tar.gz"
        create_endpoint(stack, "fleet-1", 1, model_data)
        create_endpoint(stack, "fleet-3", 3, model_data)
        runtime = stack.boto3_client("sagemaker-runtime")
        one, three = [], []
        for round_ in range(rounds):  # alternating, so load from elsewhere hits both alike
            one.append(_drain(stack, runtime, "fleet-1", count, round_))
            three.append(_drain(stack, runtime, "fleet-3", count, round_))
    at_one, at_three = statistics.median(one), statistics.median(three)
    speedup = at_three / at_one
    ideal = PER_INSTANCE / MODEL_SECONDS
    return [Row("k", f"Drain {count} requests, 1 vs 3 instances ({PER_INSTANCE} per instance, "
                     f"{MODEL_SECONDS * 1000:.0f} ms model)", None,
                ours=f"3 instances {at_three:.1f}/s", baselines=f"1 instance {at_one:.1f}/s",
                ratios=f"{ratio(speedup)} (ideal 3×; 1 instance's ideal {ideal:.0f}/s)",
                checks=[Check("≥ 2.5× at 3 instances", speedup, speedup >= 2.5)],
                data={"requests": count, "rounds": rounds, "one_instance_per_s": one,
                      "three_instances_per_s": three, "speedup": speedup, "per_instance": PER_INSTANCE,
                      "model_seconds": MODEL_SECONDS})]
