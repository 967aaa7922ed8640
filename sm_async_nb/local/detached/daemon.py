"""The detached stack server: one process hosting moto, the async runtime and its worker.

``python -m sm_async_nb.local.detached.daemon STATE_FILE CONFIG_JSON`` (started by ``detached.start``, in a
session of its own so a kernel restart or Ctrl-C in a terminal does not reach it) runs a
:class:`~sm_async_nb.local.stack.LocalStack` with moto in this process and the worker writing
moto's backends directly (the lean emulator), writes the state file once it serves, and exits —
removing the state file — when asked to stop (control API or SIGTERM), after ``idle_timeout``
seconds without a request and with nothing queued or running, or when the state file no longer
names it.

The control API lives on the runtime port under ``/_sm_async_nb/``: POST JSON, header
``X-SM-Async-NB-Token`` carrying the random token kept in the 0600 state file. Operations:
``status``, ``add_endpoint``, ``records``, ``wait_idle``, ``stop``.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import secrets
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from ..settings import CONTROL_PREFIX, DEFAULT_ENDPOINT, DEFAULT_IDLE_TIMEOUT, SCALING_OPTIONS, stack_kwargs
from ..stack import LocalStack
from . import statefile

log = logging.getLogger(__name__)

TOKEN_HEADER = "HTTP_X_SM_ASYNC_NB_TOKEN"
CHECK_INTERVAL = 0.5

STACK_OPTIONS = ("model", "endpoint_name", "concurrency", "latency_ms", "fault_rate", "region", "delay", "sns",
                 "time_scale", "instance_count", "moto_port", "runtime_port", "seed", *SCALING_OPTIONS)
ENDPOINT_OPTIONS = ("model", "concurrency", "sns", "delay", "instance_count")
# One value for the whole stack:
SHARED_OPTIONS = ("latency_ms", "fault_rate", "region", "time_scale", "seed", *SCALING_OPTIONS)


class ControlApp:
    """WSGI app for the token-guarded control operations of one running stack."""

    def __init__(self, token: str, stop: threading.Event, config: dict[str, Any]):
        self.token, self.stop = token, stop
        self.stack: LocalStack | None = None
        self.last_call = time.monotonic()
        # The options each endpoint (and the stack) was made with, to tell a caller asking for others.
        self.settings: dict[str, dict[str, Any]] = {
            config.get("endpoint_name") or DEFAULT_ENDPOINT: {k: config.get(k) for k in ENDPOINT_OPTIONS}}
        self.shared = {k: config.get(k) for k in SHARED_OPTIONS}
        self.endpoints_changed: Callable[[list[str]], None] = lambda names: None

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        status, answer = "200 OK", None
        given = environ.get(TOKEN_HEADER, "")
        if not hmac.compare_digest(given.encode(), self.token.encode()):
            status, answer = "403 Forbidden", {"error": "wrong or missing control token"}
        elif environ.get("REQUEST_METHOD") != "POST" or self.stack is None:
            status, answer = "400 Bad Request", {"error": "POST a JSON object once the stack runs"}
        else:
            op = environ.get("PATH_INFO", "")[len(CONTROL_PREFIX):]
            try:
                length = int(environ.get("CONTENT_LENGTH") or 0)
                args = json.loads(environ["wsgi.input"].read(length) or b"{}")
                answer = self.dispatch(self.stack, op, args)
            except (ValueError, TypeError, KeyError, OSError, ImportError) as exc:
                status, answer = "400 Bad Request", {"error": f"{type(exc).__name__}: {exc}"}
        body = json.dumps(answer, default=str).encode()
        start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]

    def dispatch(self, stack: LocalStack, op: str, args: dict[str, Any]) -> dict[str, Any]:
        if op == "status":
            stats = stack.stats
            return {"pid": os.getpid(), "endpoints": list(stats["endpoints"]), "stats": stats,
                    "idle_s": time.monotonic() - last_activity(stack, self)}
        if op == "add_endpoint":
            self.last_call = time.monotonic()
            name = args.pop("name")
            shared = [k for k in SHARED_OPTIONS if args.get(k) is not None and args[k] != self.shared[k]]
            if name in stack.stats["endpoints"]:
                known = self.settings.get(name, {})
                return {"added": False, "name": name, "differs": shared + [
                    k for k in ENDPOINT_OPTIONS if args.get(k) not in (None, False) and args[k] != known.get(k)]}
            options = {k: args.get(k) for k in ENDPOINT_OPTIONS}
            stack.add_endpoint(name, **{k: v for k, v in options.items() if v is not None})
            self.settings[name] = options
            self.endpoints_changed(list(stack.stats["endpoints"]))
            return {"added": True, "name": name, "differs": shared}
        if op == "records":
            return {"records": stack.records(args.get("endpoint_name"))}
        if op == "wait_idle":
            return {"idle": stack.wait_until_idle(float(args.get("timeout", 30)))}
        if op == "stop":
            self.stop.set()
            return {"stopping": True}
        raise ValueError(f"unknown control operation {op!r}")


def last_activity(stack: LocalStack, control: ControlApp) -> float:
    """Monotonic time of the last request from outside on either port (or of the last add_endpoint)."""
    return max(stack.last_request, control.last_call)


def serve(path: Path, config: dict[str, Any]) -> int:
    """Run the stack until told to stop; returns the exit code."""
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda *_: stop.set())
    control = ControlApp(secrets.token_urlsafe(32), stop, config)
    idle_timeout = float(config.get("idle_timeout", DEFAULT_IDLE_TIMEOUT))
    stack = LocalStack(**stack_kwargs({k: config.get(k) for k in STACK_OPTIONS}),
                       moto_in_process=True, control_app=control)
    stack.start()
    control.stack = stack
    try:
        import psutil

        record = statefile.StackRecord(
            pid=os.getpid(), create_time=psutil.Process().create_time(), host=stack.host,
            moto_port=stack.ports["moto"], runtime_port=stack.ports["runtime"], token=control.token,
            region=stack.region, env=stack.env, endpoint_urls=stack.endpoint_urls, input_bucket=stack.input_bucket,
            output_path=stack.output_path, failure_path=stack.failure_path, endpoint_name=stack.endpoint_name,
            idle_timeout=idle_timeout, endpoints=[stack.endpoint_name])
        statefile.write(record, path)

        def endpoints_changed(names: list[str]) -> None:  # keep the state file's endpoint list current
            record.endpoints = names
            statefile.write(record, path)

        control.endpoints_changed = endpoints_changed
        log.info("local stack server %s serving; state in %s", os.getpid(), path)
        reason = _watch(stack, control, stop, path, idle_timeout)
        log.info("local stack server %s stopping: %s", os.getpid(), reason)
    finally:
        stack.stop()
        statefile.remove(path, pid=os.getpid())
    return 0


def _watch(stack: LocalStack, control: ControlApp, stop: threading.Event, path: Path, idle_timeout: float) -> str:
    """Block until a reason to stop; returns it."""
    while not stop.wait(CHECK_INTERVAL):
        if stack.busy():
            continue
        if time.monotonic() - last_activity(stack, control) >= idle_timeout:
            return f"no request for {idle_timeout:g} s"
        try:
            current = statefile.read(path)
        except statefile.StateFileError:
            current = None
        if current is None or current.pid != os.getpid():
            return "the state file no longer names this server"
    return "asked to stop"


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    path, config = Path(argv[0]), json.loads(argv[1])
    try:
        return serve(path, config)
    except Exception as exc:
        print(f"local stack server failed: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)  # noqa: T201
        return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
