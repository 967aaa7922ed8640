"""The client through inference routers (SPEC §20), end to end on the local stack: ``sma.RoutingTarget``
wherever an endpoint name is accepted (submit, submit_many, submit_dataframe, submit_s3, submit_dataset),
requests spread over three endpoints — one of them at 0 instances, from which the router moves them —
results at the routing target's S3OutputPath, resubmission through the router, ``client.router_status``
and its warnings, and each bad input refused in one line with nothing uploaded and nothing journaled.

The stack runs at time_scale 30: MaxTimeInBacklogSeconds' floor of 60 s is 2 real seconds.
"""

from __future__ import annotations

import time

import pandas as pd
import pytest

import sm_async_nb as sma
from sm_async_nb.notebook.panel.strip import router_html

TIME_SCALE = 30
ACCOUNT = "123456789012"
LIVE, IDLE, REALTIME = ("dest-a", "dest-b"), "dest-zero", "dest-rt"
ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]]
SPECIES = ["setosa", "virginica", "versicolor"]


def arn(stack, name: str) -> str:
    return f"arn:aws:sagemaker:{stack.region}:{ACCOUNT}:endpoint/{name}"


def in_service(sm, name: str) -> None:
    deadline = time.monotonic() + 20
    while sm.describe_inference_router(InferenceRouterName=name)["Status"] != "InService":
        assert time.monotonic() < deadline, "router never InService"
        time.sleep(0.05)


def create_router(stack, name: str, targets: list[dict]) -> None:
    sm = stack.boto3_client("sagemaker")
    sm.create_inference_router(InferenceRouterName=name, RoutingTargets=targets)
    in_service(sm, name)


def async_target(stack, name: str, destinations, backlog: int = 60) -> dict:
    return {"Name": name, "Destinations": [{"ResourceArn": arn(stack, d)} for d in destinations],
            "AsyncInferenceConfig": {"OutputConfig": {"S3OutputPath": f"s3://{stack.input_bucket}/routed/{name}/",
                                                      "S3FailurePath": f"s3://{stack.input_bucket}/routed-f/{name}/"},
                                     "ClientConfig": {"MaxTimeInBacklogSeconds": backlog}}}


def scale_to_zero(stack, name: str) -> None:
    """0 instances and nothing to scale it out again: the stack's own scaling is deregistered first, with
    plain boto3."""
    stack.boto3_client("application-autoscaling").deregister_scalable_target(
        ServiceNamespace="sagemaker", ResourceId=f"endpoint/{name}/variant/AllTraffic",
        ScalableDimension="sagemaker:variant:DesiredInstanceCount")
    sm = stack.boto3_client("sagemaker")
    sm.update_endpoint_weights_and_capacities(EndpointName=name, DesiredWeightsAndCapacities=[
        {"VariantName": "AllTraffic", "DesiredInstanceCount": 0}])
    deadline = time.monotonic() + 20
    while sm.describe_endpoint(EndpointName=name)["ProductionVariants"][0]["CurrentInstanceCount"] != 0:
        assert time.monotonic() < deadline
        time.sleep(0.05)


@pytest.fixture(scope="module")
def stack():
    with sma.LocalStack(endpoint_name=LIVE[0], time_scale=TIME_SCALE) as stack:
        stack.add_endpoint(LIVE[1])
        stack.add_endpoint(IDLE)
        stack.add_endpoint(REALTIME, asynchronous=False)
        scale_to_zero(stack, IDLE)  # no scaling registered: it stays at 0
        create_router(stack, "fleet", [async_target(stack, "main", (*LIVE, IDLE)),
                                       {"Name": "sync", "Destinations": [{"ResourceArn": arn(stack, REALTIME)}]}])
        yield stack


@pytest.fixture
def client(stack, tmp_path):
    with stack.client(journal_path=tmp_path / "journal.sqlite3") as client:
        yield client


def input_objects(stack) -> list[str]:
    s3 = stack.boto3_client("s3")
    listed = s3.list_objects_v2(Bucket=stack.input_bucket, Prefix="inputs/")
    return sorted(o["Key"] for o in listed.get("Contents", []))


def test_submit_through_a_router_lands_at_the_targets_output_path(stack, client):
    target = sma.RoutingTarget("fleet", "main")
    inv = client.submit(target, "5.1,3.5,1.4,0.2\n", accept="text/csv", filename="f" * 64, label="one")
    assert inv.endpoint_name == "fleet/main"
    assert inv.output_location == f"s3://{stack.input_bucket}/routed/main/{'f' * 64}"
    assert inv.wait(timeout=60).result()[0].tolist() == ["setosa"]
    (record,) = [r for r in stack.records(router_name="fleet") if r["inference_id"] == inv.inference_id]
    assert record["routing_target_name"] == "main" and record["endpoint_name"] in LIVE
    frame = client.tracker.to_frame()
    assert frame.loc[frame.inference_id == inv.inference_id, "endpoint_name"].tolist() == ["fleet/main"]


def test_every_batch_method_spreads_over_the_destinations_and_moves_off_the_idle_one(stack, client, tmp_path):
    target = sma.RoutingTarget("fleet", "main")
    df = pd.DataFrame(ROWS * 8)
    pd.DataFrame(ROWS * 4).to_parquet(tmp_path / "rows.parquet")
    s3 = stack.boto3_client("s3")
    s3.put_object(Bucket=stack.input_bucket, Key="user/one.csv", Body=b"6.7,3.0,5.2,2.3\n", ContentType="text/csv")
    batches = [client.submit_many(target, ["5.1,3.5,1.4,0.2\n"] * 6, accept="text/csv"),
               client.submit_dataframe(target, df, rows_per_request=2, accept="text/csv"),
               client.submit_s3(target, f"s3://{stack.input_bucket}/user/one.csv", accept="text/csv"),
               client.submit_dataset(target, tmp_path / "rows.parquet", rows_per_request=3, accept="text/csv")]
    for batch in batches:
        assert batch.wait(timeout=120).status_counts().get("COMPLETED") == len(batch.inference_ids)
    assert batches[1].result()[0].tolist() == SPECIES * 8  # in input order, wherever each part ran
    assert batches[3].result()[0].tolist() == SPECIES * 4
    ids = {i for b in batches for i in b.inference_ids}
    ran = [r for r in stack.records(router_name="fleet") if r["inference_id"] in ids]
    where = {r["endpoint_name"] for r in ran}
    assert where == set(LIVE), where  # both live destinations used; nothing ran at the one with 0 instances
    moved = [r for r in ran if r["moves"]]
    assert moved and all(r["destinations_tried"][0] == IDLE for r in moved)
    assert all(r["output_location"].startswith(f"s3://{stack.input_bucket}/routed/main/") for r in ran)


def test_a_routed_request_that_failed_to_send_is_resubmitted_through_the_router(stack, client):
    create_router(stack, "brief", [async_target(stack, "main", LIVE)])
    target = sma.RoutingTarget("brief", "main")
    client.submit(target, "5.1,3.5,1.4,0.2\n", accept="text/csv").wait(timeout=60)  # the router is checked once
    stack.boto3_client("sagemaker").delete_inference_router(InferenceRouterName="brief")
    with pytest.raises(sma.SubmissionError, match="brief") as caught:
        client.submit(target, "6.7,3.0,5.2,2.3\n", accept="text/csv")
    failed = client.invocation(caught.value.inference_id)
    assert failed.status is sma.Status.ERROR  # its upload was removed again: the payload is held for resubmit()
    create_router(stack, "brief", [async_target(stack, "main", LIVE)])
    (again,) = client.resubmit([failed.inference_id])
    assert again.inference_id == failed.inference_id
    assert again.wait(timeout=60).result()[0].tolist() == ["virginica"]


@pytest.mark.parametrize("bad, parameter, words", [
    (lambda c: c.submit(sma.RoutingTarget("nowhere", "main"), "1"), "InferenceRouterName",
     'Could not find inference router "arn:aws:sagemaker:us-east-1:123456789012:inference-router/nowhere"'),
    (lambda c: c.submit(sma.RoutingTarget("fleet", "other"), "1"), "RoutingTargetName",
     "Routing target 'other' not found in inference router 'fleet' (its routing targets: main, sync)"),
    (lambda c: c.submit(sma.RoutingTarget("fleet", "sync"), "1"), "RoutingTargetName", "is not asynchronous"),
    (lambda c: c.submit(sma.RoutingTarget("fleet", "main"), "1", inline=True), "inline",
     "InvokeInferenceRouterAsync takes the input from S3"),
    (lambda c: c.submit(sma.RoutingTarget("fleet", "main"), "1", filename="f" * 65), "Filename",
     "it must be 1..64 characters"),
    (lambda c: c.submit_many(sma.RoutingTarget("fleet", "main"), ["1"], filename=["g" * 65]), "Filename",
     "it must be 1..64 characters"),
    (lambda c: c.submit(sma.RoutingTarget("fleet", "main_"), "1"), "RoutingTargetName", "RoutingTargetName 'main_'"),
    (lambda c: c.endpoint_status(sma.RoutingTarget("fleet", "main")), "EndpointName", "router_status('fleet')"),
    (lambda c: c.submit("fleet/main", "1"), "EndpointName", "sma.RoutingTarget(router, target)"),
    (lambda c: c.router_status("no/such"), "InferenceRouterName", "InferenceRouterName 'no/such' is invalid"),
])
def test_bad_input_is_one_line_and_leaves_nothing(stack, client, bad, parameter, words):
    before = input_objects(stack)
    with pytest.raises(sma.ValidationError) as caught:
        bad(client)
    message = str(caught.value)
    assert words in message and "\n" not in message, message
    assert caught.value.parameter == parameter
    assert client.records(include_other_origins=True) == []
    assert input_objects(stack) == before


def test_router_status_reads_each_destination_and_warns(stack, client):
    create_router(stack, "cold", [async_target(stack, "idle", (IDLE,), backlog=600),
                                  {**async_target(stack, "gone", (LIVE[0], "never-made")), "Name": "gone"}])
    rs = client.router_status("cold", max_age=0)
    assert isinstance(rs, sma.RouterStatus) and rs.status == "InService"
    idle, gone = rs.target("idle"), rs.target("gone")
    assert idle.max_time_in_backlog_s == 600 and idle.output_path.endswith("/routed/idle/")
    (zero,) = idle.destinations
    assert zero.routing_status == "Routable" and zero.endpoint.current_instances == 0 and zero.capacity == 0
    assert [(d.endpoint_name, d.routing_status) for d in gone.destinations] == [
        (LIVE[0], "Routable"), ("never-made", "Unroutable")]
    assert gone.destinations[0].endpoint.status == "InService" and gone.destinations[1].endpoint is None
    config = stack.boto3_client("sagemaker").describe_endpoint_config(
        EndpointConfigName=stack.boto3_client("sagemaker").describe_endpoint(EndpointName=LIVE[0])["EndpointConfigName"])
    per_instance = config["AsyncInferenceConfig"]["ClientConfig"]["MaxConcurrentInvocationsPerInstance"]
    assert gone.capacity == per_instance  # one instance (the Unroutable destination counts for nothing)
    warnings = "\n".join(rs.warnings)
    assert "Every destination of routing target 'idle' of 'cold' has 0 instances" in warnings
    assert "Destination never-made of routing target 'gone' of 'cold' is Unroutable" in warnings
    assert "RequestTTLSeconds" not in warnings  # nothing of ours is waiting there yet

    client.submit(sma.RoutingTarget("cold", "idle"), "5.1,3.5,1.4,0.2\n", request_ttl_seconds=300)
    warned = client.router_status("cold", max_age=0).warnings
    assert any("RequestTTLSeconds 300, shorter than its MaxTimeInBacklogSeconds (600)" in w for w in warned), warned
    assert client.router_status(sma.RoutingTarget("cold", "idle")).fetched_at == \
        client.router_status("cold").fetched_at  # served from the cache

    html = router_html(client.router_status("cold"), "idle")
    assert "<b>cold/idle</b>" in html and "dest-zero: Routable 0/0" in html and "⚠" in html
    with pytest.raises(sma.AwsError, match="Could not find inference router") as caught:
        client.router_status("nobody")
    assert caught.value.kind == "not_found"
