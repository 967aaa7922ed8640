"""SPEC §19 against MLflow's real scoring server: a scikit-learn model logged with MLflow and served by
`mlflow models serve --env-manager local` is the local stack's container model. MLflow refuses a
DataFrame sent as a list of rows ("Received a list"); `json_format="split"` (or the setting) sends
{"dataframe_split": ...}, and the predictions come back aligned to the input rows.

MLflow lives in a venv of its own (its pins are not ours): SM_ASYNC_NB_MLFLOW names that venv's
python or mlflow executable (.ci/run makes it: mlflow and scikit-learn)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from sklearn.datasets import load_iris

import sm_async_nb as sma

MLFLOW = os.environ.get("SM_ASYNC_NB_MLFLOW")
pytestmark = pytest.mark.skipif(not MLFLOW, reason="SM_ASYNC_NB_MLFLOW is not set: the path of the python (or "
                                "mlflow) of a venv with mlflow and scikit-learn (.ci/run makes one)")

LOG_MODEL = """
import json, sys
import mlflow.sklearn
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

iris = load_iris(as_frame=True)
model = LogisticRegression(max_iter=1000).fit(iris.data, iris.target)
mlflow.sklearn.save_model(model, sys.argv[1], input_example=iris.data.head(3))
json.dump(model.predict(iris.data).tolist(), open(sys.argv[2], "w"))  # what the model itself answers
"""


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory, free_port):
    """(url, expected predictions for every iris row) of a running `mlflow models serve`."""
    bin_dir = Path(MLFLOW).parent
    python, mlflow = bin_dir / "python", bin_dir / "mlflow"
    assert python.exists() and mlflow.exists(), f"SM_ASYNC_NB_MLFLOW={MLFLOW}: no python and mlflow beside it"
    work = tmp_path_factory.mktemp("mlflow")
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",  # it execs uvicorn from there
           "MLFLOW_TRACKING_URI": (work / "runs").as_uri(), "PYTHONPATH": ""}
    subprocess.run([str(python), "-c", LOG_MODEL, str(work / "model"), str(work / "expected.json")], env=env,
                   check=True, timeout=240, capture_output=True)
    port = free_port()
    log = (work / "serve.log").open("wb")
    server = subprocess.Popen([str(mlflow), "models", "serve", "-m", str(work / "model"), "--env-manager", "local",
                               "-h", "127.0.0.1", "-p", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT,
                              start_new_session=True)  # its own process group: uvicorn's workers end with it
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(url + "/ping", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            assert server.poll() is None, (work / "serve.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "mlflow models serve did not answer /ping in 180 s"
            time.sleep(0.5)
        yield url, json.loads((work / "expected.json").read_text())
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()


@pytest.fixture(scope="module")
def mlflow_stack(mlflow_server):
    with sma.LocalStack(model=mlflow_server[0], endpoint_name="mlflow", concurrency=2) as running:
        yield running


@pytest.fixture(scope="module")
def flowers():
    iris = load_iris(as_frame=True)
    return iris.data.sample(frac=1.0, random_state=5)  # all 150, shuffled: the index is out of order


def test_split_dataframes_are_scored_by_mlflow_and_come_back_aligned(mlflow_stack, mlflow_server, flowers, tmp_path):
    _, expected = mlflow_server
    with mlflow_stack.client(journal_path=tmp_path / "journal.sqlite3") as client:
        batch = client.submit_dataframe("mlflow", flowers, rows_per_request=40, content_type="application/json",
                                        json_format="split")
        scored = batch.wait(timeout=180).result()
        assert batch.status_counts() == {"COMPLETED": 4}
    assert scored.index.equals(flowers.index)
    assert scored["prediction"].tolist() == [expected[i] for i in flowers.index]


def test_a_list_of_rows_is_what_mlflow_refuses_and_the_setting_fixes_it(mlflow_stack, flowers, tmp_path):
    rows = flowers.head(3)
    with mlflow_stack.client(journal_path=tmp_path / "journal.sqlite3") as client:
        refused = client.submit("mlflow", rows, content_type="application/json").wait(timeout=60)
        assert refused.status is sma.Status.FAILED and "Received a list" in refused.failure_reason
    settings = sma.SageMakerAsync(json_format="split")
    with mlflow_stack.client(journal_path=tmp_path / "journal.sqlite3", settings=settings) as client:
        scored = client.submit("mlflow", rows, content_type="application/json").wait(timeout=60).result()
    assert scored.columns.tolist() == ["prediction"] and len(scored) == 3
