"""The per-user detached local stack, seen from a kernel or a shell: start or reuse it, add
endpoints to it, read its status, stop it. The server itself is ``daemon.py``; what ties the two
together is the state file (``statefile.py``) and the token-guarded control API."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..settings import CONTROL_PREFIX, DEFAULT_IDLE_TIMEOUT, DUMMY_ACCESS_KEY_ID, DUMMY_SECRET_ACCESS_KEY
from . import statefile
from .statefile import StackRecord, StateFileError

if TYPE_CHECKING:
    from ...client import AsyncInferenceClient

log = logging.getLogger(__name__)

START_TIMEOUT = 90.0
NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # HTTP(S)_PROXY is ignored


class DetachedStack:
    """A handle on the running detached stack (what the state file says, verified)."""

    def __init__(self, record: StackRecord, path: Path, started: bool = False):
        self.record, self.path, self.started = record, path, started
        self.endpoint_name = record.endpoint_name
        self.region, self.input_bucket = record.region, record.input_bucket
        self.output_path, self.failure_path = record.output_path, record.failure_path
        self.endpoint_urls: dict[str, str] = dict(record.endpoint_urls)
        self.env: dict[str, str] = dict(record.env)
        self.differs: list[str] = []  # options asked for that the running stack has other values of

    @property
    def pid(self) -> int:
        return self.record.pid

    def call(self, op: str, *, http_timeout: float = 60.0, **args: Any) -> dict[str, Any]:
        """One control operation; returns its JSON answer.

        Raises:
            ValueError: the server refused it (its message).
            OSError: the server could not be reached.
        """
        request = urllib.request.Request(self.record.control_url + CONTROL_PREFIX + op,
                                         data=json.dumps(args).encode(), method="POST",
                                         headers={"X-SM-Async-NB-Token": self.record.token,
                                                  "Content-Type": "application/json"})
        try:  # never through an HTTP proxy: the token is for this loopback server only
            with NO_PROXY.open(request, timeout=http_timeout) as answer:
                return dict(json.loads(answer.read()))
        except urllib.error.HTTPError as exc:
            try:
                message = json.loads(exc.read()).get("error", str(exc))
            except ValueError:
                message = str(exc)
            raise ValueError(message) from None

    def add_endpoint(self, name: str, **options: Any) -> bool:
        """Create endpoint ``name`` unless it exists; True when it was added now. Options the
        running stack or existing endpoint has other values of are listed in :attr:`differs`."""
        clean = {k: v for k, v in options.items() if v is not None}
        if isinstance(clean.get("model"), str):
            clean["model"] = absolute_model(clean["model"])
        answer = self.call("add_endpoint", name=name, **clean)
        self.differs = list(answer.get("differs", []))
        return bool(answer["added"])

    def status(self) -> dict[str, Any]:
        """pid, endpoints, stats and idle seconds of the running server.

        Raises:
            OSError: the server could not be reached.
        """
        return self.call("status")

    def records(self, endpoint_name: str | None = None) -> list[dict[str, Any]]:
        """The runtime's invocation records, as ``LocalStack.records``."""
        return list(self.call("records", endpoint_name=endpoint_name)["records"])

    def wait_until_idle(self, timeout: float = 30.0) -> bool:
        """True once nothing is queued or running, False after ``timeout`` seconds."""
        return bool(self.call("wait_idle", http_timeout=timeout + 10, timeout=timeout)["idle"])

    def stop(self, timeout: float = 30.0) -> None:
        """Ask the server to stop and wait until its process is gone."""
        import psutil

        try:
            self.call("stop", http_timeout=10)
        except (OSError, ValueError) as exc:
            log.info("the stop request failed (%s); terminating pid %s", exc, self.pid)
            if statefile.verify(self.record) is not None:  # that pid is no longer our server
                statefile.remove(self.path, pid=self.pid)
                return
            with contextlib.suppress(psutil.NoSuchProcess):
                psutil.Process(self.pid).terminate()
        try:
            psutil.Process(self.pid).wait(timeout)
        except psutil.NoSuchProcess:
            pass
        except psutil.TimeoutExpired:
            raise RuntimeError(f"the local stack server (pid {self.pid}) did not stop within {timeout:g} s; "
                               f"its log is {self.path.with_suffix('.log')}") from None
        statefile.remove(self.path, pid=self.pid)

    def session(self) -> Any:
        """A boto3.Session with the stack's dummy credentials and region."""
        import boto3

        return boto3.Session(aws_access_key_id=DUMMY_ACCESS_KEY_ID, aws_secret_access_key=DUMMY_SECRET_ACCESS_KEY,
                             region_name=self.region)

    def client(self, **kwargs: Any) -> AsyncInferenceClient:
        """An AsyncInferenceClient wired to this stack; keyword arguments are passed through."""
        from ...client import AsyncInferenceClient

        kwargs.setdefault("s3_input_path", f"s3://{self.input_bucket}/inputs/")
        return AsyncInferenceClient(session=self.session(), endpoint_urls=self.endpoint_urls, **kwargs)

    def boto3_client(self, service: str, **kwargs: Any) -> Any:
        """A plain boto3 client for ``service`` pointed at the stack."""
        return self.session().client(service, endpoint_url=self.endpoint_urls[service], **kwargs)

    def __repr__(self) -> str:
        return f"<DetachedStack pid={self.pid} runtime={self.endpoint_urls['sagemaker-runtime']}>"


@dataclass(frozen=True)
class Found:
    """What :func:`find` saw: the running stack, or why the state file was not used."""

    stack: DetachedStack | None
    stale: str | None = None


def absolute_model(model: str) -> str:
    """A model file relative to this process's directory, made absolute for the server."""
    if "://" in model:
        return model
    path = Path(model).expanduser()
    if not path.is_file():
        raise ValueError(f"model file {model} does not exist")
    return str(path.resolve())


def find(path: Path | None = None) -> Found:
    """The running detached stack, if the state file names a live one of ours.

    Raises:
        StateFileError: the state file is owned by someone else, a symlink or writable by others.
    """
    path = path or statefile.state_path()
    record = statefile.read(path)
    if record is None:
        return Found(None, "corrupt" if path.exists() else None)
    why = statefile.verify(record)
    if why is not None:
        return Found(None, why)
    return Found(DetachedStack(record, path))


def start(options: dict[str, Any], idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
          path: Path | None = None) -> DetachedStack:
    """Reuse the running stack (adding ``options['endpoint_name']`` if new) or start one.

    Raises:
        StateFileError: the state file cannot be trusted.
        RuntimeError: the server did not start (its last log lines say why).
        ValueError: a bad option or model.
    """
    path = path or statefile.state_path()
    options = {k: v for k, v in options.items() if v is not None}
    if isinstance(options.get("model"), str):
        options["model"] = absolute_model(options["model"])
    with statefile.locked(path):
        found = find(path)
        if found.stack is not None:
            name = options.get("endpoint_name") or found.stack.endpoint_name
            found.stack.add_endpoint(name, **{k: v for k, v in options.items() if k != "endpoint_name"})
            found.stack.endpoint_name = name
            return found.stack
        if found.stale:
            log.info("replacing the local stack's state file %s: %s", path, found.stale)
            statefile.remove(path)
        return _spawn(path, {**options, "idle_timeout": idle_timeout})


def _spawn(path: Path, config: dict[str, Any]) -> DetachedStack:
    root = str(Path(__file__).resolve().parents[3])  # the folder holding the sm_async_nb package
    env = dict(os.environ, PYTHONUNBUFFERED="1",
               PYTHONPATH=os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p))
    for name in [k for k in env if k.startswith("AWS_ENDPOINT_URL")]:
        env.pop(name)  # the server's own clients talk to itself, never to what the caller points at
    log_path = path.with_suffix(".log")
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as log_file:
        process = subprocess.Popen([sys.executable, "-m", statefile.DAEMON_MODULE, str(path), json.dumps(config)],
                                   stdin=subprocess.DEVNULL, stdout=log_file, stderr=log_file, env=env,
                                   start_new_session=True, cwd=str(path.parent))
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the local stack server exited ({process.returncode}): {_last_line(log_path)}")
        try:
            record = statefile.read(path)
        except StateFileError:
            record = None
        if record is not None and record.pid == process.pid and statefile.verify(record) is None:
            return DetachedStack(record, path, started=True)
        time.sleep(0.1)
    process.terminate()
    raise RuntimeError(f"the local stack server did not start within {START_TIMEOUT:g} s: {_last_line(log_path)}")


def _last_line(log_path: Path) -> str:
    lines = [line for line in log_path.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1] if lines else f"nothing in {log_path}"


def stop(path: Path | None = None) -> bool:
    """Stop the running detached stack; False when none was running.

    Raises:
        StateFileError: the state file cannot be trusted.
    """
    path = path or statefile.state_path()
    with statefile.locked(path):  # not while another kernel is starting or reattaching
        found = find(path)
        if found.stack is None:
            if found.stale:
                statefile.remove(path)
            return False
        found.stack.stop()
        return True
