"""The stack's one control namespace (moto's ``/moto-api/`` is the model): ``/_sm_async_nb/<op>``
on the runtime port, POST JSON, guarded by a random token in the ``X-SM-Async-NB-Token`` header.

Operations (:data:`OPERATIONS`): ``status``, ``stats``, ``faults`` (set latency/fault rate/seed),
``add_endpoint``, ``map_images`` (add ``image_map`` entries), ``records``, ``wait_idle``, ``stop``.
Every handle drives its stack through them: over HTTP (:class:`HttpControl`) when the stack runs
in another process, by a direct call (:class:`DirectControl`) when it runs in this one — the same
operations and answers either way.
There is no other way in: a request without the token gets 403 and changes nothing.
"""

from __future__ import annotations

import hmac
import json
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from .config import EndpointSpec
from .settings import CONTROL_PREFIX

TOKEN_HEADER = "X-SM-Async-NB-Token"
_TOKEN_ENVIRON = "HTTP_" + TOKEN_HEADER.upper().replace("-", "_")
NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never through a proxy


class Operations(Protocol):
    """What the control namespace drives (the engine)."""

    def status(self) -> dict[str, Any]: ...

    def stats(self) -> dict[str, Any]: ...

    def configure_faults(self, latency_ms: float | None = None, fault_rate: float | None = None,
                         seed: int | None = None) -> None: ...

    def add_endpoint(self, spec: EndpointSpec, exist_ok: bool = False) -> dict[str, Any]: ...

    def map_images(self, image_map: Any) -> dict[str, Any]: ...

    def records(self, endpoint_name: str | None = None) -> list[dict[str, Any]]: ...

    def wait_until_idle(self, timeout: float) -> bool: ...

    def request_stop(self) -> None: ...


def dispatch(ops: Operations, op: str, args: dict[str, Any]) -> dict[str, Any]:
    """Run one control operation; its answer is a JSON-able dict.

    Raises:
        ValueError: an unknown operation or a bad argument (its message is the answer's error).
    """
    handler = OPERATIONS.get(op)
    if handler is None:
        raise ValueError(f"unknown control operation {op!r}; known: {', '.join(OPERATIONS)}")
    return handler(ops, dict(args))


def _add_endpoint(ops: Operations, args: dict[str, Any]) -> dict[str, Any]:
    exist_ok = bool(args.pop("exist_ok", False))
    return ops.add_endpoint(EndpointSpec(**args), exist_ok=exist_ok)


def _faults(ops: Operations, args: dict[str, Any]) -> dict[str, Any]:
    ops.configure_faults(**args)
    return ops.stats()


def _wait_idle(ops: Operations, args: dict[str, Any]) -> dict[str, Any]:
    return {"idle": ops.wait_until_idle(float(args.get("timeout", 30.0)))}


def _stop(ops: Operations, args: dict[str, Any]) -> dict[str, Any]:
    ops.request_stop()
    return {"stopping": True}


OPERATIONS: dict[str, Callable[[Operations, dict[str, Any]], dict[str, Any]]] = {
    "status": lambda ops, args: ops.status(),
    "stats": lambda ops, args: ops.stats(),
    "faults": _faults,
    "add_endpoint": _add_endpoint,
    "map_images": lambda ops, args: ops.map_images(args.get("image_map") or ()),
    "records": lambda ops, args: {"records": ops.records(args.get("endpoint_name"))},
    "wait_idle": _wait_idle,
    "stop": _stop,
}


class ControlApp:
    """WSGI app for the control namespace of one engine (mounted under :data:`CONTROL_PREFIX`)."""

    def __init__(self, ops: Operations, token: str):
        self.ops, self.token = ops, token

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        status, answer = "200 OK", None
        given = environ.get(_TOKEN_ENVIRON, "")
        if not hmac.compare_digest(given.encode(), self.token.encode()):
            status, answer = "403 Forbidden", {"error": "wrong or missing control token"}
        elif environ.get("REQUEST_METHOD") != "POST":
            status, answer = "405 Method Not Allowed", {"error": "POST a JSON object"}
        else:
            op = environ.get("PATH_INFO", "")[len(CONTROL_PREFIX):]
            try:
                length = int(environ.get("CONTENT_LENGTH") or 0)
                args = json.loads(environ["wsgi.input"].read(length) or b"{}")
                if not isinstance(args, dict):
                    raise ValueError("the request body must be a JSON object")
                answer = dispatch(self.ops, op, args)
            except (ValueError, TypeError, KeyError, OSError, ImportError, RuntimeError) as exc:
                status, answer = "400 Bad Request", {"error": f"{type(exc).__name__}: {exc}"}
        body = json.dumps(answer, default=str).encode()
        start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]


class Control(Protocol):
    """How a handle reaches its stack's control namespace."""

    def call(self, op: str, *, http_timeout: float = 60.0, **args: Any) -> dict[str, Any]: ...


class DirectControl:
    """The control namespace of an engine in this process, called directly (a model may be a
    Python object here)."""

    def __init__(self, ops: Operations):
        self.ops = ops

    def call(self, op: str, *, http_timeout: float = 60.0, **args: Any) -> dict[str, Any]:
        return dispatch(self.ops, op, args)


class HttpControl:
    """The control namespace of an engine in another process, over loopback HTTP with its token."""

    def __init__(self, url: str, token: str):
        self.url, self.token = url, token

    def call(self, op: str, *, http_timeout: float = 60.0, **args: Any) -> dict[str, Any]:
        """One operation; its JSON answer.

        Raises:
            ValueError: the stack refused it (its message).
            OSError: the stack could not be reached.
        """
        request = urllib.request.Request(self.url + CONTROL_PREFIX + op, data=json.dumps(args).encode(),
                                         method="POST", headers={TOKEN_HEADER: self.token,
                                                                 "Content-Type": "application/json"})
        try:
            with NO_PROXY.open(request, timeout=http_timeout) as answer:
                return dict(json.loads(answer.read()))
        except urllib.error.HTTPError as exc:
            try:
                message = json.loads(exc.read()).get("error", str(exc))
            except ValueError:
                message = str(exc)
            raise ValueError(message) from None
