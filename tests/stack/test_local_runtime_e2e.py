"""The runtime driven from another process by an unmodified boto3 configured only by stack.env."""

from __future__ import annotations

import json
import time

from stackhelp import IRIS_CSV, run_client, wait_records

from sm_async_nb import Status


def test_env_is_complete_and_points_at_loopback(stack):
    env = stack.env
    for name in ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_SAGEMAKER", "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME",
                 "AWS_ENDPOINT_URL_SAGEMAKER_INFERENCE_ROUTER_RUNTIME", "AWS_ENDPOINT_URL_SNS", "AWS_ENDPOINT_URL_SQS", "AWS_ENDPOINT_URL_STS", "AWS_DEFAULT_REGION",
                 "AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "SM_ASYNC_NB_S3_INPUT_PATH"):
        assert env[name], name
    assert all(env[k].startswith("http://127.0.0.1:") for k in env if k.startswith("AWS_ENDPOINT_URL"))
    assert env["AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME"] != env["AWS_ENDPOINT_URL_S3"]
    assert set(stack.endpoint_urls) == {"s3", "sagemaker", "sagemaker-runtime", "sagemaker-inference-router-runtime",
                                        "sns", "sqs", "sts", "cloudwatch", "application-autoscaling", "logs"}
    assert "testing" not in repr(stack)


def test_control_plane_shows_the_async_endpoint(stack):
    found = run_client(stack, """
        sm = boto3.client("sagemaker")
        ep = sm.describe_endpoint(EndpointName="local-async")
        cfg = sm.describe_endpoint_config(EndpointConfigName=ep["EndpointConfigName"])
        emit({"status": ep["EndpointStatus"], "async": cfg["AsyncInferenceConfig"],
              "account": boto3.client("sts").get_caller_identity()["Account"]})
    """)
    assert found["status"] == "InService"
    assert found["account"] == stack.account_id
    out = found["async"]["OutputConfig"]
    assert out["S3OutputPath"] == stack.output_path and out["S3FailurePath"] == stack.failure_path
    assert out["NotificationConfig"]["SuccessTopic"].endswith(":local-async-success")
    assert found["async"]["ClientConfig"]["MaxConcurrentInvocationsPerInstance"] == 2


SUBMIT_S3 = """
    s3, rt = boto3.client("s3"), boto3.client("sagemaker-runtime")
    bucket, key = s3_parts(os.environ["SM_ASYNC_NB_S3_INPUT_PATH"] + ARGS["name"])
    s3.put_object(Bucket=bucket, Key=key, Body=ARGS["body"].encode())
    kwargs = {k: v for k, v in ARGS.get("kwargs", {}).items()}
    answer = rt.invoke_endpoint_async(EndpointName=ARGS.get("endpoint", "local-async"),
                                      InputLocation=f"s3://{bucket}/{key}", **kwargs)
    uri, body, ctype = wait_for_object(s3, answer["OutputLocation"], answer["FailureLocation"])
    emit({"answer": {k: answer.get(k) for k in ("InferenceId", "OutputLocation", "FailureLocation")},
          "status": answer["ResponseMetadata"]["HTTPStatusCode"], "uri": uri, "body": body,
          "content_type": ctype, "output_exists": exists(s3, answer["OutputLocation"])})
"""


def test_success_csv_to_iris(stack, unique):
    got = run_client(stack, SUBMIT_S3, {"name": f"{unique}.csv", "body": IRIS_CSV,
                                        "kwargs": {"ContentType": "text/csv", "Accept": "text/csv"}})
    assert got["status"] == 202
    assert got["uri"] == got["answer"]["OutputLocation"]
    assert got["content_type"] == "text/csv"
    labels = [line.split(",")[0] for line in got["body"].splitlines()]
    assert labels == ["setosa", "virginica"]
    record = next(r for r in stack.records() if r["inference_id"] == got["answer"]["InferenceId"])
    assert record["status"] == "Completed" and record["output_content_type"] == "text/csv"
    assert record["input_location"].endswith(f"/inputs/{unique}.csv")


def test_json_accept_sets_output_content_type(stack, unique):
    got = run_client(stack, SUBMIT_S3, {"name": f"{unique}.csv", "body": IRIS_CSV,
                                        "kwargs": {"ContentType": "text/csv", "Accept": "application/json"}})
    assert got["content_type"] == "application/json"
    assert [p["label"] for p in json.loads(got["body"])["predictions"]] == ["setosa", "virginica"]


def test_model_error_writes_failure_object_with_the_models_message(stack, unique):
    got = run_client(stack, SUBMIT_S3, {"name": f"{unique}.csv", "body": "1,2,3\n",
                                        "kwargs": {"ContentType": "text/csv"}})
    assert got["uri"] == got["answer"]["FailureLocation"]
    assert got["answer"]["FailureLocation"].endswith(f"{got['answer']['InferenceId']}-error.out")
    assert "ValueError" in got["body"]
    assert "expects 4 numeric columns" in got["body"] and "row 1 has 3" in got["body"]
    assert not got["output_exists"]


def test_missing_input_object_fails_cleanly(stack, unique):
    got = run_client(stack, """
        s3, rt = boto3.client("s3"), boto3.client("sagemaker-runtime")
        answer = rt.invoke_endpoint_async(EndpointName="local-async", ContentType="text/csv",
                                          InputLocation=os.environ["SM_ASYNC_NB_S3_INPUT_PATH"] + ARGS)
        uri, body, ctype = wait_for_object(s3, answer["OutputLocation"], answer["FailureLocation"])
        emit({"uri": uri, "body": body, "failure": answer["FailureLocation"]})
    """, f"{unique}-missing.csv")
    assert got["uri"] == got["failure"]
    assert "Failed to download the input" in got["body"] and "NoSuchKey" in got["body"]


def test_inline_body(stack, unique):
    got = run_client(stack, """
        s3, rt = boto3.client("s3"), boto3.client("sagemaker-runtime")
        answer = rt.invoke_endpoint_async(EndpointName="local-async", Body=ARGS.encode(),
                                          ContentType="text/csv", Accept="text/csv")
        uri, body, ctype = wait_for_object(s3, answer["OutputLocation"], answer["FailureLocation"])
        emit({"uri": uri, "body": body, "content_type": ctype, "answer": answer["OutputLocation"],
              "id": answer["InferenceId"]})
    """, IRIS_CSV)
    assert got["uri"] == got["answer"] and got["content_type"] == "text/csv"
    assert got["body"].startswith("setosa,")
    record = next(r for r in stack.records() if r["inference_id"] == got["id"])
    assert record["input_location"] is None and record["inline_body_size"] is None  # body dropped after use


def test_output_path_extension_and_filename_are_honoured(stack, unique):
    got = run_client(stack, SUBMIT_S3, {
        "name": f"{unique}.csv", "body": IRIS_CSV,
        "kwargs": {"ContentType": "text/csv", "Accept": "text/csv", "InferenceId": f"{unique}-ext",
                   "S3OutputPathExtension": f"runs/{unique}/", "Filename": "result.csv"}})
    assert got["answer"]["OutputLocation"] == f"{stack.output_path}runs/{unique}/result.csv"
    assert got["answer"]["FailureLocation"] == f"{stack.failure_path}runs/{unique}/{unique}-ext-error.out"
    assert got["uri"] == got["answer"]["OutputLocation"] and got["body"].startswith("setosa")


def test_unknown_endpoint_is_a_validation_error(stack, unique):
    got = run_client(stack, """
        try:
            boto3.client("sagemaker-runtime").invoke_endpoint_async(
                EndpointName=ARGS, InputLocation="s3://bucket-x/k")
            emit(None)
        except ClientError as exc:
            emit([exc.response["ResponseMetadata"]["HTTPStatusCode"], exc.response["Error"]])
    """, f"{unique}-nope")
    assert got[0] == 400
    assert got[1]["Code"] == "ValidationError"
    assert got[1]["Message"] == f"Endpoint {unique}-nope of account {stack.account_id} not found."


def test_non_async_endpoint_is_a_validation_error(stack, unique):
    stack.add_endpoint(f"{unique}-rt", asynchronous=False)
    got = run_client(stack, """
        sm = boto3.client("sagemaker")
        cfg = sm.describe_endpoint_config(EndpointConfigName=sm.describe_endpoint(
            EndpointName=ARGS)["EndpointConfigName"])
        try:
            boto3.client("sagemaker-runtime").invoke_endpoint_async(EndpointName=ARGS, InputLocation="s3://bucket-x/k")
            emit(None)
        except ClientError as exc:
            emit([exc.response["Error"], "AsyncInferenceConfig" in cfg and bool(cfg["AsyncInferenceConfig"])])
    """, f"{unique}-rt")
    error, has_async = got
    assert not has_async
    assert error["Code"] == "ValidationError"
    assert f"Endpoint {unique}-rt of account" in error["Message"] and "asynchronous" in error["Message"]
    assert not stack.records(f"{unique}-rt")


def test_a_repeated_inference_id_is_another_invocation_as_on_aws(stack, unique):
    got = run_client(stack, """
        rt = boto3.client("sagemaker-runtime")
        answers = [rt.invoke_endpoint_async(EndpointName="local-async", Body=b"5.1,3.5,1.4,0.2",
                                            ContentType="text/csv", InferenceId=ARGS) for _ in range(3)]
        emit([{k: a[k] for k in ("InferenceId", "OutputLocation", "FailureLocation")} for a in answers])
    """, f"{unique}-same")
    assert got[0] == got[1] == got[2]  # the same id names the same locations...
    records = wait_records(stack, lambda rs: sum(r["inference_id"] == f"{unique}-same" and r["status"] == "Completed"
                                                 for r in rs) == 3)
    mine = [r for r in records if r["inference_id"] == f"{unique}-same"]
    assert len(mine) == 3 and len({r["seq"] for r in mine}) == 3  # ...but AWS runs each request: no dedup by id


def test_crashing_model_does_not_take_the_runtime_down(stack, unique):
    def model(body, content_type):
        if body == b"crash":
            raise RuntimeError("boom from the model")
        return b"ok", "text/plain"

    stack.add_endpoint(f"{unique}-crashy", model=model)
    got = run_client(stack, """
        s3, rt = boto3.client("s3"), boto3.client("sagemaker-runtime")
        out = []
        for body in (b"crash", b"fine"):
            a = rt.invoke_endpoint_async(EndpointName=ARGS, Body=body, ContentType="text/plain")
            out.append(wait_for_object(s3, a["OutputLocation"], a["FailureLocation"])[1:])
        emit(out)
    """, f"{unique}-crashy")
    assert "RuntimeError: boom from the model" in got[0][0]
    assert got[1] == ["ok", "text/plain"]


def test_sns_notifications_through_an_sqs_subscription(stack, unique):
    got = run_client(stack, """
        sm, sns, sqs = boto3.client("sagemaker"), boto3.client("sns"), boto3.client("sqs")
        rt, s3 = boto3.client("sagemaker-runtime"), boto3.client("s3")
        cfg = sm.describe_endpoint_config(EndpointConfigName=sm.describe_endpoint(
            EndpointName="local-async")["EndpointConfigName"])
        topics = cfg["AsyncInferenceConfig"]["OutputConfig"]["NotificationConfig"]
        queue = sqs.create_queue(QueueName=ARGS + "-events")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        for topic in (topics["SuccessTopic"], topics["ErrorTopic"]):
            sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
        ok = rt.invoke_endpoint_async(EndpointName="local-async", Body=b"5.1,3.5,1.4,0.2",
                                      ContentType="text/csv", Accept="text/csv", InferenceId=ARGS + "-ok",
                                      CustomAttributes="trace=1")
        bad = rt.invoke_endpoint_async(EndpointName="local-async", Body=b"1,2",
                                       ContentType="text/csv", InferenceId=ARGS + "-bad")
        messages, deadline = {}, time.time() + 20
        while len(messages) < 2 and time.time() < deadline:
            for m in sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", []):
                envelope = json.loads(m["Body"])
                body = json.loads(envelope["Message"])
                messages[body["inferenceId"]] = {"topic": envelope["TopicArn"], "body": body}
        emit({"topics": topics, "messages": messages, "ok": ok["OutputLocation"], "bad": bad["FailureLocation"]})
    """, unique)
    ok = got["messages"][f"{unique}-ok"]
    bad = got["messages"][f"{unique}-bad"]
    assert ok["topic"] == got["topics"]["SuccessTopic"] and bad["topic"] == got["topics"]["ErrorTopic"]
    for message in (ok["body"], bad["body"]):
        assert message["eventVersion"] == "1.0" and message["eventSource"] == "aws:sagemaker"
        assert message["eventName"] == "InferenceResult" and message["awsRegion"] == stack.region
        assert message["eventTime"].endswith("Z") and message["receivedTime"] <= message["eventTime"]
        assert message["requestParameters"]["endpointName"] == "local-async"
        assert message["requestParameters"]["contentType"] == "text/csv"
    assert ok["body"]["invocationStatus"] == "Completed"
    assert ok["body"]["requestParameters"]["accept"] == "text/csv"
    assert ok["body"]["requestParameters"]["customAttributes"] == "trace=1"
    assert ok["body"]["responseParameters"] == {"contentType": "text/csv", "outputLocation": got["ok"]}
    assert "failureReason" not in ok["body"]
    assert bad["body"]["invocationStatus"] == "Failed"
    assert "ValueError" in bad["body"]["failureReason"]
    assert bad["body"]["responseParameters"]["failureLocation"] == got["bad"]


def test_an_endpoint_with_include_inference_response_embeds_small_outputs_in_its_notification(stack, tmp_path):
    def echo(body: bytes, content_type: str):
        return body, "text/csv"

    stack.add_endpoint("embed-echo", model=echo, include_response=True)
    config = stack.boto3_client("sagemaker").describe_endpoint_config(EndpointConfigName="embed-echo-config")
    notify = config["AsyncInferenceConfig"]["OutputConfig"]["NotificationConfig"]
    assert notify["IncludeInferenceResponseIn"] == ["SUCCESS_NOTIFICATION_TOPIC"]
    with stack.client(journal_path=tmp_path / "j.sqlite3") as client:
        client.tracker.enable_events("embed-echo")
        small = client.submit("embed-echo", "1,2,3\n", content_type="text/csv")
        large = client.submit("embed-echo", "9" * (200 * 1024) + "\n", content_type="text/csv")  # over 128 KB
        deadline = time.time() + 60
        while time.time() < deadline and not (small.done and large.done):
            client.tracker.refresh()
            time.sleep(0.2)
        assert small.record.output_body == b"1,2,3\n"  # from the notification: no S3 GET needed
        assert large.record.output_body is None and large.status is Status.COMPLETED
        assert small.result().iloc[0].tolist() == [1, 2, 3]
        client.tracker.disable_events("embed-echo")
