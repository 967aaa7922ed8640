"""Model adapters: inference-toolkit handler files (with the toolkit's defaults), callables and
serving containers (/ping + /invocations)."""

from __future__ import annotations

import io
import json
import os
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest
from stackhelp import run_client

from sm_async_nb.local.service.hosting import (
    CallableModel,
    ContainerModel,
    HandlerModel,
    ModelInvocationError,
    resolve_model,
)

REPO = Path(__file__).resolve().parents[2]


def handler_file(tmp_path, source: str) -> Path:
    path = tmp_path / "inference.py"
    path.write_text(textwrap.dedent(source))
    return path


SUM_MODEL = """
    class Summer:
        def predict(self, data):
            return data.sum(axis=-1)

    def model_fn(model_dir):
        return Summer()
"""


@pytest.mark.parametrize("body,content_type", [
    (b"[[1, 2], [3, 4]]", "application/json"),
    (b"1,2\n3,4\n", "text/csv; charset=utf-8"),
    (None, "application/x-npy"),
])
def test_default_input_predict_and_output(tmp_path, body, content_type):
    if body is None:
        stream = io.BytesIO()
        np.save(stream, np.array([[1.0, 2.0], [3.0, 4.0]]))
        body = stream.getvalue()
    model = HandlerModel(handler_file(tmp_path, SUM_MODEL))
    out, out_type = model.invoke(body, content_type, None)
    assert (json.loads(out), out_type) == ([3.0, 7.0], "application/json")
    out, out_type = model.invoke(body, content_type, "text/csv")
    assert out_type == "text/csv" and [float(x) for x in out.decode().split()] == [3.0, 7.0]
    out, out_type = model.invoke(body, content_type, "application/x-npy, text/csv")
    assert out_type == "application/x-npy" and np.load(io.BytesIO(out)).tolist() == [3.0, 7.0]


def test_default_input_fn_refuses_unknown_types(tmp_path):
    model = HandlerModel(handler_file(tmp_path, SUM_MODEL))
    with pytest.raises(ModelInvocationError) as caught:
        model.invoke(b"\x00", "image/png", None)
    assert caught.value.status == 415 and "image/png" in caught.value.message


def test_output_fn_may_return_body_or_body_and_type(tmp_path):
    model = HandlerModel(handler_file(tmp_path, """
        def model_fn(model_dir):
            return model_dir

        def input_fn(body, content_type):
            return body.decode()

        def predict_fn(data, model):
            return {"echo": data, "model_dir": model}

        def output_fn(prediction, accept):
            if accept == "text/plain":
                return prediction["echo"]
            return json.dumps(prediction), "application/vnd.test+json"

        import json
    """))
    assert model.invoke(b"hi", "text/plain", "text/plain") == (b"hi", "text/plain")
    body, out_type = model.invoke(b"hi", "text/plain", "application/json")
    assert out_type == "application/vnd.test+json"
    assert json.loads(body) == {"echo": "hi", "model_dir": str(tmp_path)}


def test_handlers_declaring_context_get_custom_attributes(tmp_path):
    model = HandlerModel(handler_file(tmp_path, """
        def predict_fn(data, model, context):
            return [context.custom_attributes]
    """))
    assert model.invoke(b"[1]", "application/json", None, "tenant=a") == (b'["tenant=a"]', "application/json")


def test_callable_model_gets_optional_keywords_and_may_return_json():
    def fn(body, content_type, accept, custom_attributes):
        return {"body": body.decode(), "type": content_type, "accept": accept, "attrs": custom_attributes}

    out, out_type = CallableModel(fn).invoke(b"x", "text/plain", "application/json", "k=v")
    assert out_type == "application/json"
    assert json.loads(out) == {"body": "x", "type": "text/plain", "accept": "application/json", "attrs": "k=v"}
    assert CallableModel(lambda body, content_type: body[::-1]).invoke(b"ab", "text/plain", None) == (b"ba", "text/plain")


def test_resolve_model_sources(tmp_path):
    assert isinstance(resolve_model(None), HandlerModel)
    assert isinstance(resolve_model("http://127.0.0.1:9/"), ContainerModel)
    handler_file(tmp_path, SUM_MODEL)
    assert isinstance(resolve_model(tmp_path), HandlerModel)  # a directory with inference.py
    with pytest.raises(FileNotFoundError, match="does not exist"):
        resolve_model(tmp_path / "nope.py")
    with pytest.raises(TypeError):
        resolve_model(42)


def test_notebook_model_path_is_the_shipped_iris_model():
    path = REPO / "notebooks" / "models" / "iris.py"
    assert path.resolve() == (REPO / "sm_async_nb" / "local" / "demo_models" / "iris.py").resolve()
    if path.is_symlink():
        assert not os.path.isabs(os.readlink(path))  # relative: works in any clone
    model = resolve_model(str(path))
    assert model.invoke(b"6.7,3.0,5.2,2.3\n", "text/csv", "text/csv")[0].startswith(b"virginica,")


@pytest.fixture
def container():
    """A minimal serving container: GET /ping, POST /invocations echoing what it received."""
    from werkzeug.serving import make_server
    from werkzeug.wrappers import Request, Response

    @Request.application
    def app(request):
        if request.path == "/ping":
            return Response("", status=200)
        if request.path == "/invocations" and request.method == "POST":
            if request.get_data() == b"explode":
                return Response("model exploded", status=500)
            seen = {"body": request.get_data(as_text=True), "type": request.content_type,
                    "accept": request.headers.get("Accept"),
                    "attrs": request.headers.get("X-Amzn-SageMaker-Custom-Attributes")}
            return Response(json.dumps(seen), content_type="application/vnd.echo+json")
        return Response("", status=404)

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


def test_container_model_through_the_stack(stack, container, unique):
    stack.add_endpoint(f"{unique}-box", model=container)
    got = run_client(stack, """
        s3, rt = boto3.client("s3"), boto3.client("sagemaker-runtime")
        out = []
        for body in (b"payload", b"explode"):
            a = rt.invoke_endpoint_async(EndpointName=ARGS, Body=body, ContentType="text/plain",
                                         Accept="application/json", CustomAttributes="trace-id=42")
            out.append(wait_for_object(s3, a["OutputLocation"], a["FailureLocation"]))
        emit(out)
    """, f"{unique}-box")
    (_, echo, echo_type), (failure_uri, failure, _) = got
    assert echo_type == "application/vnd.echo+json"
    assert json.loads(echo) == {"body": "payload", "type": "text/plain", "accept": "application/json",
                                "attrs": "trace-id=42"}
    assert failure_uri.endswith("-error.out")
    assert 'Received server error (500) from model with message "model exploded"' in failure


def test_container_that_does_not_answer_ping_is_refused():
    with pytest.raises(RuntimeError, match="did not answer GET /ping"):
        ContainerModel("http://127.0.0.1:9", ping_timeout=1).load()
