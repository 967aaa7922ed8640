"""The model's log lines into CloudWatch Logs, as SageMaker's containers send them (SPEC §10).

While a model call runs on its thread, what that thread writes to ``sys.stdout``/``sys.stderr``
and the log records it emits are collected (other threads write where they always did); if the
call raised, its traceback is added. The lines go to group ``/aws/sagemaker/Endpoints/{name}``,
stream ``AllTraffic/{instance-id}``, each carrying the inference id, through the stack's own
boto3 ``logs`` client, so any AWS client (``filter_log_events``, ``aws logs``) reads them back.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from typing import Any

from ...contract.names import log_group

log = logging.getLogger(__name__)

_install_lock = threading.Lock()
_buffers: dict[int, list[str]] = {}  # thread id -> lines of the model call running on it


class _Router:
    """A stream proxy: writes from a capturing thread are collected, the rest pass through."""

    def __init__(self, stream: Any):
        self._stream = stream

    def write(self, text: str) -> int:
        buffer = _buffers.get(threading.get_ident())
        if buffer is None:
            return int(self._stream.write(text) or 0)
        buffer.append(text)
        return len(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


class _Handler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        buffer = _buffers.get(threading.get_ident())
        if buffer is not None:
            buffer.append(self.format(record) + "\n")


_users = 0  # running stacks that capture: the streams are wrapped while there is one


def install() -> None:
    """Wrap ``sys.stdout``/``sys.stderr`` and add the root log handler (once, for every stack)."""
    global _users
    with _install_lock:
        _users += 1
    _wrap()


def _wrap() -> None:
    with _install_lock:
        if not _users:
            return
        if not isinstance(sys.stdout, _Router):
            sys.stdout = _Router(sys.stdout)
        if not isinstance(sys.stderr, _Router):
            sys.stderr = _Router(sys.stderr)
        root = logging.getLogger()
        if not any(isinstance(h, _Handler) for h in root.handlers):
            handler = _Handler()
            handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
            root.addHandler(handler)


def uninstall() -> None:
    """Undo :func:`install` when the last stack that needed it stops (a kernel gets its own streams
    back: a stack in a notebook must not change the process for good)."""
    global _users
    with _install_lock:
        _users = max(0, _users - 1)
        if _users:
            return
        for name in ("stdout", "stderr"):
            stream = getattr(sys, name)
            if isinstance(stream, _Router):
                setattr(sys, name, stream._stream)
        root = logging.getLogger()
        for handler in [h for h in root.handlers if isinstance(h, _Handler)]:
            root.removeHandler(handler)


@contextlib.contextmanager
def capture() -> Iterator[list[str]]:
    """Collect what the current thread prints or logs while the block runs (as lines); between
    :func:`install` and :func:`uninstall`."""
    _wrap()  # again: whoever swapped sys.stdout since (pytest, a kernel) gets wrapped too
    chunks: list[str] = []
    _buffers[threading.get_ident()] = chunks
    lines: list[str] = []
    try:
        yield lines
    finally:
        _buffers.pop(threading.get_ident(), None)
        lines[:0] = [line for line in "".join(chunks).splitlines() if line.strip()]


def error_lines(error: BaseException) -> list[str]:
    """The traceback of what the model raised, one line each."""
    text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    return [line for line in text.splitlines() if line.strip()]


def group_name(endpoint_name: str) -> str:
    return log_group(endpoint_name)


def instance_id(endpoint_name: str, index: int = 0) -> str:
    return f"i-{hashlib.sha1(endpoint_name.encode()).hexdigest()[:12]}{index:05d}"


class CloudWatchLogs:
    """Sends model lines with the stack's boto3 ``logs`` client (groups and streams made once)."""

    def __init__(self, client: Any):
        self.client = client
        self._made: set[str] = set()
        self._lock = threading.Lock()
        self._open = True
        install()

    def close(self) -> None:
        """The stack stopped: stop capturing (idempotent)."""
        if self._open:
            self._open = False
            uninstall()

    def _ensure(self, group: str, stream: str) -> None:
        with self._lock:
            for kind, key in (("group", group), ("stream", f"{group}\0{stream}")):
                if key in self._made:
                    continue
                try:
                    if kind == "group":
                        self.client.create_log_group(logGroupName=group)
                    else:
                        self.client.create_log_stream(logGroupName=group, logStreamName=stream)
                except self.client.exceptions.ResourceAlreadyExistsException:
                    pass
                self._made.add(key)

    def send(self, endpoint_name: str, inference_id: str, lines: list[str], instance: int = 0) -> None:
        """Put ``lines`` (each prefixed with the inference id) into the endpoint's log stream."""
        if not lines:
            return
        group, stream = group_name(endpoint_name), f"AllTraffic/{instance_id(endpoint_name, instance)}"
        try:
            self._ensure(group, stream)
            now = int(time.time() * 1000)
            self.client.put_log_events(logGroupName=group, logStreamName=stream, logEvents=[
                {"timestamp": now, "message": f"[{inference_id}] {line}"} for line in lines])
        except Exception:
            log.exception("could not send the model's log lines for %s", inference_id)
