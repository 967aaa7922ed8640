"""Inference routers on the local stack (SPEC §20), driven with plain boto3 and the AWS CLI only: the
control plane (validated as AWS validates it, Creating → InService on the emulated clock, each
destination's RoutingStatus), InvokeInferenceRouterAsync on the stack's runtime server, placement
across three endpoints, moving a request after MaxTimeInBacklogSeconds from a destination at 0
instances, a failure object and an error notification through SNS → SQS when no destination takes
a request, and a destination deleted while requests wait at it.

The stack runs at time_scale 30, so MaxTimeInBacklogSeconds' floor of 60 s is 2 real seconds and
create_seconds 45 makes a router (and an endpoint) Creating for 1.5 real seconds.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import subprocess
import time
import urllib.parse
import uuid

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from stackhelp import SCALER_HANDLER, client_env, create_endpoint, run_client, s3_object, tar_gz, wait_for, wait_records

from sm_async_nb.contract import notifications

AWS_CLI = os.environ.get("SM_ASYNC_NB_AWS_CLI") or shutil.which("aws")
IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.1-cpu-py310"
ACCOUNT, REGION = "123456789012", "us-east-1"
TIME_SCALE = 30
CREATE_SECONDS = 45  # emulated: 1.5 real seconds Creating (routers and endpoints alike)
ROUTER_ENV = "AWS_ENDPOINT_URL_SAGEMAKER_INFERENCE_ROUTER_RUNTIME"
FLEET, REALTIME, IDLE = ("fleet-a", "fleet-b", "fleet-c"), "fleet-realtime", ("idle-1", "idle-2")


@pytest.fixture(scope="module")
def stack():
    from sm_async_nb.local import LocalStack

    with LocalStack(time_scale=TIME_SCALE, create_seconds=CREATE_SECONDS) as stack:
        s3 = stack.boto3_client("s3")
        s3.put_object(Bucket=stack.input_bucket, Key="models/scaler.tar.gz", Body=tar_gz({
            "model.json": '{"scale": 2}', "code/inference.py": SCALER_HANDLER}))
        yield stack


@pytest.fixture(scope="module")
def fleet(stack):
    """Three async endpoints of one slot each and one real-time endpoint, shared by the tests that only
    route to them (the tests that scale or delete a destination make their own)."""
    for name in FLEET:
        endpoint(stack, name)
    endpoint(stack, REALTIME, asynchronous=False)
    return FLEET


@pytest.fixture(scope="module")
def idle(stack):
    """Two async endpoints at 0 instances with no scaling registered: nothing ever starts there."""
    for name in IDLE:
        endpoint(stack, name, instances=0)
    return IDLE


@pytest.fixture(scope="module")
def sm(stack):
    return stack.boto3_client("sagemaker")


@pytest.fixture(scope="module")
def router_runtime(stack):
    return stack.boto3_client("sagemaker-inference-router-runtime")


def arn(name: str, account: str = ACCOUNT, region: str = REGION) -> str:
    return f"arn:aws:sagemaker:{region}:{account}:endpoint/{name}"


def endpoint(stack, name: str, *, instances: int = 1, concurrency: int = 1, asynchronous: bool = True) -> None:
    """A model.tar.gz endpoint made with plain boto3 (no scaling registered: its count stays as set)."""
    sm = stack.boto3_client("sagemaker")
    model = {"PrimaryContainer": {"Image": IMAGE, "ModelDataUrl": f"s3://{stack.input_bucket}/models/scaler.tar.gz"}}
    if asynchronous:
        described = create_endpoint(sm, name, model, output=f"s3://{stack.input_bucket}/direct/{name}/",
                                    concurrency=concurrency, instances=max(1, instances))
    else:
        sm.create_model(ModelName=f"{name}-model", ExecutionRoleArn=f"arn:aws:iam::{ACCOUNT}:role/sm", **model)
        sm.create_endpoint_config(EndpointConfigName=f"{name}-config", ProductionVariants=[{
            "VariantName": "AllTraffic", "ModelName": f"{name}-model", "InstanceType": "ml.m5.large",
            "InitialInstanceCount": 1}])
        sm.create_endpoint(EndpointName=name, EndpointConfigName=f"{name}-config")
        sm.get_waiter("endpoint_in_service").wait(EndpointName=name, WaiterConfig={"Delay": 0.2})
        described = sm.describe_endpoint(EndpointName=name)
    assert described["EndpointStatus"] == "InService", described.get("FailureReason")
    if instances == 0:
        sm.update_endpoint_weights_and_capacities(EndpointName=name, DesiredWeightsAndCapacities=[
            {"VariantName": "AllTraffic", "DesiredInstanceCount": 0}])
        wait_for(lambda: sm.describe_endpoint(EndpointName=name)["ProductionVariants"][0][
            "CurrentInstanceCount"] == 0 or None)


def paths(stack, router: str) -> tuple[str, str]:
    return f"s3://{stack.input_bucket}/routed/{router}/", f"s3://{stack.input_bucket}/routed-failures/{router}/"


def target(stack, router: str, *names: str, name: str = "main", backlog: int | None = 60,
           notification: dict | None = None) -> dict:
    output, failure = paths(stack, router)
    config: dict = {"OutputConfig": {"S3OutputPath": output, "S3FailurePath": failure,
                                     **({"NotificationConfig": notification} if notification else {})}}
    if backlog is not None:
        config["ClientConfig"] = {"MaxTimeInBacklogSeconds": backlog}
    return {"Name": name, "Destinations": [{"ResourceArn": arn(n)} for n in names], "AsyncInferenceConfig": config}


def in_service(sm, name: str) -> dict:
    """DescribeInferenceRouter once it says InService (botocore has no waiter for routers)."""
    return wait_for(lambda: (lambda d: d if d["Status"] == "InService" else None)(
        sm.describe_inference_router(InferenceRouterName=name)), timeout=20)


def make_router(sm, name: str, *targets: dict) -> dict:
    sm.create_inference_router(InferenceRouterName=name, RoutingTargets=list(targets))
    return in_service(sm, name)


def upload(stack, text: str) -> str:
    key = f"inputs/{uuid.uuid4().hex}.csv"
    stack.boto3_client("s3").put_object(Bucket=stack.input_bucket, Key=key, Body=text.encode())
    return f"s3://{stack.input_bucket}/{key}"


def invoke(router_runtime, stack, router: str, text: str, target_name: str = "main", **extra) -> dict:
    return router_runtime.invoke_inference_router_async(InferenceRouterName=router, RoutingTargetName=target_name,
                                                        InputLocation=upload(stack, text), ContentType="text/csv",
                                                        **extra)


def subscribed_queue(stack, name: str) -> tuple[str, str]:
    """(topic ARN, queue URL): an SNS topic whose messages arrive in an SQS queue."""
    sns, sqs = stack.boto3_client("sns"), stack.boto3_client("sqs")
    topic = sns.create_topic(Name=name)["TopicArn"]
    queue = sqs.create_queue(QueueName=name)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    return topic, queue


def notices(stack, queue: str, count: int) -> list:
    """The first ``count`` async-inference notifications that arrive in ``queue``, parsed."""
    sqs, found = stack.boto3_client("sqs"), []

    def more():
        for raw in sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=1, MaxNumberOfMessages=10).get("Messages", []):
            found.append(notifications.parse(raw["Body"]))
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=raw["ReceiptHandle"])
        return found if len(found) >= count else None

    return wait_for(more, timeout=20)


def raw_invoke(stack, router: str, headers: dict[str, str], body: bytes = b"",
               path: str = "async-invocations") -> tuple[int, str | None, str]:
    """POST a request botocore would not send to the stack's router runtime: (status, error type, message),
    checking that it was refused as a ValidationException."""
    url = urllib.parse.urlparse(stack.endpoint_urls["sagemaker-inference-router-runtime"])
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    try:
        conn.request("POST", f"/inference-routers/{router}/{path}", body=body, headers=headers)
        answer = conn.getresponse()
        found = (answer.status, answer.getheader("x-amzn-ErrorType"), json.loads(answer.read()).get("message"))
    finally:
        conn.close()
    assert found[:2] == (400, "ValidationException") and "\n" not in found[2], found
    return found


def router_names(sm) -> list[str]:
    return sorted(r["InferenceRouterName"] for r in sm.list_inference_routers(MaxResults=100)["InferenceRouters"])


# -- the control plane -----------------------------------------------------------------------------------------
def test_create_describe_list_update_and_delete_with_plain_boto3(stack, fleet, sm, router_runtime):
    data = upload(stack, "1\n")
    began = time.monotonic()
    created = sm.create_inference_router(InferenceRouterName="cp-router", RoutingTargets=[
        target(stack, "cp-router", "fleet-a", backlog=None)], Tags=[{"Key": "team", "Value": "ml"}])
    with pytest.raises(ClientError, match="cp-router of account 123456789012 is Creating"):
        router_runtime.invoke_inference_router_async(InferenceRouterName="cp-router", RoutingTargetName="main",
                                                     InputLocation=data)
    described = sm.describe_inference_router(InferenceRouterName="cp-router")
    assert created["InferenceRouterArn"] == f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:inference-router/cp-router"
    assert described["Status"] == "Creating" or time.monotonic() - began > CREATE_SECONDS / TIME_SCALE
    described = in_service(sm, "cp-router")
    assert time.monotonic() - began >= CREATE_SECONDS / TIME_SCALE
    [routing_target] = described["RoutingTargets"]
    assert routing_target["Destinations"] == [{"ResourceArn": arn("fleet-a"), "RoutingStatus": "Routable"}]
    assert routing_target["AsyncInferenceConfig"] == {"OutputConfig": {
        "S3OutputPath": paths(stack, "cp-router")[0], "S3FailurePath": paths(stack, "cp-router")[1]}}
    assert described["CreationTime"] <= described["LastModifiedTime"]
    assert "cp-router" in router_names(sm)
    assert sm.list_tags(ResourceArn=created["InferenceRouterArn"])["Tags"] == [{"Key": "team", "Value": "ml"}]

    sm.update_inference_router(InferenceRouterName="cp-router", RoutingTargets=[
        target(stack, "cp-router", "fleet-b", name="second", backlog=120)])
    during = sm.describe_inference_router(InferenceRouterName="cp-router")
    assert during["Status"] == "Updating" and during["RoutingTargets"][0]["Name"] == "second"
    with pytest.raises(ClientError) as caught:
        sm.delete_inference_router(InferenceRouterName="cp-router")
    assert caught.value.response["Error"]["Code"] == "ConflictException"
    after = in_service(sm, "cp-router")
    assert after["RoutingTargets"][0]["AsyncInferenceConfig"]["ClientConfig"] == {"MaxTimeInBacklogSeconds": 120}
    answer = invoke(router_runtime, stack, "cp-router", "3\n", target_name="second")
    assert wait_for(lambda: s3_object(stack.boto3_client("s3"), answer["OutputLocation"])) == (b"6\n", "text/csv")

    sm.delete_inference_router(InferenceRouterName="cp-router")
    with pytest.raises(sm.exceptions.ResourceNotFound, match='Could not find inference router "arn:aws:sagemaker:'):
        sm.describe_inference_router(InferenceRouterName="cp-router")
    assert "cp-router" not in router_names(sm)


def test_bad_requests_are_one_line_each_and_nothing_is_half_created(stack, fleet, sm):
    make_router(sm, "taken", target(stack, "taken", "fleet-a"))
    before = router_names(sm)
    lenient = stack.boto3_client("sagemaker", config=Config(parameter_validation=False))  # as a raw HTTP client

    def refused(client, routing_targets, name="fresh", code="ValidationException"):
        with pytest.raises(ClientError) as caught:
            client.create_inference_router(InferenceRouterName=name, RoutingTargets=routing_targets)
        error = caught.value.response["Error"]
        assert error["Code"] == code and "\n" not in error["Message"]
        assert router_names(sm) == before  # nothing half-created
        return error["Message"]

    assert refused(sm, [target(stack, "fresh", "fleet-a", REALTIME)]) == (
        f"Destination {arn(REALTIME)} of asynchronous routing target main is not an asynchronous inference "
        f"endpoint (its endpoint config {REALTIME}-config has no AsyncInferenceConfig); an asynchronous routing "
        "target takes asynchronous endpoints only.")
    assert refused(sm, [target(stack, "fresh", "fleet-a", name="bad_target")]) == (
        "1 validation error detected: Value 'bad_target' at 'routingTargets.1.member.name' failed to satisfy "
        "constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}")
    assert "already existing inference router" in refused(sm, [target(stack, "taken", "fleet-a")], name="taken",
                                                          code="ResourceAlreadyExists")
    assert refused(sm, [target(stack, "fresh", "fleet-a", backlog=21601)]).endswith(
        "at 'routingTargets.1.member.asyncInferenceConfig.clientConfig.maxTimeInBacklogSeconds' failed to satisfy "
        "constraint: Member must have value less than or equal to 21600")
    assert refused(lenient, [target(stack, "fresh", "fleet-a", backlog=59)]).endswith(
        "Member must have value greater than or equal to 60")
    assert "appears more than once" in refused(sm, [target(stack, "fresh", "fleet-a", "fleet-a")])


def test_destinations_that_cannot_be_checked_are_accepted_as_aws_does(stack, fleet, sm):
    """An endpoint that does not exist (here: Unroutable) or is in another account or Region (Unknown)
    is accepted: CreateInferenceRouter's documentation says SageMaker accepts what it cannot check."""
    far = arn("elsewhere", account="210987654321", region="eu-west-1")
    described = make_router(sm, "lenient", {**target(stack, "lenient", "fleet-a"),
                                            "Destinations": [{"ResourceArn": arn("fleet-a")},
                                                             {"ResourceArn": arn("never-made")}, {"ResourceArn": far}]})
    assert [d["RoutingStatus"] for d in described["RoutingTargets"][0]["Destinations"]] == [
        "Routable", "Unroutable", "Unknown"]


# -- the runtime -----------------------------------------------------------------------------------------------
ROUTE_FROM_ENV = """
sm, s3 = boto3.client("sagemaker"), boto3.client("s3")
runtime = boto3.client("sagemaker-inference-router-runtime")
answer = runtime.invoke_inference_router_async(InferenceRouterName=ARGS["router"], RoutingTargetName="main",
    InputLocation=ARGS["input"], ContentType="text/csv", InferenceId="from-env-1", Filename="x" * 64)
_, body, content_type = wait_for_object(s3, answer["OutputLocation"])
emit({"answer": {k: answer[k] for k in ("InferenceId", "OutputLocation", "FailureLocation")}, "body": body,
      "endpoint_url": runtime.meta.endpoint_url})
"""


def test_any_boto3_client_configured_by_stack_env_invokes_a_router(stack, fleet, sm):
    assert stack.env[ROUTER_ENV] == stack.endpoint_urls["sagemaker-inference-router-runtime"]
    make_router(sm, "from-env", target(stack, "from-env", "fleet-a"))
    got = run_client(stack, ROUTE_FROM_ENV, {"router": "from-env", "input": upload(stack, "5\n")})
    output, failure = paths(stack, "from-env")
    assert got["answer"] == {"InferenceId": "from-env-1", "OutputLocation": output + "x" * 64,
                             "FailureLocation": failure + "from-env-1-error.out"}
    assert got["body"] == "10\n" and got["endpoint_url"] == stack.env[ROUTER_ENV]


def test_invoking_unknown_routers_and_targets_and_breaking_the_rules(stack, fleet, sm, router_runtime):
    make_router(sm, "rules", target(stack, "rules", "fleet-a"),
                {"Name": "live", "Destinations": [{"ResourceArn": arn(REALTIME)}]})  # a real-time target

    def refused(**params):
        with pytest.raises(ClientError) as caught:
            router_runtime.invoke_inference_router_async(**{"InferenceRouterName": "rules", "RoutingTargetName": "main",
                                                            "InputLocation": upload(stack, "1\n"), **params})
        assert caught.value.response["Error"]["Code"] == "ValidationException"
        return caught.value.response["Error"]["Message"]

    assert refused(InferenceRouterName="nope") == "Inference router nope of account 123456789012 not found."
    assert refused(RoutingTargetName="nope") == (
        "Routing target nope not found in inference router rules of account 123456789012.")
    assert "Filename" in refused(Filename="x" * 65)  # the router's limit is 64 (InvokeEndpointAsync's: 32)
    assert "RequestTTLSeconds" in refused(RequestTTLSeconds=21601)
    assert refused(RoutingTargetName="live") == (
        "Routing target live of inference router rules is not configured for asynchronous inference: it has no "
        "AsyncInferenceConfig. Use InvokeInferenceRouter for real-time routing targets.")

    # what botocore cannot send: a body (the router's model has none), missing members, a malformed integer
    data = upload(stack, "1\n")
    valid = {"X-Amzn-SageMaker-Routing-Target-Name": "main", "X-Amzn-SageMaker-InputLocation": data}
    assert raw_invoke(stack, "rules", valid, b"1,2,3")[2] == (
        "1 validation error detected: InvokeInferenceRouterAsync takes its input from InputLocation only; the request has a body. Upload the "
        "payload to S3 and pass its location.")
    without_target = {"X-Amzn-SageMaker-InputLocation": data}
    assert raw_invoke(stack, "rules", without_target)[2] == (
        "1 validation error detected: Value null at 'routingTargetName' failed to satisfy constraint: Member must not be null")
    assert raw_invoke(stack, "rules", {"X-Amzn-SageMaker-Routing-Target-Name": "main"})[2] == (
        "1 validation error detected: Value null at 'inputLocation' failed to satisfy constraint: Member must not be null")
    assert "RequestTTLSeconds 'soon' is invalid" in raw_invoke(
        stack, "rules", {**valid, "X-Amzn-SageMaker-RequestTTLSeconds": "soon"})[2]
    assert "bad_router" in raw_invoke(stack, "bad_router", valid)[2]
    status, code, message = raw_invoke(stack, "rules", valid, path="invocations")  # InvokeInferenceRouter
    assert (status, code) == (400, "ValidationException") and "asynchronous inference only" in message
    assert stack.records(router_name="nope") == stack.records(router_name="rules") == []  # nothing accepted


def test_requests_spread_over_three_endpoints_and_land_at_the_targets_output_path(stack, fleet, sm, router_runtime):
    topic, queue = subscribed_queue(stack, "router-successes")
    make_router(sm, "spread", target(stack, "spread", *fleet, backlog=3600, notification={"SuccessTopic": topic}))
    inputs = [upload(stack, "sleep 1") for _ in range(9)]  # uploaded first: the nine requests arrive together
    answers = [router_runtime.invoke_inference_router_async(InferenceRouterName="spread", RoutingTargetName="main",
                                                            InputLocation=uri, ContentType="text/csv")
               for uri in inputs]
    output, failure = paths(stack, "spread")
    assert all(a["OutputLocation"] == f"{output}{a['InferenceId']}.out" for a in answers)
    assert all(a["FailureLocation"] == f"{failure}{a['InferenceId']}-error.out" for a in answers)
    routed = wait_records(stack, lambda rs: len(rs) == 9 and all(r["status"] == "Completed" for r in rs),
                          timeout=30, router_name="spread")
    ran_at = {name: sum(r["endpoint_name"] == name for r in routed) for name in fleet}
    assert min(ran_at.values()) >= 2, ran_at  # spread over all three, one slot each (3 each unless the machine stalls)
    assert all(r["moves"] == 0 and r["routing_target_name"] == "main" for r in routed)
    s3 = stack.boto3_client("s3")
    assert all(s3_object(s3, a["OutputLocation"]) == (b"0\n", "text/csv") for a in answers)
    stats = stack.stats["routers"]["spread"]["main"]
    assert stats["ran_at"] == ran_at and stats["completed"] == 9 and stats["received"] == 9
    sent = notices(stack, queue, 9)  # the routing target's topic, not the destination endpoints' (they have none)
    assert sorted(n.inference_id for n in sent) == sorted(a["InferenceId"] for a in answers)
    assert all(n.succeeded and (n.request["inferenceRouterName"], n.request["routingTargetName"]) == ("spread", "main")
               for n in sent)
    assert {n.output_location for n in sent} == {a["OutputLocation"] for a in answers}


def test_a_request_at_a_scaled_to_zero_destination_moves_after_max_time_in_backlog(stack, fleet, idle, sm,
                                                                                  router_runtime):
    cold, warm = idle[0], fleet[1]
    make_router(sm, "rescue", target(stack, "rescue", cold, warm, backlog=60))
    inputs = [upload(stack, "sleep 0.5") for _ in range(4)]  # uploaded first: warm is busy when the rest arrive
    answers = [router_runtime.invoke_inference_router_async(InferenceRouterName="rescue", RoutingTargetName="main",
                                                            InputLocation=uri, ContentType="text/csv")
               for uri in inputs]
    s3 = stack.boto3_client("s3")
    bodies = [wait_for(lambda a=a: s3_object(s3, a["OutputLocation"]), timeout=30)[0] for a in answers]
    assert bodies == [b"0\n"] * 4  # every request completes, at the target's output path
    routed = stack.records(router_name="rescue")
    assert {r["endpoint_name"] for r in routed} == {warm}
    moved = [r for r in routed if r["moves"]]
    assert moved, "the router placed some at the destination at 0 instances (it may scale out from zero)"
    for record in moved:
        assert record["destinations_tried"] == [cold, warm] and record["moves"] == 1
        assert record["started_clock"] - record["received_clock"] >= 60  # moved after MaxTimeInBacklogSeconds
    assert stack.records(cold) == []  # nothing ran (or waits) there
    assert stack.stats["routers"]["rescue"]["main"]["moved"] == len(moved)


def test_when_no_destination_takes_it_a_failure_object_and_an_error_notification(stack, idle, sm, router_runtime):
    topic, queue = subscribed_queue(stack, "router-errors")
    make_router(sm, "nobody", target(stack, "nobody", *idle, backlog=60,
                                     notification={"ErrorTopic": topic}))
    answer = invoke(router_runtime, stack, "nobody", "1\n")
    body, content_type = wait_for(lambda: s3_object(stack.boto3_client("s3"), answer["FailureLocation"]), timeout=30)
    reason = body.decode()
    assert reason.startswith("RoutingFailed: No destination of routing target main of inference router nobody "
                             "started the request: it was tried at idle-1, idle-2")
    assert content_type == notifications.FAILURE_CONTENT_TYPE
    assert answer["FailureLocation"].startswith(paths(stack, "nobody")[1])
    [result] = notices(stack, queue, 1)
    assert (result.inference_id, result.succeeded, result.failure_reason) == (answer["InferenceId"], False, reason)
    assert result.failure_location == answer["FailureLocation"]
    assert (result.request["inferenceRouterName"], result.request["routingTargetName"]) == ("nobody", "main")
    [record] = stack.records(router_name="nobody")
    assert (record["status"], record["destinations_tried"], record["moves"]) == ("Failed", ["idle-1", "idle-2"], 1)


def test_requests_waiting_at_a_deleted_destination_move_to_another(stack, fleet, sm, router_runtime):
    keeper = fleet[2]
    endpoint(stack, "doomed")
    make_router(sm, "survivor", target(stack, "survivor", "doomed", keeper, backlog=3600))
    slow, quick = upload(stack, "sleep 5"), [upload(stack, f"{i}\n") for i in range(4)]

    def send(uri):
        return router_runtime.invoke_inference_router_async(InferenceRouterName="survivor", RoutingTargetName="main",
                                                            InputLocation=uri, ContentType="text/csv")

    first = send(slow)  # doomed runs it
    wait_records(stack, lambda rs: rs and rs[0]["status"] == "Running", endpoint_name="doomed")
    send(slow)  # keeper runs it
    rest = [send(uri) for uri in quick]  # both busy: they wait, at doomed and at keeper
    waiting = [r["inference_id"] for r in stack.records("doomed") if r["status"] == "Queued"]
    assert waiting, "some wait at doomed (both destinations are busy)"
    sm.delete_endpoint(EndpointName="doomed")
    described = sm.describe_inference_router(InferenceRouterName="survivor")
    assert described["RoutingTargets"][0]["Destinations"][0] == {"ResourceArn": arn("doomed"),
                                                                 "RoutingStatus": "Unroutable"}
    s3 = stack.boto3_client("s3")
    assert [wait_for(lambda a=a: s3_object(s3, a["OutputLocation"]), timeout=30)[0] for a in rest] == [
        f"{2 * i}\n".encode() for i in range(4)]
    records = {r["inference_id"]: r for r in stack.records(router_name="survivor")}
    for inference_id in waiting:
        assert (records[inference_id]["endpoint_name"], records[inference_id]["destinations_tried"],
                records[inference_id]["moves"]) == (keeper, ["doomed", keeper], 1)
    failed = wait_for(lambda: s3_object(s3, first["FailureLocation"]))[0].decode()  # it had started: it stays
    assert failed.startswith("EndpointDeleted: The endpoint doomed was deleted while this request ran")


# -- the AWS CLI ------------------------------------------------------------------------------------------------
@pytest.mark.skipif(AWS_CLI is None, reason="the AWS CLI is not installed (.ci/run installs it)")
def test_the_aws_cli_reads_routers_back_when_its_botocore_knows_them(stack, fleet, sm, tmp_path):
    def aws(*args):
        return subprocess.run([AWS_CLI, *args, "--output", "json"], env=client_env(stack), capture_output=True,
                              text=True, timeout=120)

    probe = aws("sagemaker", "list-inference-routers")
    if probe.returncode != 0 and "Invalid choice" in probe.stderr:
        version = aws("--version").stdout.strip() or aws("--version").stderr.strip()
        pytest.skip(f"this AWS CLI ({version}) predates inference routers: its botocore needs 1.44 or later")
    assert probe.returncode == 0, probe.stderr
    make_router(sm, "cli-router", target(stack, "cli-router", "fleet-a"))
    described = json.loads(aws("sagemaker", "describe-inference-router", "--inference-router-name",
                               "cli-router").stdout)
    assert described["RoutingTargets"][0]["Destinations"][0]["RoutingStatus"] == "Routable"
    data = tmp_path / "in.csv"
    data.write_text("4\n")
    assert aws("s3", "cp", str(data), f"s3://{stack.input_bucket}/cli/router.csv").returncode == 0
    done = aws("sagemaker-inference-router-runtime", "invoke-inference-router-async", "--inference-router-name",
               "cli-router", "--routing-target-name", "main", "--input-location",
               f"s3://{stack.input_bucket}/cli/router.csv", "--content-type", "text/csv")
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert wait_for(lambda: s3_object(stack.boto3_client("s3"), answer["OutputLocation"])) == (b"8\n", "text/csv")
