"""Shared fixtures: an isolated home, dummy AWS credentials, moto (in-process, or one server over HTTP),
clients on top of them, the shared local stack, free ports, and the one kernel harness (``kernels``).
Helpers a folder's tests share live in its conftest.py or in a module named for them (``panelkit``,
``endpointkit``, ``stackhelp``, ``labkit``); no test module imports another.

Tests live in tiers, one folder each, and every test gets its folder's marker, so
``python -m pytest -m unit`` runs the fast tier alone: ``unit`` (pure code, moto's in-process
mock, widgets without a kernel), ``stack`` (the local stack over HTTP), ``kernel`` (real
ipykernels), ``browser`` (JupyterLab in Chromium) and ``reliability`` (hostile inputs, faults,
crashes; any of the above).
"""

from __future__ import annotations

import os
import queue
import socket
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

TIERS = ("unit", "stack", "kernel", "browser", "reliability")
TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent


def pytest_collection_modifyitems(config, items):
    for item in items:
        path = Path(str(item.fspath)).resolve()
        if TESTS in path.parents:
            tier = path.relative_to(TESTS).parts[0]
            if tier not in TIERS:
                raise pytest.UsageError(f"{path} is not in a test tier folder ({', '.join(TIERS)})")
            item.add_marker(tier)


AWS_VARS = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN",
            "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE")


@pytest.fixture(autouse=True)
def isolated_env(tmp_path_factory, monkeypatch):
    """No test reads the developer's AWS config or writes to their home."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("SM_ASYNC_NB_HOME", str(home / ".sm-async-nb"))
    for name in AWS_VARS + tuple(k for k in os.environ if k.startswith(("AWS_ENDPOINT_URL", "SM_ASYNC_NB_"))
                                 and k != "SM_ASYNC_NB_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(home / "aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(home / "aws-credentials"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))  # the detached stack's state file
    return home


@pytest.fixture(autouse=True, scope="session")
def no_detached_stack_outlives_the_tests(tmp_path_factory):
    """A detached local stack lives until its idle timeout (8 h): stop every one this session's
    tests started (their state files sit under this session's temp dir), whatever the test did."""
    yield
    import psutil

    base = str(tmp_path_factory.getbasetemp())
    mine = []
    for process in psutil.process_iter(["cmdline"]):
        cmdline = process.info.get("cmdline") or []
        if "sm_async_nb.local.detached.daemon" in cmdline and any(arg.startswith(base) for arg in cmdline):
            mine.append(process)
    for process in mine:
        process.terminate()
    _, alive = psutil.wait_procs(mine, timeout=10)
    for process in alive:
        process.kill()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def free_port() -> Callable[[], int]:
    """``free_port()``: a TCP port on 127.0.0.1 nothing listens on now, for a server a test starts by
    port number (prefer port 0 where the server can say which port it took)."""
    return _free_port


@pytest.fixture(scope="session")
def _moto_server_url():
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def moto_server(_moto_server_url):
    """The URL of the session's moto server (a thread of this process on 127.0.0.1), reset for this test:
    the one way tests reach moto over HTTP, as kernels and other processes must. Its state is moto's
    module-global backends, so a test may also reach them directly."""
    reset = urllib.request.Request(f"{_moto_server_url}/moto-api/reset", method="POST")
    urllib.request.urlopen(reset, timeout=10).close()
    return _moto_server_url


@pytest.fixture
def moto_aws():
    """moto's in-process mock with the input bucket and the endpoints ("ep", "my-endpoint") most tests use."""
    from moto import mock_aws
    from motokit import moto_endpoint

    with mock_aws():
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="input-bucket")
        for name in ("ep", "my-endpoint"):  # submissions check that their endpoint exists
            moto_endpoint(name)
        yield


@pytest.fixture
def client(moto_aws, tmp_path):
    from sm_async_nb import AsyncInferenceClient

    with AsyncInferenceClient("s3://input-bucket/payloads/", journal_path=tmp_path / "journal.sqlite3",
                              max_workers=4) as c:
        yield c


@pytest.fixture
def stage_row():
    """``stage_row(journal, inference_id, **columns)``: set columns of one journal row the way no journal
    verb would, to stage a test's situation (a finish ten days ago, an output location where nothing
    will appear, a row of another AWS target). It writes through its own SQLite connection, as another
    process would, so the journal's own verbs stay the only writers of the code under test."""
    import contextlib
    import sqlite3

    from sm_async_nb.journal import schema

    def stage(journal, inference_id: str, **columns) -> None:
        sets = ", ".join(f"{name} = ?" for name in columns)
        values = [schema.encode(name, value) for name, value in columns.items()]
        with contextlib.closing(sqlite3.connect(journal.path)) as db, db:
            changed = db.execute(f"UPDATE invocations SET {sets} WHERE inference_id = ?", [*values, inference_id])
            assert changed.rowcount == 1, f"no journal row {inference_id!r} to stage"

    return stage


@pytest.fixture
def deny():
    """``deny(client, service, operation, code)``: every ``operation`` of ``service`` through ``client``'s AWS
    clients is answered with an error response (access denied by default), as IAM would answer."""
    from botocore.awsrequest import AWSResponse

    def refuse_all(client, service: str, operation: str, code: str = "AccessDeniedException") -> None:
        boto = client.aws.get(service)
        event = f"before-call.{boto.meta.service_model.service_id.hyphenize()}.{operation}"

        def refuse(**_):
            return AWSResponse("https://iam.example", 403, {}, None), {
                "Error": {"Code": code, "Message": f"User is not authorized to perform: {service}:{operation}"},
                "ResponseMetadata": {"HTTPStatusCode": 403}}

        boto.meta.events.register(event, refuse)

    return refuse_all


@pytest.fixture
def list_keys():
    """Every key under a prefix, through the ambient boto3 configuration."""

    def keys(bucket: str, prefix: str = "") -> list[str]:
        s3 = boto3.client("s3", region_name="us-east-1")
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return [o["Key"] for page in pages for o in page.get("Contents", [])]

    return keys


@pytest.fixture(scope="session")
def stack():
    """One shared local stack for the session: iris model, concurrency 2, SNS topics."""
    from sm_async_nb.local import LocalStack

    with LocalStack(concurrency=2, sns=True) as running:
        yield running


@pytest.fixture
def unique():
    """A fresh name prefix per test (endpoints and ids must not collide on the shared stack)."""
    import time

    return f"t{time.time_ns() % 10**12}"


@pytest.fixture
def stack_client(stack, tmp_path):
    """A client of the shared stack with its own journal."""
    with stack.client(journal_path=tmp_path / "journal.sqlite3") as c:
        yield c


@dataclass
class Cell:
    """What one execute request sent back: its iopub messages, its stdout, the text a reader sees
    (streams and the text/plain of displays and results) and its error's content (None if it ran)."""

    messages: list[dict]
    stdout: str
    text: str
    error: dict | None

    @classmethod
    def of(cls, messages: list[dict]) -> Cell:
        stdout, text, error = [], [], None
        for msg in messages:
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream":
                text.append(content["text"])
                if content["name"] == "stdout":
                    stdout.append(content["text"])
            elif kind in ("execute_result", "display_data"):
                text.append(content["data"].get("text/plain", ""))
            elif kind == "error":
                error = content
        return cls(messages, "".join(stdout), "".join(text), error)


class Kernel:
    """A real ipykernel driven through jupyter_client, the one harness of the kernel tests: run code and
    read what it sent, send code and read its messages later, ask for completions; ``manager`` interrupts,
    restarts and kills it."""

    def __init__(self, env: dict, cwd: str, kernel_name: str = "python3", spec_manager: Any = None):
        from jupyter_client.manager import KernelManager

        extra = {} if spec_manager is None else {"kernel_spec_manager": spec_manager}
        self.manager = KernelManager(kernel_name=kernel_name, **extra)
        self.manager.start_kernel(env=env, cwd=cwd)
        self.client = self.manager.client()
        self.client.start_channels()
        try:
            self.client.wait_for_ready(timeout=60)
        except RuntimeError:
            self.shutdown()
            raise

    def execute(self, code: str, timeout: float = 120, allow_errors: bool = False) -> Cell:
        """Run ``code`` and return what it sent; an error raised in the kernel fails the test unless
        ``allow_errors``."""
        return self.collect(self.execute_nowait(code), timeout, allow_errors)

    def run(self, code: str, timeout: float = 120) -> str:
        """Run ``code``; its text (streams and displays). An error raised in the kernel fails the test."""
        return self.execute(code, timeout).text

    def execute_nowait(self, code: str) -> str:
        """Send ``code``; returns the request's id for :meth:`read` and :meth:`collect`."""
        return self.client.execute(code)

    def read(self, msg_id: str, until: Callable[[dict], bool], timeout: float = 120) -> list[dict]:
        """The iopub messages of request ``msg_id`` up to and including the first for which ``until``
        holds (messages of other requests, such as a background thread's, are dropped)."""
        deadline = time.monotonic() + timeout
        messages = []
        while True:
            try:
                msg = self.client.get_iopub_msg(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"the kernel sent nothing awaited within {timeout:.0f} s; "
                                     f"got {[m['msg_type'] for m in messages]}") from None
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            messages.append(msg)
            if until(msg):
                return messages

    def collect(self, msg_id: str, timeout: float = 120, allow_errors: bool = False) -> Cell:
        """What request ``msg_id`` sends until the kernel is idle again (and its reply)."""
        cell = Cell.of(self.read(msg_id, lambda m: m["msg_type"] == "status"
                                 and m["content"]["execution_state"] == "idle", timeout))
        self._reply(msg_id, timeout)
        if cell.error is not None and not allow_errors:
            raise AssertionError(f"kernel raised {cell.error['ename']}: {cell.error['evalue']}\n{cell.text}")
        return cell

    def complete(self, code: str, cursor: int | None = None, timeout: float = 30) -> dict:
        """The kernel's ``complete_reply`` content for ``code`` (the cursor at its end by default), as
        JupyterLab asks for it."""
        reply = self._reply(self.client.complete(code, len(code) if cursor is None else cursor), timeout)
        assert reply["status"] == "ok", reply
        return reply

    def _reply(self, msg_id: str, timeout: float) -> dict:
        while True:
            reply = self.client.get_shell_msg(timeout=timeout)
            if reply["parent_header"].get("msg_id") == msg_id:
                return reply["content"]

    @property
    def pid(self) -> int:
        return self.manager.provisioner.process.pid

    def shutdown(self) -> None:
        self.client.stop_channels()
        if self.manager.is_alive():
            self.manager.shutdown_kernel(now=True)


@pytest.fixture
def kernels(tmp_path):
    """``kernels(extra_env=None, spec=None)``: start a kernel in ``tmp_path`` with this process's
    environment (the isolated home, no developer Jupyter or IPython settings) plus ``extra_env``, importing
    this checkout's package; ``spec`` is a (kernel name, KernelSpecManager) pair, the installed python3 by
    default. Every kernel is shut down at the end."""
    started: list[Kernel] = []
    base = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "IPYTHON"))}
    base["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))

    def start(extra_env: dict | None = None, spec: tuple[str, Any] | None = None) -> Kernel:
        name, spec_manager = spec or ("python3", None)
        kernel = Kernel({**base, **(extra_env or {})}, str(tmp_path), name, spec_manager)
        started.append(kernel)
        return kernel

    yield start
    for kernel in started:
        kernel.shutdown()


@pytest.fixture
def magic_shell():
    """``magic_shell(client)``: an IPython shell with ``%load_ext sm_async_nb`` whose session uses
    ``client`` (the extension is unloaded at teardown)."""
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    shells = []

    def make(client):
        config = Config()
        config.HistoryManager.enabled = False
        shell = InteractiveShell(config=config)
        shell.run_line_magic("load_ext", "sm_async_nb")
        shell.magics_manager.registry["SageMakerAsyncMagics"].session._client = client
        shells.append(shell)
        return shell

    yield make
    for shell in shells:
        shell.run_line_magic("unload_ext", "sm_async_nb")
