"""The stack's one control namespace: token-guarded, the same operations wherever the engine runs,
and no other way in (moto's port has no control path)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def post(url: str, body: dict, headers: dict | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST", headers=headers or {})
    try:
        with NO_PROXY.open(request, timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        text = exc.read()
        return exc.code, json.loads(text) if text.startswith(b"{") else {"raw": text.decode(errors="replace")}


@pytest.mark.parametrize("token", [None, "wrong-token"])
def test_without_the_token_nothing_is_done(stack, token):
    headers = {} if token is None else {"X-SM-Async-NB-Token": token}
    base = stack.endpoint_urls["sagemaker-runtime"] + "/_sm_async_nb/"
    before = stack.stats["runtime"]["latency_ms"]
    for op, args in (("faults", {"latency_ms": 500}), ("stop", {}), ("add_endpoint", {"name": "intruder"}),
                     ("records", {})):
        status, answer = post(base + op, args, headers)
        assert (status, answer) == (403, {"error": "wrong or missing control token"})
    assert stack.stats["runtime"]["latency_ms"] == before
    assert "intruder" not in stack.stats["endpoints"]
    assert stack.status()["pid"] == stack.pid  # still serving


def test_moto_has_no_control_path(stack):
    """The fault control path moto's port had (behind a User-Agent marker) is gone."""
    status, answer = post(stack.endpoint_urls["s3"] + "/_sm_async_nb/faults", {"latency_ms": 500},
                          {"User-Agent": "sm-async-nb-local-internal"})
    assert status != 200 or "latency_ms" not in answer
    assert stack.stats["moto"]["latency_ms"] == 0


def test_operations_answer_and_bad_ones_are_refused(stack, unique):
    assert stack.call("status")["endpoints"][0] == "local-async"
    with pytest.raises(ValueError, match="unknown control operation 'reboot'"):
        stack.call("reboot")
    with pytest.raises(ValueError, match="fault_rate must be between 0 and 1"):
        stack.configure_faults(fault_rate=3)
    with pytest.raises(ValueError, match="already exists"):
        stack.add_endpoint("local-async")
    assert stack.add_endpoint("local-async", exist_ok=True, delay=4) is False and stack.differs == ["delay"]
    with pytest.raises(ValueError, match="EndpointName"):
        stack.add_endpoint("bad_name")  # refused in this process before any request


def test_a_python_model_of_this_process_serves_a_child_engine(stack, unique):
    """A callable cannot cross into the engine's process: it is served from here with the container
    contract (content type, accept and custom attributes in; the response's content type out)."""
    seen = []

    def model(body, content_type, accept=None, custom_attributes=None):
        seen.append((body, content_type, accept, custom_attributes))
        print(f"scoring {len(body)} bytes")
        return b"<r/>", "application/xml"

    assert stack.add_endpoint(f"{unique}-py", model=model) is True
    runtime = stack.boto3_client("sagemaker-runtime")
    answer = runtime.invoke_endpoint_async(EndpointName=f"{unique}-py", Body=b"1,2", ContentType="text/csv",
                                           Accept="application/xml", CustomAttributes="trace=1",
                                           InferenceId=f"{unique}-id")
    assert stack.wait_until_idle(20)
    assert seen == [(b"1,2", "text/csv", "application/xml", "trace=1")]
    out = stack.boto3_client("s3").get_object(Bucket=stack.input_bucket, Key=answer["OutputLocation"].split("/", 3)[3])
    assert (out["ContentType"], out["Body"].read()) == ("application/xml", b"<r/>")
    logs = stack.boto3_client("logs").filter_log_events(logGroupName=f"/aws/sagemaker/Endpoints/{unique}-py")
    assert any(e["message"] == f"[{unique}-id] scoring 3 bytes" for e in logs["events"]), logs["events"]
