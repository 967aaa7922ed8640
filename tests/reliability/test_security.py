"""Security: nothing evaluates or unpickles input or output; credentials never leak into what we
show, raise or log."""

from __future__ import annotations

import ast
import logging
import uuid
from pathlib import Path

import boto3
import pytest
from botocore.awsrequest import AWSResponse

import sm_async_nb as sma
from sm_async_nb.aws.s3uri import S3Uri

PACKAGE = Path(sma.__file__).parent
FORBIDDEN_CALLS = {"eval", "exec", "compile", "__import__"}
FORBIDDEN_MODULES = {"pickle", "cPickle", "dill", "cloudpickle", "marshal", "shelve", "jsonpickle"}


def package_sources():
    return sorted(PACKAGE.rglob("*.py"))  # the demo model too


@pytest.mark.parametrize("path", package_sources(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_eval_exec_or_pickle_anywhere_in_the_package(path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            assert node.func.id not in FORBIDDEN_CALLS, f"{path.name}:{node.lineno} calls {node.func.id}"
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] + ([node.module] if isinstance(node, ast.ImportFrom) else [])
            assert not FORBIDDEN_MODULES & {str(n).split(".")[0] for n in names}, f"{path.name}:{node.lineno}"
        if isinstance(node, ast.keyword) and node.arg == "allow_pickle":
            assert isinstance(node.value, ast.Constant) and node.value.value is False, f"{path.name}:{node.lineno}"


def test_malicious_cell_bodies_and_outputs_are_never_executed(stack, tmp_path, magic_shell):
    canary = tmp_path / f"pwned-{uuid.uuid4().hex}"
    hostile = (f"__import__('pathlib').Path({str(canary)!r}).touch()\n"
               f"{{{{ open({str(canary)!r}, 'w') }}}}\n${{touch {canary}}}\n")

    def echo(body, content_type):  # the model sends the hostile text straight back, as JSON and CSV
        return body, "application/json" if body.startswith(b"[") else "text/csv"

    stack.add_endpoint("security-echo", model=echo)
    with stack.client(journal_path=tmp_path / "j.sqlite3") as client:
        shell = magic_shell(client)
        shell.run_cell_magic("invoke_async", "security-echo -o job", hostile)
        job = shell.user_ns["job"]
        assert job.wait(timeout=30).raw() == hostile.encode()
        with pytest.raises(sma.DecodeError, match=r"text/csv output .*use \.raw\(\)"):
            job.result()  # not valid CSV for pandas is fine; executing it is not
        json_like = client.submit("security-echo", '["__import__(\'os\').system(\'touch ' + str(canary) + '\')"]')
        assert json_like.wait(timeout=30).result()["prediction"].tolist()[0].startswith("__import__")
    assert not canary.exists()


FAKE_KEY_ID = "AKIASMASYNCNBCANARY1"
FAKE_SECRET = "sm-async-nb-canary-secret-7f3e9a1b2c4d"
FAKE_TOKEN = "sm-async-nb-canary-session-token-55aa"


def test_credentials_never_appear_in_reprs_errors_logs_or_the_panel(moto_aws, tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", FAKE_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", FAKE_SECRET)
    monkeypatch.setenv("AWS_SESSION_TOKEN", FAKE_TOKEN)
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger="sm_async_nb")
    shown: list[str] = []
    with sma.AsyncInferenceClient("s3://input-bucket/p/", journal_path=tmp_path / "j.sqlite3") as client:
        good = client.submit("ep", "1,2", custom_attributes="trace=1", label="ok", accept="application/json")
        good.wait(timeout=10)
        shown += [repr(client), repr(good), str(good.record), good.result().to_string()]
        batch = client.submit_many("ep", ["1", "2"], label="pair")
        shown += [repr(batch), client.tracker.to_frame().to_string()]
        for attempt in (
            lambda: client.submit("ep", "1", request_ttl_seconds=1),
            lambda: client.submit("bad_name", "1"),
        ):
            with pytest.raises(sma.ValidationError) as caught:
                attempt()
            shown += [str(caught.value), repr(caught.value), *caught.value._render_traceback_()]

        def denied(model, **_):
            return (AWSResponse("https://s3.amazonaws.com/", 403, {}, None),
                    {"Error": {"Code": "AccessDenied", "Message": "Access Denied"},
                     "ResponseMetadata": {"HTTPStatusCode": 403}})

        client.aws.s3.meta.events.register("before-call.s3.PutObject", denied)
        with pytest.raises(sma.SubmissionError) as caught:
            client.submit("ep", "1")
        shown += [str(caught.value), *caught.value._render_traceback_()]
        panel = client.panel()
        assert panel.wait_idle()
        shown += [str(getattr(w, "value", "")) for w in panel.view.widgets()]
        shown += [str(getattr(w, "tooltip", "")) for w in panel.view.widgets()]
        panel.close()
        shown += [str(r) for r in client.records()]
    shown.append(caplog.text)
    everything = "\n".join(shown)
    assert "trace=1" in everything  # the collection above really covers what users see
    for secret in (FAKE_SECRET, FAKE_TOKEN, FAKE_KEY_ID):
        assert secret not in everything


def test_kms_and_bucket_owner_on_every_upload_path(moto_aws, tmp_path):
    """SSE-KMS and ExpectedBucketOwner reach S3 for small puts and for streamed (multipart) files."""
    settings = sma.SageMakerAsync(kms_key_id="alias/inputs", expected_bucket_owner="123456789012")
    big = tmp_path / "big.csv"
    big.write_bytes(b"1,2,3\n" * (9 * 1024 * 1024 // 6))
    seen = []
    with sma.AsyncInferenceClient("s3://input-bucket/p/", journal_path=tmp_path / "j", settings=settings) as c:
        for op in ("PutObject", "CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload"):
            c.aws.s3.meta.events.register(f"before-call.s3.{op}",
                                          lambda params, model, **_: seen.append((model.name, params["headers"])))
        c.submit("ep", "1")
        inv = c.submit("ep", big)
        head = boto3.client("s3").head_object(Bucket="input-bucket", Key=S3Uri.parse(inv.input_location).key)
    assert head["ContentLength"] == big.stat().st_size
    creates = [h for name, h in seen if name in ("PutObject", "CreateMultipartUpload")]
    assert len(creates) == 2 and {name for name, _ in seen} >= {"CreateMultipartUpload", "UploadPart"}
    for headers in creates:
        assert headers["x-amz-server-side-encryption"] == "aws:kms"
        assert headers["x-amz-server-side-encryption-aws-kms-key-id"] == "alias/inputs"
    assert all(h.get("x-amz-expected-bucket-owner") == "123456789012" for _, h in seen)
