"""The local stack is AWS (SPEC §17): endpoints anyone creates through the control plane — plain boto3,
the AWS CLI, SageMaker SDK v3 — are served; their lifecycle (Creating → InService, UpdateEndpoint,
DeleteEndpoint); Describe* as AWS answers them; and every bad model is one line on a Failed
endpoint, with nothing left behind."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from botocore.exceptions import ClientError
from stackhelp import (
    SCALER_HANDLER,
    client_env,
    create_endpoint,
    run_client,
    s3_object,
    tar_gz,
    wait_for,
    wait_records,
)

AWS_CLI = os.environ.get("SM_ASYNC_NB_AWS_CLI") or shutil.which("aws")
SDKV3 = os.environ.get("SM_ASYNC_NB_SDKV3_PYTHON")
FRAMEWORK_IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.1-cpu-py310"
UNANSWERED_IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/nobody-home:1"


@pytest.fixture(scope="module")
def stack(free_port):
    from sm_async_nb.local import LocalStack

    # time_scale shortens the emulated 10 s a container gets to answer /ping (for the unanswered image).
    with LocalStack(time_scale=20, image_map={UNANSWERED_IMAGE: f"http://127.0.0.1:{free_port()}"}) as stack:
        yield stack


def upload(stack, key: str, data: bytes) -> str:
    stack.boto3_client("s3").put_object(Bucket=stack.input_bucket, Key=key, Body=data)
    return f"s3://{stack.input_bucket}/{key}"


def model_archive(stack, name: str, scale: float = 2.0, **extra: str | bytes) -> str:
    return upload(stack, f"models/{name}/model.tar.gz",
                  tar_gz({"model.json": json.dumps({"scale": scale}), "code/inference.py": SCALER_HANDLER, **extra}))


def output_path(stack, name: str) -> str:
    return f"s3://{stack.input_bucket}/outputs/{name}/"


# -- 1. endpoints created by anyone -------------------------------------------------------------------
CREATE_AND_INVOKE = """
sm, runtime, s3 = boto3.client("sagemaker"), boto3.client("sagemaker-runtime"), boto3.client("s3")
name, archive, output, data = ARGS["name"], ARGS["archive"], ARGS["output"], ARGS["input"]
sm.create_model(ModelName=name, ExecutionRoleArn="arn:aws:iam::123456789012:role/sm",
                PrimaryContainer={"Image": ARGS["image"], "ModelDataUrl": archive})
sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[{"VariantName": "AllTraffic",
    "ModelName": name, "InstanceType": "ml.m5.xlarge", "InitialInstanceCount": 1}],
    AsyncInferenceConfig={"OutputConfig": {"S3OutputPath": output},
                          "ClientConfig": {"MaxConcurrentInvocationsPerInstance": 4}})
sm.create_endpoint(EndpointName=name, EndpointConfigName=name)
sm.get_waiter("endpoint_in_service").wait(EndpointName=name)
answer = runtime.invoke_endpoint_async(EndpointName=name, InputLocation=data, ContentType="text/csv")
_, body, content_type = wait_for_object(s3, answer["OutputLocation"])
described = sm.describe_endpoint(EndpointName=name)
described.pop("ResponseMetadata")
model = sm.describe_model(ModelName=name)
model.pop("ResponseMetadata")
emit({"body": body, "content_type": content_type, "endpoint": described, "model": model,
      "config": sorted(sm.describe_endpoint_config(EndpointConfigName=name))})
"""


def test_an_async_endpoint_made_with_plain_boto3_is_served(stack):
    archive = model_archive(stack, "walkthrough", scale=10)
    data = upload(stack, "inputs/walkthrough.csv", b"1,2\n3,4\n")
    got = run_client(stack, CREATE_AND_INVOKE, {"name": "walkthrough", "archive": archive, "image": FRAMEWORK_IMAGE,
                                                "output": output_path(stack, "walkthrough"), "input": data})
    assert (got["body"], got["content_type"]) == ("10,20\n30,40\n", "text/csv")  # model_fn read model.json
    endpoint = got["endpoint"]
    assert endpoint["EndpointStatus"] == "InService"
    assert endpoint["AsyncInferenceConfig"] == {"OutputConfig": {"S3OutputPath": output_path(stack, "walkthrough")},
                                                "ClientConfig": {"MaxConcurrentInvocationsPerInstance": 4}}
    assert endpoint["ProductionVariants"][0]["CurrentInstanceCount"] == 1
    assert "DataCaptureConfig" not in endpoint and "FailureReason" not in endpoint  # AWS leaves them out
    assert "VpcConfig" not in got["model"] and "Containers" not in got["model"]
    assert got["model"]["PrimaryContainer"]["ModelDataUrl"] == archive
    assert "DataCaptureConfig" not in got["config"]


def test_sagemaker_program_and_a_sourcedir_in_s3(stack):
    sm = stack.boto3_client("sagemaker")
    archive = upload(stack, "models/sourcedir/model.tar.gz", tar_gz({"model.json": '{"scale": 3}'}))
    sourcedir = upload(stack, "code/sourcedir.tar.gz", tar_gz({"serve.py": SCALER_HANDLER}))
    described = create_endpoint(sm, "sourcedir", {"PrimaryContainer": {
        "Image": FRAMEWORK_IMAGE, "ModelDataUrl": archive,
        "Environment": {"SAGEMAKER_PROGRAM": "serve.py", "SAGEMAKER_SUBMIT_DIRECTORY": sourcedir}}},
                                output=output_path(stack, "sourcedir"))
    assert described["EndpointStatus"] == "InService", described.get("FailureReason")
    answer = stack.boto3_client("sagemaker-runtime").invoke_endpoint_async(
        EndpointName="sourcedir", InputLocation=upload(stack, "inputs/s.csv", b"2\n"), ContentType="text/csv")
    assert wait_for(lambda: s3_object(stack.boto3_client("s3"), answer["OutputLocation"])) == (b"6\n", "text/csv")


# -- bad input: one line on a Failed endpoint, nothing left behind -----------------------------------
def bad_models(stack, escape: Path) -> dict[str, tuple[dict, str]]:
    def archive(name, members, links=None):
        return upload(stack, f"models/{name}/model.tar.gz", tar_gz(members, links))

    raising = SCALER_HANDLER.replace("def model_fn(model_dir):", "def model_fn(model_dir):\n    raise "
                                     "RuntimeError('weights are corrupt')")
    return {
        "not-a-tarball": ({"ModelDataUrl": upload(stack, "models/zip/model.tar.gz", b"PK\x03\x04 a zip")},
                          "is not a tar.gz archive"),
        "no-handler": ({"ModelDataUrl": archive("nohandler", {"model.pth": b"\x00"})}, "has no code/inference.py"),
        "model-fn-raises": ({"ModelDataUrl": archive("raises", {"model.json": "{}", "code/inference.py": raising})},
                            "loading its handlers failed (RuntimeError: weights are corrupt)"),
        "no-model-data": ({}, "is not mapped to a local serving container and it has no ModelDataUrl"),
        "unanswered-image": ({"Image": UNANSWERED_IMAGE}, "did not answer GET /ping"),
        "dotdot": ({"ModelDataUrl": archive("dotdot", {"code/inference.py": SCALER_HANDLER,
                                                       f"../../{escape.name}": "owned"})}, "refused, member"),
        "absolute": ({"ModelDataUrl": archive("absolute", {"code/inference.py": SCALER_HANDLER,
                                                           str(escape): "owned"})}, "refused, member"),
        "link-out": ({"ModelDataUrl": archive("linkout", {"code/inference.py": SCALER_HANDLER},
                                              {"code/passwd": "/etc/passwd"})}, "refused, member"),
    }


@pytest.mark.parametrize("case", ["not-a-tarball", "no-handler", "model-fn-raises", "no-model-data",
                                  "unanswered-image", "dotdot", "absolute", "link-out"])
def test_a_model_that_cannot_be_served_leaves_the_endpoint_failed_with_a_reason(stack, case, tmp_path):
    escape = Path("/tmp") / f"sm-async-nb-escaped-{uuid.uuid4().hex}.txt"
    container, expected = bad_models(stack, escape)[case]
    sm, name = stack.boto3_client("sagemaker"), f"bad-{case}"
    described = create_endpoint(sm, name, {"PrimaryContainer": {"Image": FRAMEWORK_IMAGE, **container}},
                                output=output_path(stack, name))
    assert described["EndpointStatus"] == "Failed"
    reason = described["FailureReason"]
    assert expected in reason and "\n" not in reason and len(reason) <= 1024
    assert not escape.exists()
    assert not list(Path("/tmp").glob(f"sm-async-nb-models-*/{name}-model-*"))  # no model directory left
    with pytest.raises(ClientError) as caught:
        stack.boto3_client("sagemaker-runtime").invoke_endpoint_async(
            EndpointName=name, InputLocation=upload(stack, "inputs/x.csv", b"1\n"), ContentType="text/csv")
    assert caught.value.response["Error"]["Message"] == f"Endpoint {name} of account 123456789012 not found."
    sm.delete_endpoint(EndpointName=name)  # the only thing one can do with a Failed endpoint
    assert name not in [e["EndpointName"] for e in sm.list_endpoints()["Endpoints"]]


def test_a_config_naming_a_missing_model_is_refused_and_not_made(stack):
    sm = stack.boto3_client("sagemaker")
    with pytest.raises(ClientError, match="Could not find model") as caught:
        sm.create_endpoint_config(EndpointConfigName="orphan", ProductionVariants=[{
            "VariantName": "AllTraffic", "ModelName": "no-such-model", "InstanceType": "ml.m5.large",
            "InitialInstanceCount": 1}], AsyncInferenceConfig={"OutputConfig": {"S3OutputPath": "s3://b/o/"}})
    assert caught.value.response["Error"]["Code"] == "ValidationException"
    with pytest.raises(ClientError, match="Could not find endpoint configuration"):
        sm.describe_endpoint_config(EndpointConfigName="orphan")


def test_creating_an_existing_endpoint_is_refused(stack):
    sm = stack.boto3_client("sagemaker")
    with pytest.raises(ClientError, match="Cannot create already existing endpoint") as caught:
        sm.create_endpoint(EndpointName=stack.endpoint_name, EndpointConfigName=f"{stack.endpoint_name}-config")
    assert caught.value.response["Error"]["Code"] == "ValidationException"
    assert stack.boto3_client("sagemaker").describe_endpoint(EndpointName=stack.endpoint_name)["EndpointStatus"] == \
        "InService"


# -- 2. the lifecycle ---------------------------------------------------------------------------------
def test_create_update_and_delete_as_on_aws():
    from sm_async_nb.local import LocalStack

    with LocalStack(create_seconds=4.0) as stack:  # long enough to act while Creating/Updating on a busy machine
        sm, runtime, s3 = (stack.boto3_client(s) for s in ("sagemaker", "sagemaker-runtime", "s3"))
        sns, sqs = stack.boto3_client("sns"), stack.boto3_client("sqs")
        error_topic = sns.create_topic(Name="lifecycle-errors")["TopicArn"]
        queue = sqs.create_queue(QueueName="lifecycle-errors")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=error_topic, Protocol="sqs", Endpoint=queue_arn)

        began = time.monotonic()
        v1 = model_archive(stack, "v1", scale=1)
        described = create_endpoint(sm, "life", {"PrimaryContainer": {"Image": FRAMEWORK_IMAGE, "ModelDataUrl": v1}},
                                    output=output_path(stack, "life"), wait=False,
                                    notification={"ErrorTopic": error_topic})
        assert described["EndpointStatus"] == "Creating"
        sm.get_waiter("endpoint_in_service").wait(EndpointName="life", WaiterConfig={"Delay": 0.2})
        assert time.monotonic() - began >= 4.0  # create_seconds

        def score(text: str) -> bytes:
            answer = runtime.invoke_endpoint_async(EndpointName="life", ContentType="text/csv",
                                                   InputLocation=upload(stack, f"inputs/{uuid.uuid4().hex}", text.encode()))
            return wait_for(lambda: s3_object(s3, answer["OutputLocation"]))[0]

        assert score("5\n") == b"5\n"

        with pytest.raises(ClientError, match="Could not find endpoint configuration") as caught:
            sm.update_endpoint(EndpointName="life", EndpointConfigName="no-such-config")
        assert caught.value.response["Error"]["Code"] == "ValidationException"
        assert sm.describe_endpoint(EndpointName="life")["EndpointStatus"] == "InService"

        sm.create_model(ModelName="life-v2", ExecutionRoleArn="arn:aws:iam::123456789012:role/sm",
                        PrimaryContainer={"Image": FRAMEWORK_IMAGE, "ModelDataUrl": model_archive(stack, "v2", 100)})
        sm.create_endpoint_config(EndpointConfigName="life-v2", ProductionVariants=[{
            "VariantName": "AllTraffic", "ModelName": "life-v2", "InstanceType": "ml.m5.large",
            "InitialInstanceCount": 1}], AsyncInferenceConfig={"OutputConfig": {
                "S3OutputPath": output_path(stack, "life"), "NotificationConfig": {"ErrorTopic": error_topic}},
                "ClientConfig": {"MaxConcurrentInvocationsPerInstance": 1}})
        assert sm.update_endpoint(EndpointName="life", EndpointConfigName="life-v2")["EndpointArn"].endswith("/life")
        during = sm.describe_endpoint(EndpointName="life")
        assert (during["EndpointStatus"], during["EndpointConfigName"]) == ("Updating", "life-config")
        assert score("5\n") == b"5\n"  # the old config serves while the new one comes up
        assert sm.describe_endpoint(EndpointName="life")["EndpointStatus"] == "Updating"  # (it still was)
        with pytest.raises(ClientError, match="Cannot update in-progress endpoint"):
            sm.update_endpoint(EndpointName="life", EndpointConfigName="life-v2")
        sm.get_waiter("endpoint_in_service").wait(EndpointName="life", WaiterConfig={"Delay": 0.2})
        after = sm.describe_endpoint(EndpointName="life")
        assert (after["EndpointStatus"], after["EndpointConfigName"]) == ("InService", "life-v2")
        assert score("5\n") == b"500\n"  # new requests go to the new config

        # Delete with one request running and three queued (MaxConcurrentInvocationsPerInstance 1).
        ids = [runtime.invoke_endpoint_async(EndpointName="life", ContentType="text/csv", InferenceId=f"q{i}",
                                             InputLocation=upload(stack, f"inputs/q{i}", b"sleep 20" if i == 0 else
                                                                  b"1\n"))["InferenceId"] for i in range(4)]
        wait_for(lambda: [r["status"] for r in stack.records("life") if r["inference_id"] == "q0"] == ["Running"]
                 or None)
        sm.delete_endpoint(EndpointName="life")
        with pytest.raises(ClientError) as caught:
            runtime.invoke_endpoint_async(EndpointName="life", InputLocation=v1, ContentType="text/csv")
        assert caught.value.response["Error"]["Code"] == "ValidationError"
        assert caught.value.response["Error"]["Message"] == "Endpoint life of account 123456789012 not found."
        with pytest.raises(ClientError, match="Could not find endpoint"):
            sm.describe_endpoint(EndpointName="life")
        records = {r["inference_id"]: r for r in wait_records(stack, lambda rs: all(
            r["status"] == "Failed" for r in rs if r["inference_id"] in ids), endpoint_name="life")
            if r["inference_id"] in ids}
        assert len(records) == 4
        for record in records.values():
            body, content_type = wait_for(lambda r=record: s3_object(s3, r["failure_location"]))
            assert body.decode().startswith("EndpointDeleted: The endpoint life was deleted")
            assert content_type.startswith("text/plain")
        messages = []
        deadline = time.monotonic() + 20
        while len(messages) < 4 and time.monotonic() < deadline:
            for message in sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10,
                                               WaitTimeSeconds=1).get("Messages", []):
                messages.append(json.loads(json.loads(message["Body"])["Message"]))
        assert sorted(m["inferenceId"] for m in messages) == sorted(ids)
        assert {m["invocationStatus"] for m in messages} == {"Failed"}
        assert all(m["failureReason"].startswith("EndpointDeleted") for m in messages)


def test_an_update_whose_model_cannot_be_served_is_rolled_back(stack):
    sm = stack.boto3_client("sagemaker")
    create_endpoint(sm, "rollback", {"PrimaryContainer": {"Image": FRAMEWORK_IMAGE,
                                                          "ModelDataUrl": model_archive(stack, "rb", 7)}},
                    output=output_path(stack, "rollback"))
    sm.create_model(ModelName="rollback-broken", ExecutionRoleArn="arn:aws:iam::123456789012:role/sm",
                    PrimaryContainer={"Image": FRAMEWORK_IMAGE, "ModelDataUrl": upload(stack, "models/rb/x.tar.gz",
                                                                                       b"not a tarball")})
    sm.create_endpoint_config(EndpointConfigName="rollback-broken", ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": "rollback-broken", "InstanceType": "ml.m5.large",
        "InitialInstanceCount": 1}], AsyncInferenceConfig={"OutputConfig": {"S3OutputPath": output_path(stack, "r")}})
    sm.update_endpoint(EndpointName="rollback", EndpointConfigName="rollback-broken")
    described = sm.describe_endpoint(EndpointName="rollback")
    assert (described["EndpointStatus"], described["EndpointConfigName"]) == ("InService", "rollback-config")
    assert described["FailureReason"].startswith("UpdateEndpoint to rollback-broken was rolled back: ")
    answer = stack.boto3_client("sagemaker-runtime").invoke_endpoint_async(
        EndpointName="rollback", InputLocation=upload(stack, "inputs/rb.csv", b"1\n"), ContentType="text/csv")
    assert wait_for(lambda: s3_object(stack.boto3_client("s3"), answer["OutputLocation"]))[0] == b"7\n"


# -- the AWS CLI and SageMaker SDK v3 -----------------------------------------------------------------
@pytest.mark.skipif(AWS_CLI is None, reason="the AWS CLI is not installed (.ci/run installs it)")
def test_the_aws_cli_creates_updates_invokes_and_deletes(stack, tmp_path):
    def aws(*args, check=True):
        done = subprocess.run([AWS_CLI, *args, "--output", "json"], env=client_env(stack), capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 0 or not check, done.stderr
        return json.loads(done.stdout) if done.returncode == 0 and done.stdout.startswith("{") else done

    archive = tmp_path / "model.tar.gz"
    archive.write_bytes(tar_gz({"model.json": '{"scale": 4}', "code/inference.py": SCALER_HANDLER}))
    uri = f"s3://{stack.input_bucket}/cli/model.tar.gz"
    aws("s3", "cp", str(archive), uri)
    aws("sagemaker", "create-model", "--model-name", "cli-model", "--execution-role-arn",
        "arn:aws:iam::123456789012:role/sm", "--primary-container", f"Image={FRAMEWORK_IMAGE},ModelDataUrl={uri}")
    for config in ("cli-config", "cli-config-2"):
        aws("sagemaker", "create-endpoint-config", "--endpoint-config-name", config, "--production-variants",
            "VariantName=AllTraffic,ModelName=cli-model,InstanceType=ml.m5.large,InitialInstanceCount=1",
            "--async-inference-config", json.dumps({"OutputConfig": {"S3OutputPath": output_path(stack, "cli")}}))
    aws("sagemaker", "create-endpoint", "--endpoint-name", "cli-ep", "--endpoint-config-name", "cli-config")
    aws("sagemaker", "wait", "endpoint-in-service", "--endpoint-name", "cli-ep")
    described = aws("sagemaker", "describe-endpoint", "--endpoint-name", "cli-ep")
    assert described["EndpointStatus"] == "InService"
    assert described["AsyncInferenceConfig"]["OutputConfig"]["S3OutputPath"] == output_path(stack, "cli")
    data = tmp_path / "in.csv"
    data.write_text("1,2\n")
    aws("s3", "cp", str(data), f"s3://{stack.input_bucket}/cli/in.csv")
    answer = aws("sagemaker-runtime", "invoke-endpoint-async", "--endpoint-name", "cli-ep", "--input-location",
                 f"s3://{stack.input_bucket}/cli/in.csv", "--content-type", "text/csv")
    assert wait_for(lambda: s3_object(stack.boto3_client("s3"), answer["OutputLocation"])) == (b"4,8\n", "text/csv")
    aws("sagemaker", "update-endpoint", "--endpoint-name", "cli-ep", "--endpoint-config-name", "cli-config-2")
    aws("sagemaker", "wait", "endpoint-in-service", "--endpoint-name", "cli-ep")
    assert aws("sagemaker", "describe-endpoint", "--endpoint-name", "cli-ep")["EndpointConfigName"] == "cli-config-2"
    aws("sagemaker", "delete-endpoint", "--endpoint-name", "cli-ep")
    refused = aws("sagemaker-runtime", "invoke-endpoint-async", "--endpoint-name", "cli-ep", "--input-location",
                  f"s3://{stack.input_bucket}/cli/in.csv", check=False)
    assert refused.returncode != 0
    assert "ValidationError" in refused.stderr and "Endpoint cli-ep of account 123456789012 not found." in \
        refused.stderr


SDKV3_SCRIPT = """
import json, os, sys, time
import boto3
from sagemaker.core.resources import Endpoint

name, data = sys.argv[1], sys.argv[2]
endpoint = Endpoint.get(name)
answer = endpoint.invoke_async(input_location=data, content_type="text/csv", inference_id="sdk-v3-1")
s3 = boto3.client("s3")
bucket, _, key = answer.output_location[len("s3://"):].partition("/")
deadline = time.time() + 60
while True:
    try:
        found = s3.get_object(Bucket=bucket, Key=key)
        break
    except s3.exceptions.NoSuchKey:
        assert time.time() < deadline, "no output"
        time.sleep(0.1)
print(json.dumps({"status": endpoint.endpoint_status, "async": endpoint.async_inference_config.output_config.s3_output_path,
                  "instances": endpoint.production_variants[0].current_instance_count,
                  "inference_id": answer.inference_id, "body": found["Body"].read().decode(),
                  "content_type": found["ContentType"]}))
"""


@pytest.mark.skipif(not SDKV3, reason="SM_ASYNC_NB_SDKV3_PYTHON (a venv with sagemaker>=3) is not set; .ci/run sets it")
def test_sagemaker_sdk_v3_gets_the_endpoint_and_invokes_it_async(stack):
    sm = stack.boto3_client("sagemaker")
    create_endpoint(sm, "sdk-v3", {"PrimaryContainer": {"Image": FRAMEWORK_IMAGE,
                                                        "ModelDataUrl": model_archive(stack, "sdkv3", 3)}},
                    output=output_path(stack, "sdk-v3"))
    data = upload(stack, "inputs/sdkv3.csv", b"1,2\n")
    done = subprocess.run([SDKV3, "-c", SDKV3_SCRIPT, "sdk-v3", data], env=client_env(stack), capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert got == {"status": "InService", "async": output_path(stack, "sdk-v3"), "instances": 1,
                   "inference_id": "sdk-v3-1", "body": "3,6\n", "content_type": "text/csv"}


def test_the_stacks_own_add_endpoint_goes_through_the_control_plane_and_a_broken_model_leaves_nothing(stack,
                                                                                                    tmp_path):
    sm = stack.boto3_client("sagemaker")
    model = tmp_path / "own.py"
    model.write_text(SCALER_HANDLER.replace('with open(os.path.join(model_dir, "model.json")) as f:\n        return '
                                            'json.load(f)', 'return {"scale": 9}'))
    assert stack.add_endpoint("own", model=str(model), concurrency=3) is True
    described = sm.describe_model(ModelName="own-model")["PrimaryContainer"]
    assert described["Environment"]["SM_ASYNC_NB_LOCAL_MODEL"] == str(model)  # pointed at, not copied
    config = sm.describe_endpoint_config(EndpointConfigName="own-config")
    assert config["AsyncInferenceConfig"]["ClientConfig"] == {"MaxConcurrentInvocationsPerInstance": 3}
    answer = stack.boto3_client("sagemaker-runtime").invoke_endpoint_async(
        EndpointName="own", InputLocation=upload(stack, "inputs/own.csv", b"1\n"), ContentType="text/csv")
    assert wait_for(lambda: s3_object(stack.boto3_client("s3"), answer["OutputLocation"]))[0] == b"9\n"

    broken = tmp_path / "broken.py"
    broken.write_text("def model_fn(model_dir):\n    raise RuntimeError('weights missing')\n")
    with pytest.raises(ValueError, match="weights missing") as caught:
        stack.add_endpoint("own-broken", model=str(broken))
    assert "\n" not in str(caught.value)
    assert "own-broken" not in [e["EndpointName"] for e in sm.list_endpoints()["Endpoints"]]
    for describe, kwargs in ((sm.describe_endpoint_config, {"EndpointConfigName": "own-broken-config"}),
                             (sm.describe_model, {"ModelName": "own-broken-model"})):
        with pytest.raises(ClientError):
            describe(**kwargs)


def test_add_endpoint_sees_an_endpoint_another_client_made(stack):
    sm = stack.boto3_client("sagemaker")
    create_endpoint(sm, "made-elsewhere", {"PrimaryContainer": {"Image": FRAMEWORK_IMAGE,
                                                                "ModelDataUrl": model_archive(stack, "elsewhere")}},
                    output=output_path(stack, "made-elsewhere"))
    assert stack.add_endpoint("made-elsewhere", exist_ok=True) is False and stack.differs == []
    with pytest.raises(ValueError, match="endpoint made-elsewhere already exists on this local stack"):
        stack.add_endpoint("made-elsewhere")
    assert sm.describe_endpoint(EndpointName="made-elsewhere")["EndpointStatus"] == "InService"  # untouched
