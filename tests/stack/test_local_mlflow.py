"""A real third-party serving container behind an endpoint created with plain boto3 (SPEC §17):
MLflow's scoring server (``mlflow models serve -m MODEL --env-manager local``), which implements
SageMaker's container contract (``GET /ping``, ``POST /invocations``), mapped to the model's image
with ``image_map``. It runs from a venv of its own (``SM_ASYNC_NB_MLFLOW``: its ``mlflow`` command;
``.ci/run`` makes it with mlflow 3 and scikit-learn)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from stackhelp import create_endpoint, s3_object, wait_for

MLFLOW = os.environ.get("SM_ASYNC_NB_MLFLOW")
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/mlflow-pyfunc:3"
pytestmark = pytest.mark.skipif(not MLFLOW, reason="SM_ASYNC_NB_MLFLOW (the mlflow command of a venv with mlflow 3 "
                                                   "and scikit-learn) is not set; .ci/run sets it")

SAVE_MODEL = """
import sys
import mlflow.sklearn
from mlflow.models import infer_signature
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

frame = load_iris(as_frame=True).frame
features = frame.drop(columns="target")
model = LogisticRegression(max_iter=1000).fit(features, frame["target"])
mlflow.sklearn.save_model(model, sys.argv[1], signature=infer_signature(features, model.predict(features)))
"""


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory, free_port):
    assert MLFLOW is not None
    python = Path(MLFLOW).parent / "python"
    model = tmp_path_factory.mktemp("mlflow") / "iris-model"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SM_ASYNC_NB_", "PYTHONPATH"))}
    env["PATH"] = f"{python.parent}{os.pathsep}{env.get('PATH', '')}"  # as if its venv were activated (uvicorn)
    subprocess.run([str(python), "-c", SAVE_MODEL, str(model)], check=True, env=env, capture_output=True, timeout=300)
    port = free_port()
    server = subprocess.Popen([MLFLOW, "models", "serve", "-m", str(model), "--env-manager", "local",
                               "-h", "127.0.0.1", "-p", str(port)], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while True:
        try:
            with urllib.request.urlopen(url + "/ping", timeout=2) as answer:
                if answer.status == 200:
                    break
        except OSError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            server.kill()
            raise AssertionError(f"mlflow models serve did not start: {server.stderr.read().decode()[-2000:]}")
        time.sleep(0.5)
    yield url
    os.killpg(server.pid, signal.SIGTERM)  # its own session: the server and its workers
    server.wait(30)


def test_mlflows_scoring_server_serves_an_endpoint_created_with_boto3(mlflow_server):
    from sm_async_nb.local import LocalStack

    with LocalStack(image_map={IMAGE: mlflow_server}) as stack:
        sm, runtime, s3 = (stack.boto3_client(s) for s in ("sagemaker", "sagemaker-runtime", "s3"))
        described = create_endpoint(sm, "mlflow-iris", {"PrimaryContainer": {"Image": IMAGE}},
                                    output=f"s3://{stack.input_bucket}/mlflow/", concurrency=2)
        assert described["EndpointStatus"] == "InService", described.get("FailureReason")
        columns = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]
        as_json = json.dumps({"dataframe_split": {"columns": columns,
                                                  "data": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]}})
        as_csv = ",".join(columns) + "\n5.1,3.5,1.4,0.2\n6.7,3.0,5.2,2.3\n"
        outputs = []
        for body, content_type in ((as_json, "application/json"), (as_csv, "text/csv")):
            s3.put_object(Bucket=stack.input_bucket, Key=f"mlflow/in-{len(outputs)}", Body=body.encode())
            outputs.append(runtime.invoke_endpoint_async(
                EndpointName="mlflow-iris", ContentType=content_type, Accept="application/json",
                InputLocation=f"s3://{stack.input_bucket}/mlflow/in-{len(outputs)}")["OutputLocation"])
        for location in outputs:
            body, content_type = wait_for(lambda location=location: s3_object(s3, location), timeout=60)
            assert content_type == "application/json"  # what the scoring server answered with
            assert json.loads(body) == {"predictions": [0, 2]}

        s3.put_object(Bucket=stack.input_bucket, Key="mlflow/bad", Body=b"not a frame")
        bad = runtime.invoke_endpoint_async(EndpointName="mlflow-iris", ContentType="application/json",
                                            InputLocation=f"s3://{stack.input_bucket}/mlflow/bad")
        failure, _ = wait_for(lambda: s3_object(s3, bad["FailureLocation"]), timeout=60)
        assert failure.decode().startswith("ModelError: Received client error (400) from model with message")
