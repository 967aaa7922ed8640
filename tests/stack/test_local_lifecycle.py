"""Start/stop hygiene, loopback-only binding, lazy imports, the CLI and client wiring."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import threading

import psutil
import pytest
from stackhelp import IRIS_CSV, clean_env, client_env, run_script


def listening(ports) -> list:
    return [c for c in psutil.net_connections(kind="inet")
            if c.status == psutil.CONN_LISTEN and c.laddr.port in set(ports)]


def test_stop_leaves_no_thread_process_or_port_and_binds_loopback_only():
    from sm_async_nb.local import LocalStack

    threads_before = set(threading.enumerate())
    stack = LocalStack(sns=True).start()
    ports, engine_pid = stack.ports, stack.pid
    assert engine_pid in {c.pid for c in psutil.Process().children()}  # the default: a child of this process
    runtime = stack.boto3_client("sagemaker-runtime")  # keeps a keep-alive connection open
    runtime.invoke_endpoint_async(EndpointName="local-async", Body=IRIS_CSV.encode(), ContentType="text/csv")
    assert stack.wait_until_idle(20)

    sockets = listening(ports.values())
    assert {c.laddr.port for c in sockets} == set(ports.values())
    assert all(c.laddr.ip == "127.0.0.1" for c in sockets), sockets
    assert {c.pid for c in sockets} == {engine_pid}  # moto, the runtime and the worker: one process

    stack.stop()
    stack.stop()  # idempotent
    assert not psutil.pid_exists(engine_pid) or psutil.Process(engine_pid).status() == psutil.STATUS_ZOMBIE
    leftover = [t for t in threading.enumerate() if t not in threads_before and t.is_alive()]
    assert leftover == []
    assert listening(ports.values()) == []
    with pytest.raises(RuntimeError, match="create a new LocalStack"):
        stack.start()
    runtime.close()


def test_the_stack_child_exits_when_its_parent_dies():
    parent = subprocess.Popen([sys.executable, "-c", (
        "import sys\nfrom sm_async_nb import LocalStack\n"
        "s = LocalStack().start(); print(s.pid, flush=True); sys.stdin.read()")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=clean_env())
    child_pid = int(parent.stdout.readline())
    child = psutil.Process(child_pid)
    parent.kill()  # no cleanup code runs in the parent
    parent.wait()
    child.wait(20)  # raises TimeoutExpired if the child outlived its parent
    parent.stdout.close()
    parent.stdin.close()


def test_the_engine_runs_in_this_process_when_asked():
    from sm_async_nb.local import LocalStack

    with LocalStack(where="this-process", concurrency=1) as stack:
        assert stack.pid == os.getpid() and stack.where == "this-process"
        assert {c.pid for c in listening(stack.ports.values())} == {os.getpid()}
        runtime = stack.boto3_client("sagemaker-runtime")
        runtime.invoke_endpoint_async(EndpointName="local-async", Body=IRIS_CSV.encode(), ContentType="text/csv")
        assert stack.wait_until_idle(20) and stack.records()[0]["status"] == "Completed"
        runtime.close()


def test_an_unknown_placement_is_refused():
    from sm_async_nb.local import LocalStack

    with pytest.raises(ValueError, match="where must be one of this-process, child, detached"):
        LocalStack(where="elsewhere")


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "::"])
def test_non_loopback_hosts_are_refused(host):
    from sm_async_nb.local import LocalStack

    with pytest.raises(ValueError, match="loopback"):
        LocalStack(host=host)
    assert LocalStack(host=host, allow_non_loopback=True).host == host  # explicit opt-in (not started)


def test_localhost_binds_the_loopback_ip():
    from sm_async_nb.local import LocalStack

    assert LocalStack(host="localhost").host == "127.0.0.1"
    assert LocalStack(host="::1").host == "::1"


def test_importing_the_package_does_not_import_moto():
    found = subprocess.run([sys.executable, "-c", (
        "import sys, json, sm_async_nb, sm_async_nb.local, sm_async_nb.cli\n"
        "from sm_async_nb.local import LocalStack\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules} & {'moto', 'werkzeug', 'flask'})))")],
        capture_output=True, text=True, env=clean_env(), check=True)
    assert json.loads(found.stdout) == []


def test_missing_local_extra_gives_the_install_command(monkeypatch):
    from sm_async_nb.local import LocalStack

    monkeypatch.setitem(sys.modules, "moto", None)
    with pytest.raises(ImportError, match=re.escape('pip install "sm_async_nb[local]"')):
        LocalStack()


def test_bad_settings_are_refused_before_anything_starts():
    from sm_async_nb.local import LocalStack

    for kwargs in ({"endpoint_name": "bad_name"}, {"concurrency": 0}, {"fault_rate": 1.5},
                   {"latency_ms": -1}, {"time_scale": 0}, {"delay": -1}, {"instance_count": 0},
                   {"min_instances": 2, "max_instances": 1}, {"scale_out_seconds": -1},
                   {"metrics_period_seconds": 0}, {"idle_timeout": 0}, {"moto_port": 70000}):
        with pytest.raises(ValueError):
            LocalStack(**kwargs)


def test_client_is_constructed_with_the_stacks_wiring(stack, monkeypatch, tmp_path):
    import sm_async_nb.client as module

    seen = {}

    class Recorder:
        def __init__(self, *args, **kwargs):
            seen.update(kwargs, args=args)

    monkeypatch.setattr(module, "AsyncInferenceClient", Recorder)
    client = stack.client(journal_path=tmp_path / "journal.sqlite3", max_workers=4)
    assert isinstance(client, Recorder) and seen["args"] == ()
    assert seen["s3_input_path"] == f"s3://{stack.input_bucket}/inputs/"
    assert seen["endpoint_urls"] == stack.endpoint_urls
    assert seen["journal_path"] == tmp_path / "journal.sqlite3" and seen["max_workers"] == 4
    credentials = seen["session"].get_credentials()
    assert (credentials.access_key, seen["session"].region_name) == (stack.env["AWS_ACCESS_KEY_ID"], stack.region)


def read_until(stream, marker: str, timeout: float = 60) -> list[str]:
    lines: list[str] = []
    done = threading.Event()

    def reader():
        for line in stream:
            lines.append(line.rstrip("\n"))
            if marker in line:
                break
        done.set()

    threading.Thread(target=reader, daemon=True).start()
    assert done.wait(timeout), f"never saw {marker!r}: {lines}"
    return lines


def test_cli_local_prints_exports_serves_and_stops_on_ctrl_c():
    proc = subprocess.Popen([sys.executable, "-m", "sm_async_nb.cli", "local", "--endpoint", "cli-ep",
                             "--concurrency", "1"], stdout=subprocess.PIPE, text=True, env=clean_env())
    try:
        lines = read_until(proc.stdout, "press Ctrl-C")
        exports = dict(re.match(r"export (\w+)=(\S+)$", line).groups() for line in lines if line.startswith("export "))
        assert exports["AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME"].startswith("http://127.0.0.1:")
        assert "invoke-endpoint-async --endpoint-name cli-ep" in "\n".join(lines)
        runtime_port = int(exports["AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME"].rsplit(":", 1)[1])
        assert {c.pid for c in listening([runtime_port])} == {proc.pid}  # in the foreground: this process
        got = run_script({**clean_env(), **exports}, """
            s3, rt = boto3.client("s3"), boto3.client("sagemaker-runtime")
            a = rt.invoke_endpoint_async(EndpointName="cli-ep", Body=ARGS.encode(), ContentType="text/csv",
                                         Accept="text/csv")
            emit(wait_for_object(s3, a["OutputLocation"], a["FailureLocation"])[1])
        """, IRIS_CSV)
        assert got.startswith("setosa,")
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 0
    assert "local stack stopped" in proc.stdout.read()
    proc.stdout.close()


def test_cli_help_lists_the_local_command():
    from sm_async_nb.cli import build_parser

    text = build_parser().format_help()
    assert "local" in text
    args = build_parser().parse_args(["local", "--fault-rate", "0.1", "--latency-ms", "20", "--sns",
                                      "--time-scale", "60", "--runtime-port", "0"])
    assert (args.fault_rate, args.latency_ms, args.sns, args.time_scale) == (0.1, 20.0, True, 60.0)


AWS_CLI = os.environ.get("SM_ASYNC_NB_AWS_CLI") or shutil.which("aws")


@pytest.mark.skipif(AWS_CLI is None, reason="the AWS CLI is not installed (.ci/run installs it)")
def test_aws_cli_invoke_endpoint_async(stack, unique):
    s3 = stack.boto3_client("s3")
    key = f"inputs/{unique}.csv"
    s3.put_object(Bucket=stack.input_bucket, Key=key, Body=IRIS_CSV.encode())
    done = subprocess.run([AWS_CLI, "sagemaker-runtime", "invoke-endpoint-async", "--endpoint-name", "local-async",
                           "--input-location", f"s3://{stack.input_bucket}/{key}", "--content-type", "text/csv",
                           "--accept", "text/csv", "--inference-id", f"{unique}-cli", "--output", "json"],
                          env=client_env(stack), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["InferenceId"] == f"{unique}-cli"
    assert answer["OutputLocation"] == f"{stack.output_path}{unique}-cli.out"
    assert stack.wait_until_idle(20)  # the engine writes the output before the request leaves its queue
    obj = s3.get_object(Bucket=stack.input_bucket, Key=answer["OutputLocation"].split("/", 3)[3])
    assert obj["ContentType"] == "text/csv" and obj["Body"].read().startswith(b"setosa,")


def test_a_stopped_stack_gives_the_process_its_streams_and_logging_back():
    # In a process of its own: the module's other stacks would rightly keep the capture installed.
    # A model given as a Python object runs in this process (served to the engine's child), so what
    # it prints is captured here while the stack runs, and only then.
    code = textwrap.dedent("""
        import logging, sys
        from sm_async_nb import LocalStack
        before = (sys.stdout, sys.stderr, list(logging.getLogger().handlers))
        with LocalStack() as running:
            assert (sys.stdout, sys.stderr) == before[:2]  # the engine's child captures its own model's lines
        with LocalStack(model=lambda body, content_type: body) as running:
            assert type(sys.stdout).__name__ == "_Router"  # the model's prints are captured
        assert (sys.stdout, sys.stderr, list(logging.getLogger().handlers)) == before
        print("restored")
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "restored", done.stderr[-2000:]
