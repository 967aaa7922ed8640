"""The per-user detached local stack, seen from a kernel or a shell: start or reuse it, find it,
stop it. The server itself is ``daemon.py``; what ties the two together is the state file
(``statefile.py``) and the token-guarded control namespace (``../control.py``).

:class:`Detached` is the ``detached`` placement (``../placement.py``): a handle it gives is an
ordinary :class:`~sm_async_nb.local.handle.StackHandle`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from ..config import StackConfig, absolute_model
from ..control import Control, HttpControl
from ..handle import StackHandle
from ..info import StackInfo
from ..settings import package_env
from . import statefile
from .statefile import StackRecord, StateFileError

log = logging.getLogger(__name__)

START_TIMEOUT = 90.0
EXIT_POLL_S = 0.1  # how often stop() looks whether the server has exited
__all__ = ["Detached", "StateFileError", "find", "start", "stop"]


class Detached:
    """The ``detached`` placement: the per-user server, started or reused under the state file's lock."""

    name, outlives_owner = "detached", True

    def __init__(self, path: Path | None = None, record: StackRecord | None = None):
        self.path, self.record = path, record
        self.started = False
        self.differs: list[str] = []

    def start(self, config: StackConfig) -> tuple[StackInfo, Control]:
        """Reuse the running stack (adding ``config``'s endpoint if new) or start one.

        Raises:
            StateFileError: the state file cannot be trusted.
            RuntimeError: the server did not start (its last log line says why).
            ValueError: a bad option or model; a model given as a Python object.
        """
        path = self.path = self.path or statefile.state_path()
        if config.model is not None:
            config = config.replace(model=self.export_model(config.model))
        with statefile.locked(path):
            found = find(path)
            if found.record is not None:
                self.record = found.record
                control = HttpControl(found.record.info.runtime_url, found.record.token)
                if config.image_map:  # mappings asked for are added to the running stack's
                    control.call("map_images", image_map=[list(pair) for pair in config.image_map])
                answer = control.call("add_endpoint", exist_ok=True, **config.endpoint().to_args())
                self.differs = config.differs(control.call("status")["config"]) + answer["differs"]
                return dataclasses.replace(found.record.info, endpoint_name=config.endpoint_name), control
            if found.stale:
                log.info("replacing the local stack's state file %s: %s", path, found.stale)
                statefile.remove(path)
            self.record = _spawn(path, config)
            self.started = True
            return self.record.info, HttpControl(self.record.info.runtime_url, self.record.token)

    def export_model(self, model: Any) -> Any:
        """A path made absolute or a URL: a detached stack outlives this process, so it cannot be
        given a Python object of it.

        Raises:
            ValueError: a Python object, or a model file that does not exist.
        """
        if model is not None and not isinstance(model, str) and not hasattr(model, "__fspath__"):
            raise ValueError("a detached local stack outlives this process, so its model must be a .py file, a "
                             "folder or a container URL, not a Python object")
        return absolute_model(model)

    def stop(self, timeout: float = 30.0) -> None:
        """Ask the server to stop and wait until its process is gone.

        Raises:
            RuntimeError: it did not stop within ``timeout`` seconds.
        """
        import psutil

        record, path = self.record, self.path or statefile.state_path()
        if record is None:
            return
        self.record = None
        try:
            HttpControl(record.info.runtime_url, record.token).call("stop", http_timeout=10)
        except (OSError, ValueError) as exc:
            log.info("the stop request failed (%s); terminating pid %s", exc, record.pid)
            if statefile.verify(record) is not None:  # that pid is no longer our server
                statefile.remove(path, pid=record.pid)
                return
            with contextlib.suppress(psutil.NoSuchProcess):
                psutil.Process(record.pid).terminate()
        if not _exited(record.pid, timeout):
            raise RuntimeError(f"the local stack server (pid {record.pid}) did not stop within {timeout:g} s; "
                               f"its log is {path.with_suffix('.log')}")
        statefile.remove(path, pid=record.pid)

    def release(self) -> None:
        """Stop using it; it keeps running for other kernels until stopped or idle."""
        self.record = None


def _exited(pid: int, timeout: float) -> bool:
    """Wait until process ``pid`` has exited (True), or ``timeout`` seconds pass (False).

    Why not ``psutil.Process.wait`` alone: the server is the child of the kernel (or shell) that
    started it, and once it exits it stays a zombie until that parent reaps it. For any other
    process — another kernel, ``sm-async-nb local stop``, the test runner — psutil's wait on a
    non-child polls until the pid is gone, which a zombie never is while its parent lives: stop
    then waited the whole timeout. A zombie has exited (its ports and files are closed), so it counts.
    """
    import psutil

    deadline = time.monotonic() + timeout
    try:
        process = psutil.Process(pid)
        while True:
            try:
                process.wait(min(EXIT_POLL_S, max(0.0, deadline - time.monotonic())))  # reaps it if ours
                return True
            except psutil.TimeoutExpired:
                if process.status() == psutil.STATUS_ZOMBIE:
                    return True
                if time.monotonic() >= deadline:
                    return False
    except psutil.NoSuchProcess:  # (ZombieProcess is a NoSuchProcess too)
        return True


def attach(record: StackRecord, path: Path) -> StackHandle:
    """A handle on the running detached stack ``record`` describes."""
    return StackHandle(record.info, HttpControl(record.info.runtime_url, record.token), Detached(path, record),
                       started=False)


class Found:
    """What :func:`find` saw: the running stack, or why the state file was not used."""

    def __init__(self, stack: StackHandle | None, stale: str | None = None, record: StackRecord | None = None):
        self.stack, self.stale, self.record = stack, stale, record


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
    return Found(attach(record, path), record=record)


def start(config: StackConfig, path: Path | None = None) -> StackHandle:
    """Reuse the running detached stack (adding ``config``'s endpoint if new) or start one.

    Raises:
        StateFileError: the state file cannot be trusted.
        RuntimeError: the server did not start (its last log line says why).
        ValueError: a bad option or model.
    """
    placement = Detached(path)
    info, control = placement.start(config)
    handle = StackHandle(info, control, placement, started=placement.started)
    handle.differs = placement.differs
    return handle


def _spawn(path: Path, config: StackConfig) -> StackRecord:
    log_path = path.with_suffix(".log")
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as log_file:
        process = subprocess.Popen([sys.executable, "-m", statefile.DAEMON_MODULE, str(path), config.to_json()],
                                   stdin=subprocess.DEVNULL, stdout=log_file, stderr=log_file, env=package_env(),
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
            _reap_when_done(process)
            return record
        time.sleep(0.1)
    process.terminate()
    _reap_when_done(process)
    raise RuntimeError(f"the local stack server did not start within {START_TIMEOUT:g} s: {_last_line(log_path)}")


def _reap_when_done(process: subprocess.Popen[bytes]) -> None:
    """Collect the server's exit status whenever it ends, so this process (it started the server, so
    it is its parent) does not keep a zombie of it for as long as it runs."""
    threading.Thread(target=process.wait, name=f"sm-async-nb-reap-{process.pid}", daemon=True).start()


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
