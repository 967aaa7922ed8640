"""The per-user detached local stack: `sm-async-nb local start|status|stop`, reuse, idle timeout,
and state files that must not be trusted (stale, corrupt, foreign, pointing at someone else's port)."""

from __future__ import annotations

import json
import os
import re
import socket
import stat
import subprocess
import sys

import psutil
import pytest
from stackhelp import IRIS_CSV, clean_env, run_script

from sm_async_nb.local.config import StackConfig


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A cache dir of this test's own; any stack left running is stopped afterwards."""
    from sm_async_nb.local.detached import handle as detached
    from sm_async_nb.local.detached import statefile

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    yield statefile.state_path()
    try:
        detached.stop()
    except statefile.StateFileError:
        pass


def cli(*args, check=True):
    done = subprocess.run([sys.executable, "-m", "sm_async_nb.cli", "local", *args], capture_output=True,
                          text=True, env=clean_env(), timeout=120)
    if check:
        assert done.returncode == 0, done.stderr
    return done


def exports(stdout: str) -> dict[str, str]:
    return dict(re.match(r"export (\w+)=(\S+)$", line).groups() for line in stdout.splitlines()
                if line.startswith("export "))


def alive(pid: int) -> bool:
    return psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE


def test_cli_start_returns_reuses_reports_and_stops(cache):
    first = cli("start", "--endpoint", "cli-ep", "--concurrency", "1")
    env = exports(first.stdout)
    assert env["AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME"].startswith("http://127.0.0.1:")
    assert "started" in first.stdout
    record = json.loads(cache.read_text())
    assert stat.S_IMODE(os.stat(cache).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(cache.parent).st_mode) == 0o700
    pid = record["info"]["pid"]
    assert alive(pid) and record["endpoints"] == ["cli-ep"]
    assert record["token"] not in first.stdout

    got = run_script({**clean_env(), **env}, """
        s3, rt = boto3.client("s3"), boto3.client("sagemaker-runtime")
        a = rt.invoke_endpoint_async(EndpointName="cli-ep", Body=ARGS.encode(), ContentType="text/csv", Accept="text/csv")
        emit(wait_for_object(s3, a["OutputLocation"], a["FailureLocation"])[1])
    """, IRIS_CSV)
    assert got.startswith("setosa,")

    again = cli("start", "--endpoint", "second-ep")
    assert "already running; reusing" in again.stdout and exports(again.stdout) == env
    assert json.loads(cache.read_text())["info"]["pid"] == pid
    assert json.loads(cache.read_text())["endpoints"] == ["cli-ep", "second-ep"]
    status = cli("status")
    assert f"pid {pid}" in status.stdout and "cli-ep, second-ep" in status.stdout

    assert "stopped" in cli("stop").stdout
    assert not alive(pid) and not cache.exists()
    assert cli("status", check=False).returncode == 1
    assert "no local stack is running" in cli("stop").stdout


def test_stack_stops_by_itself_after_the_idle_timeout(cache):
    from sm_async_nb.local.detached import handle as detached

    stack = detached.start(StackConfig(endpoint_name="idle-ep", idle_timeout=1.5))
    psutil.Process(stack.pid).wait(60)  # raises TimeoutExpired if it never stops
    assert not cache.exists()


def _fake_record(cache, **changes):
    from sm_async_nb.local.detached import statefile
    from sm_async_nb.local.info import StackInfo

    info = StackInfo(pid=os.getpid(), host="127.0.0.1", moto_port=1, runtime_port=1, region="us-east-1",
                     endpoint_name="local-async", input_bucket="b", output_path="s3://b/o/", failure_path="s3://b/f/")
    record = statefile.StackRecord(info=info, create_time=psutil.Process().create_time(), token="secret-token",
                                   idle_timeout=60.0)
    for key, value in changes.items():
        setattr(info if hasattr(info, key) else record, key, value)
    statefile.write(record, cache)
    return record


def _start_and_check_replaced(old_pid):
    from sm_async_nb.local.detached import handle as detached

    stack = detached.start(StackConfig(endpoint_name="fresh-ep"))
    assert stack.started and stack.pid != old_pid and alive(stack.pid)
    assert stack.status()["endpoints"] == ["fresh-ep"]


def test_a_state_file_naming_a_dead_pid_is_replaced(cache):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    _fake_record(cache, pid=dead.pid)
    _start_and_check_replaced(dead.pid)


def test_a_corrupt_state_file_is_replaced(cache):
    from sm_async_nb.local.detached import handle as detached

    cache.write_text("{not json")
    os.chmod(cache, 0o600)
    assert detached.find().stack is None and detached.find().stale == "corrupt"
    _start_and_check_replaced(None)


def test_a_port_now_held_by_another_program_is_never_sent_the_token(cache):
    """The record names a live pid that listens on its port, but it is not our server."""
    from sm_async_nb.local.detached import handle as detached

    squatter = socket.socket()
    squatter.bind(("127.0.0.1", 0))
    squatter.listen(5)
    squatter.setblocking(False)
    port = squatter.getsockname()[1]
    try:
        _fake_record(cache, moto_port=port, runtime_port=port)
        found = detached.find()
        assert found.stack is None and "not a local stack server" in found.stale
        _start_and_check_replaced(os.getpid())
        with pytest.raises(BlockingIOError):
            squatter.accept()  # nobody connected to the squatter's port
    finally:
        squatter.close()


def test_a_reused_pid_is_stale(cache):
    from sm_async_nb.local.detached import handle as detached

    _fake_record(cache, create_time=psutil.Process().create_time() - 3600)
    assert "another process" in detached.find().stale


@pytest.mark.parametrize("problem, message", [("owner", "belongs to another user"),
                                              ("mode", "can be written by others"),
                                              ("symlink", "not a regular file")])
def test_an_untrusted_state_file_is_a_one_line_error(cache, monkeypatch, capsys, problem, message):
    from sm_async_nb import cli as command
    from sm_async_nb.local.detached import handle as detached
    from sm_async_nb.local.detached import statefile

    _fake_record(cache)
    if problem == "owner":
        monkeypatch.setattr(os, "getuid", lambda: os.stat(cache).st_uid + 1)
    elif problem == "mode":
        os.chmod(cache, 0o666)
    else:
        target = cache.with_name("elsewhere.json")
        cache.rename(target)
        cache.symlink_to(target)
    with pytest.raises(statefile.StateFileError, match=message):
        detached.start(StackConfig())
    assert command.main(["local", "status"]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert cache.exists() or cache.is_symlink()  # left for the user to look at, not replaced


def test_reattaching_with_other_settings_says_what_is_kept(cache):
    from sm_async_nb.local.detached import handle as detached

    first = detached.start(StackConfig(endpoint_name="kept-ep", delay=0.1))
    again = detached.start(StackConfig(endpoint_name="kept-ep", delay=2.0, sns=True, time_scale=60))
    assert again.pid == first.pid and sorted(again.differs) == ["delay", "sns", "time_scale"]
    assert again.started is False and first.started is True
    same = detached.start(StackConfig(endpoint_name="kept-ep", delay=0.1))
    assert same.differs == []
    other = detached.start(StackConfig(endpoint_name="new-ep", delay=2.0))
    assert other.differs == [] and other.status()["endpoints"] == ["kept-ep", "new-ep"]


def test_cli_scaling_options_reach_the_detached_stack(cache):
    env = exports(cli("start", "--endpoint", "zero-ep", "--min-instances", "0", "--scale-out-seconds", "none",
                      "--metrics-period-seconds", "5").stdout)
    got = run_script({**clean_env(), **env}, """
        variant = boto3.client("sagemaker").describe_endpoint(EndpointName="zero-ep")["ProductionVariants"][0]
        aas = boto3.client("application-autoscaling")
        emit({"current": variant["CurrentInstanceCount"],
              "min": [t["MinCapacity"] for t in aas.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"]],
              "policies": aas.describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"]})
    """)
    assert got == {"current": 0, "min": [0], "policies": []}


def test_optional_seconds_and_durations_parse_or_say_why():
    from sm_async_nb.local.settings import optional_seconds, parse_duration

    assert optional_seconds("none") is None and optional_seconds("2.5") == 2.5
    assert parse_duration("30m") == 1800 and parse_duration("8h") == 28800 and parse_duration("90") == 90
    for bad in ("soon", "-1h", "0"):
        with pytest.raises(ValueError):
            parse_duration(bad)


def test_a_bad_model_is_a_one_line_error_for_the_magic_and_the_cli(cache, tmp_path, capsys):
    import sm_async_nb as sma
    from sm_async_nb import cli as command
    from sm_async_nb.config import SageMakerAsync
    from sm_async_nb.notebook.session import NotebookSession

    broken = tmp_path / "broken.py"
    broken.write_text("def model_fn(model_dir):\n    raise RuntimeError('weights missing')\n")
    session = NotebookSession(SageMakerAsync(journal_path=str(tmp_path / "journal.sqlite3")))
    try:
        with pytest.raises(sma.ValidationError, match="does not exist"):
            session.start_local(StackConfig(model=str(tmp_path / "nope.py")))
        with pytest.raises(sma.ValidationError, match="weights missing"):
            session.start_local(StackConfig(model=str(broken)))
    finally:
        session.close()
    assert command.main(["local", "start", "--model", str(broken)]) == 2
    err = capsys.readouterr().err
    assert "weights missing" in err and err.count("\n") == 1


def test_two_starts_at_the_same_moment_share_one_stack(cache):
    procs = [subprocess.Popen([sys.executable, "-m", "sm_async_nb.cli", "local", "start", "--endpoint", f"race-{i}"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=clean_env())
             for i in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err for _, err in outs]
    pids = {re.search(r"\(pid (\d+),", out).group(1) for out, _ in outs}
    assert len(pids) == 1
    assert sorted(json.loads(cache.read_text())["endpoints"]) == ["race-0", "race-1"]
    from sm_async_nb.local.detached import handle as detached

    assert sorted(detached.find().stack.status()["endpoints"]) == ["race-0", "race-1"]


def test_image_map_reaches_the_detached_stack_and_a_reattach_adds_to_it(cache):
    from stackhelp import start_container

    echo, url = start_container()
    other, other_url = start_container()
    try:
        env = exports(cli("start", "--endpoint", "mapped-ep", "--image-map", f"registry.local/echo:1={url}").stdout)
        cli("start", "--endpoint", "mapped-ep", "--image-map", f"registry.local/other={other_url}")  # reattaches
        got = run_script({**clean_env(), **env}, """
            sm, s3, rt = boto3.client("sagemaker"), boto3.client("s3"), boto3.client("sagemaker-runtime")
            bucket = os.environ["SM_ASYNC_NB_S3_INPUT_PATH"][len("s3://"):].split("/")[0]
            bodies = {}
            for name, image in (("echo", "registry.local/echo:1"), ("other", "registry.local/other:7")):
                sm.create_model(ModelName=name, ExecutionRoleArn="arn:aws:iam::123456789012:role/sm",
                                PrimaryContainer={"Image": image})
                sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[{"VariantName": "AllTraffic",
                    "ModelName": name, "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}],
                    AsyncInferenceConfig={"OutputConfig": {"S3OutputPath": f"s3://{bucket}/mapped/"}})
                sm.create_endpoint(EndpointName=name, EndpointConfigName=name)
                sm.get_waiter("endpoint_in_service").wait(EndpointName=name)
                a = rt.invoke_endpoint_async(EndpointName=name, Body=name.encode(), ContentType="text/plain")
                bodies[name] = json.loads(wait_for_object(s3, a["OutputLocation"])[1])["body"]
            emit(bodies)
        """)
        assert got == {"echo": "echo", "other": "other"}
    finally:
        for process in (echo, other):
            process.kill()
            process.wait()


OWNER = """
import json, os, signal, sys, time
import pandas as pd
from sm_async_nb.local.config import StackConfig
from sm_async_nb.local.detached import handle as detached

stack = detached.start(StackConfig(delay=0.2, concurrency=1))
client = stack.client()
job = client.submit_dataframe("local-async", pd.DataFrame([[5.1, 3.5, 1.4, 0.2]] * 200), rows_per_request=1,
                              max_pending=2, accept="text/csv", background=True)
while job.status_counts().get("COMPLETED", 0) < 2:  # the job invokes and the tracker has seen outputs
    time.sleep(0.05)
print(json.dumps({"pid": stack.pid}), flush=True)
sys.stdin.readline()  # the stack was stopped by another process
deadline = time.monotonic() + 60
while client.tracker.problem is None and time.monotonic() < deadline:
    time.sleep(0.1)
print(json.dumps({"problem": client.tracker.problem, "state": job.job_state.value, "counts": job.status_counts(),
                  "children": [c.pid for c in __import__("psutil").Process().children()]}), flush=True)
"""


def _owner(cache, script: str) -> tuple[subprocess.Popen, dict]:
    """A process (as a kernel would) that starts the detached stack and keeps running: the server is its child."""
    owner = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env={**clean_env(), "XDG_CACHE_HOME": os.environ[
                                 "XDG_CACHE_HOME"], "SM_ASYNC_NB_HOME": str(cache.parent / "home")})
    line = owner.stdout.readline()
    assert line, owner.communicate(timeout=30)[1][-3000:]
    return owner, json.loads(line)


def test_another_process_stops_the_stack_a_running_kernel_started_while_its_job_polls(cache):
    """The server is the child of the process that started it; it used to stay a zombie until that process
    reaped it, so a stop from anywhere else (another kernel, the CLI, a test's teardown) waited the whole
    30 s and raised. Now stop returns once the server exits; the owner reaps it and its job and tracker
    see the stack gone as one line, no traceback."""
    from sm_async_nb.local.detached import handle as detached

    owner, started = _owner(cache, OWNER)
    try:
        pid = started["pid"]
        assert psutil.Process(pid).ppid() == owner.pid
        assert detached.stop() is True  # raised "did not stop within 30 s" before
        assert not alive(pid) and not cache.exists()
        out, err = owner.communicate("stopped\n", timeout=90)
        seen = json.loads(out.splitlines()[-1])
        assert seen["problem"] and "\n" not in seen["problem"] and "still running" in seen["problem"], seen
        assert pid not in seen["children"]  # reaped by its parent: no zombie left in the kernel
        assert seen["state"] == "running" and seen["counts"].get("QUEUED", 0) > 0, seen  # held, nothing lost
        assert "Traceback" not in err, err[-3000:]
    finally:
        owner.kill()
        owner.wait()


def test_stop_does_not_wait_for_a_parent_that_never_reaps_the_server(cache):
    """A zombie has exited: stop counts it as stopped whoever its parent is (a stopped kernel here; a
    container's PID 1 that reaps nothing is the same)."""
    import signal

    from sm_async_nb.local.detached import handle as detached

    owner, started = _owner(cache, "import json, sys\nfrom sm_async_nb.local.config import StackConfig\n"
                                   "from sm_async_nb.local.detached import handle as detached\n"
                                   "stack = detached.start(StackConfig())\n"
                                   "print(json.dumps({'pid': stack.pid}), flush=True)\nsys.stdin.readline()\n")
    owner.send_signal(signal.SIGSTOP)  # its threads cannot reap the server now
    try:
        assert detached.stop() is True
        assert psutil.Process(started["pid"]).status() == psutil.STATUS_ZOMBIE
        assert not cache.exists()
    finally:
        owner.send_signal(signal.SIGCONT)
        owner.kill()
        owner.wait()
