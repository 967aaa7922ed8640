"""The magics in an in-process IPython shell that re-raises errors, against moto."""

from __future__ import annotations

import boto3
import pandas as pd
import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from traitlets.config import Config

import sm_async_nb as sma
from sm_async_nb.aws.s3uri import S3Uri
from sm_async_nb.records import Status


class ReRaisingShell(InteractiveShell):
    """run_cell re-raises what the cell raised, so tests see real exceptions."""

    def run_cell(self, raw_cell, *args, **kwargs):
        result = super().run_cell(raw_cell, *args, **kwargs)
        result.raise_error()
        return result


@pytest.fixture
def plain_shell(tmp_path):
    """A shell with the extension loaded and a journal of its own (no AWS mock)."""
    config = Config()
    config.HistoryManager.enabled = False
    ip = ReRaisingShell(config=config)
    ip.run_line_magic("load_ext", "sm_async_nb")
    ip.run_line_magic("config", f"SageMakerAsync.journal_path = {str(tmp_path / 'journal.sqlite3')!r}")
    yield ip
    ip.run_line_magic("unload_ext", "sm_async_nb")
    ip.clear_instance()


@pytest.fixture
def shell(moto_aws, plain_shell):
    plain_shell.run_line_magic("config", "SageMakerAsync.s3_input_path = 's3://input-bucket/cells/'")
    return plain_shell


@pytest.fixture
def invokes(shell):
    calls = []
    client = session(shell).client
    client.aws.runtime.meta.events.register("before-call.sagemaker-runtime.InvokeEndpointAsync",
                                            lambda params, **_: calls.append(params["headers"]))
    return calls


def session(shell):
    return shell.magics_manager.registry["SageMakerAsyncMagics"].session


def read(location):
    uri = S3Uri.parse(location)
    return boto3.client("s3").get_object(Bucket=uri.bucket, Key=uri.key)["Body"].read()


def test_load_twice_is_harmless_and_unload_stops_tracking(shell):
    shell.run_line_magic("load_ext", "sm_async_nb")
    assert sum(isinstance(c, sma.SageMakerAsync) for c in shell.configurables) == 1
    shell.run_cell("%%invoke_async ep\n1,2\n")
    tracker = session(shell).client.tracker
    assert tracker.running
    shell.run_line_magic("unload_ext", "sm_async_nb")
    assert not tracker.running
    assert "invoke_async" not in shell.magics_manager.magics["cell"]
    shell.run_line_magic("load_ext", "sm_async_nb")


def test_cell_body_is_sent_byte_for_byte_and_never_evaluated(shell, invokes, capsys):
    body = "__import__('os').system('echo pwned')\n1,2,3\n\tünïcode,\"quoted\"\n"
    shell.run_cell("%%invoke_async my-endpoint -o job --label cells\n" + body)
    job = shell.user_ns["job"]
    assert read(job.input_location) == body.encode()
    assert invokes[0]["X-Amzn-SageMaker-Content-Type"] == "text/csv"
    out = capsys.readouterr().out
    assert f"Submitted {job.inference_id} to 'my-endpoint' (input: s3://input-bucket/cells/" in out
    assert "%sm_async wait cells" in out


def test_every_option_reaches_the_request(shell, invokes):
    shell.run_cell("%%invoke_async ep --content-type application/json --accept text/csv "
                   "--custom-attributes 'a=1; b=2' --inference-id opt-1 --ttl 600 --timeout 30 "
                   "--output-path-extension runs/7 --filename out.csv --label all -o h\n{\"x\": 1}\n")
    headers = invokes[0]
    assert headers["X-Amzn-SageMaker-Content-Type"] == "application/json"
    assert headers["X-Amzn-SageMaker-Accept"] == "text/csv"
    assert headers["X-Amzn-SageMaker-Custom-Attributes"] == "a=1; b=2"
    assert headers["X-Amzn-SageMaker-Inference-Id"] == "opt-1"
    assert headers["X-Amzn-SageMaker-RequestTTLSeconds"] == "600"
    assert headers["X-Amzn-SageMaker-InvocationTimeoutSeconds"] == "30"
    assert headers["X-Amzn-SageMaker-S3OutputPathExtension"] == "runs/7"
    assert headers["X-Amzn-SageMaker-Filename"] == "out.csv"
    assert shell.user_ns["h"].label == "all"


def test_inline_option(shell, invokes, list_keys):
    shell.run_cell("%%invoke_async ep --inline\n1,2\n")
    assert "X-Amzn-SageMaker-InputLocation" not in invokes[0]
    assert list_keys("input-bucket") == []


def test_line_form_returns_handle_and_fans_out_dataframes(shell, list_keys):
    shell.user_ns["df"] = pd.DataFrame({"a": range(10)})
    shell.run_cell("job = %invoke_async ep df --rows-per-request 3 --label fan")
    job = shell.user_ns["job"]
    assert isinstance(job, sma.InvocationBatch) and len(job) == 4
    assert len(list_keys("input-bucket", "cells/")) == 4
    shell.run_cell("one = %invoke_async ep df")
    assert isinstance(shell.user_ns["one"], sma.Invocation)


def test_json_format_option_and_setting(shell):
    shell.user_ns["df"] = pd.DataFrame({"a": [1, 2], "b": [0.5, 1.5]})
    shell.run_cell("one = %invoke_async ep df --content-type application/json --json-format split")
    assert read(shell.user_ns["one"].input_location) == b'{"dataframe_split":{"columns":["a","b"],"data":[[1,0.5],[2,1.5]]}}'
    shell.run_line_magic("config", "SageMakerAsync.json_format = 'inputs'")
    shell.run_cell("job = %invoke_async ep df --content-type application/json --rows-per-request 1")
    assert [read(p.input_location) for p in shell.user_ns["job"].parts()] == [b'{"inputs":[[1,0.5]]}',
                                                                              b'{"inputs":[[2,1.5]]}']


def test_dollar_expansion_in_line_arguments(shell, invokes):
    from motokit import moto_endpoint

    moto_endpoint("expanded-ep")  # submissions check that their endpoint exists
    shell.user_ns["name"] = "expanded-ep"
    shell.user_ns["ttl"] = 120
    shell.run_cell("%%invoke_async $name --ttl $ttl\n1\n")
    assert invokes[0]["X-Amzn-SageMaker-RequestTTLSeconds"] == "120"
    assert session(shell).client.records()[0].endpoint_name == "expanded-ep"


def test_dotted_variable_path(shell):
    class Holder:
        data = {"instances": [1]}

    shell.user_ns["holder"] = Holder()
    shell.run_cell("h = %invoke_async ep holder.data")
    assert read(shell.user_ns["h"].input_location) == b'{"instances":[1]}'


@pytest.mark.parametrize("cell, error, match", [
    ("%%invoke_async ep --ttl 59\n1\n", sma.ValidationError, "RequestTTLSeconds 59 is invalid"),
    ("%%invoke_async ep --ttl soon\n1\n", UsageError, "invalid int value"),
    ("%%invoke_async ep --colour red\n1\n", UsageError, "unrecognized arguments"),
    ("%%invoke_async bad_name\n1\n", sma.ValidationError, "EndpointName"),
    ("%%invoke_async ep\n", UsageError, "cell body is empty"),
    ("%invoke_async ep missing_var", sma.ValidationError, "No variable named 'missing_var'"),
    ("%invoke_async ep", sma.ValidationError, "Name what to send"),
    ("%%invoke_async ep somevar\n1\n", sma.ValidationError, "Send one thing at a time: the cell body and variable"),
    ("%%invoke_async ep --filename a.b.c\n1\n", sma.ValidationError, "Filename"),
    ("%%invoke_async ep --inline\n" + "x" * 128_001 + "\n", sma.ValidationError, "too large to send inline"),
    ("%sm_async result nothing-like-this", sma.ValidationError, "Nothing tracked matches"),
    ("%sm_async frobnicate", UsageError, "invalid choice"),
    ("%sm_async forget", sma.ValidationError, "either ID_OR_LABEL or --finished"),
    ("%invoke_async ep df --json-format tabular --content-type application/json", sma.ValidationError,
     "json_format must be one of records, split, instances, inputs, not 'tabular'"),
    ("%invoke_async ep df --json-format split --rows-per-request 2", sma.ValidationError,
     "json_format='split' lays out DataFrames sent as application/json, not text/csv"),
    ("%%invoke_async ep --json-format split\n1,2\n", sma.ValidationError, "a str payload is sent as it is"),
    ("%invoke_async ep --s3 s3://input-bucket/in/ --json-format split", sma.ValidationError,
     "json_format does not apply to submit_s3"),
])
def test_user_errors_are_one_line_and_upload_nothing(shell, cell, error, match, list_keys):
    shell.user_ns["df"] = pd.DataFrame({"a": [1, 2, 3]})
    with pytest.raises(error, match=match) as caught:
        shell.run_cell(cell)
    if isinstance(caught.value, sma.ValidationError):
        assert caught.value._render_traceback_() == [f"ValidationError: {caught.value}"]
        assert "\n" not in str(caught.value)
    assert list_keys("input-bucket") == []
    assert session(shell).client.records() == []


def test_missing_bucket_keeps_the_handle_in_output_variable(shell, list_keys):
    shell.run_line_magic("config", "SageMakerAsync.s3_input_path = 's3://no-such-bucket/x/'")
    with pytest.raises(sma.SubmissionError, match="Bucket 'no-such-bucket' does not exist"):
        shell.run_cell("%%invoke_async ep -o job\n1\n")
    assert shell.user_ns["job"].status is Status.ERROR
    assert "does not exist" in shell.user_ns["job"].error


def test_settings_via_config_and_environment(shell, monkeypatch, caplog, capsys):
    settings = session(shell).settings
    shell.run_line_magic("config", "SageMakerAsync.poll_interval = 2.5")
    assert settings.poll_interval == 2.5
    shell.run_line_magic("config", "SageMakerAsync.s3_input_path = 'not-a-uri'")  # %config logs, keeps old
    assert "'not-a-uri' is not an S3 URI" in caplog.text
    assert settings.s3_input_path == "s3://input-bucket/cells/"
    shell.run_line_magic("config", "SageMakerAsync")
    listing = capsys.readouterr().out
    assert all(name in listing for name in settings.as_dict())
    monkeypatch.setenv("SM_ASYNC_NB_MAX_WORKERS", "7")
    monkeypatch.setenv("SM_ASYNC_NB_AUTO_PANEL", "true")
    fresh = sma.SageMakerAsync()
    assert fresh.max_workers == 7 and fresh.auto_panel is True
    assert sma.SageMakerAsync(max_workers=3).max_workers == 3


def test_wait_result_list_and_forget(shell, capsys):
    shell.run_cell("%%invoke_async ep --label lbl --accept text/csv -o job\n1,2\n")
    job = shell.user_ns["job"]
    uri = S3Uri.parse(job.output_location)
    boto3.client("s3").put_object(Bucket=uri.bucket, Key=uri.key, Body=b"0.5\n", ContentType="text/csv")
    shell.run_line_magic("sm_async", "wait lbl --timeout 10")
    assert "1 completed" in capsys.readouterr().out
    shell.run_line_magic("sm_async", "result lbl -o df")
    assert shell.user_ns["df"][0].tolist() == [0.5]
    listing = shell.run_line_magic("sm_async", "list")
    assert listing["status"].tolist() == ["COMPLETED"] and "label" in listing
    shell.run_line_magic("sm_async", "forget --finished")
    assert session(shell).client.records() == []


def test_wait_option_stores_the_dataframe(shell):
    # moto's stand-in runtime writes its canned answer during the call, so --wait finishes at once.
    shell.run_cell("%%invoke_async ep --wait -o frame --accept application/json\n1\n")
    assert isinstance(shell.user_ns["frame"], pd.DataFrame)
    assert shell.user_ns["frame"].to_dict("records") == [{"default": "response"}]


def test_help_is_there():
    from sm_async_nb.notebook.magics import SageMakerAsyncMagics

    assert "--rows-per-request" in SageMakerAsyncMagics.invoke_async.__doc__
    assert "local" in SageMakerAsyncMagics.sm_async.__doc__ and "forget" in SageMakerAsyncMagics.sm_async.__doc__


def test_local_stack_start_status_stop(plain_shell, capsys):
    plain_shell.run_line_magic("sm_async", "local start --delay 0.2 --endpoint demo-ep")
    out = capsys.readouterr().out
    assert "Local stack running (detached, pid" in out and "endpoint 'demo-ep'" in out
    plain_shell.run_cell("%%invoke_async demo-ep --label iris --accept text/csv\n5.1,3.5,1.4,0.2\n")
    plain_shell.run_line_magic("sm_async", "wait iris --timeout 30")
    plain_shell.run_line_magic("sm_async", "result iris -o df")
    assert plain_shell.user_ns["df"][0].tolist() == ["setosa"]
    plain_shell.run_line_magic("sm_async", "local status")
    assert "endpoints:" in capsys.readouterr().out
    stack = session(plain_shell).stack
    plain_shell.run_line_magic("sm_async", "local stop")
    assert "Local stack stopped." in capsys.readouterr().out
    assert session(plain_shell).stack is None
    assert not _alive(stack.pid)
    plain_shell.run_line_magic("sm_async", "local start --in-kernel --concurrency 1")
    assert "owned by this kernel" in capsys.readouterr().out
    engine_pid = session(plain_shell).stack.pid
    with pytest.raises(sma.ValidationError, match="already in use"):
        plain_shell.run_line_magic("sm_async", "local start --in-kernel")
    plain_shell.run_line_magic("sm_async", "local stop")
    assert not _alive(engine_pid)


def _alive(pid):
    import psutil

    return psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE


def test_a_rerun_cell_label_means_its_latest_submission(shell):
    shell.run_cell("%%invoke_async ep --label rerun -o first\n1\n")
    shell.run_cell("%%invoke_async ep --label rerun -o second\n2\n")
    assert session(shell).resolve("rerun") == shell.user_ns["second"]
    shell.run_line_magic("sm_async", "wait rerun --timeout 10")


def test_forget_older_than_prunes_only_old_finished_rows(shell, capsys, stage_row):
    import time

    shell.run_cell("%%invoke_async ep -o old\n1\n")
    shell.run_cell("%%invoke_async ep -o recent\n2\n")
    shell.run_line_magic("sm_async", "wait --timeout 10")
    journal = session(shell).client.journal
    stage_row(journal, shell.user_ns["old"].inference_id, finished_at=time.time() - 10 * 86400)
    shell.run_line_magic("sm_async", "forget --finished --older-than 7")
    assert "Forgot 1 invocation(s)" in capsys.readouterr().out
    assert [r.inference_id for r in session(shell).client.records()] == [shell.user_ns["recent"].inference_id]


def test_auto_panel_appears_after_the_first_submission_only(shell, monkeypatch):
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda obj, **kw: shown.append(obj))
    shell.run_line_magic("config", "SageMakerAsync.auto_panel = True")
    shell.run_cell("%%invoke_async ep\n1\n")
    shell.run_cell("%%invoke_async ep\n2\n")
    panels = [o for o in shown if type(o).__name__ == "Panel"]
    assert len(panels) == 1 and session(shell).panels == panels
