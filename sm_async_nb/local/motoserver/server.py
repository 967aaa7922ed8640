"""moto's server on a thread of the engine's process, behind the latency/fault middleware.

moto keeps its state in module globals, so the process that serves moto must host nothing that
uses moto itself (a ``mock_aws`` in the same process would share and reset the stack's state):
that is why ``sma.LocalStack`` runs its engine in a child process by default (``placement.py``).
In that process moto's server, the runtime and the worker share the backends, which is what lets
the worker write them directly (``backends.py``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any
from xml.sax.saxutils import escape

from ..service.faults import Fault, FaultMiddleware, Faults
from ..settings import http_url

S3_FAULTS = (
    Fault(500, "InternalError", "We encountered an internal error. Please try again."),
    Fault(503, "SlowDown", "Please reduce your request rate."),
    Fault(503, "ServiceUnavailable", "Service is unable to handle request."),
)


def signing_service(environ: dict[str, Any]) -> str | None:
    """The SigV4 service name of a request (header or presigned query), e.g. 's3', 'sns'."""
    auth = environ.get("HTTP_AUTHORIZATION", "")
    scope = ""
    if "Credential=" in auth:
        scope = auth.split("Credential=", 1)[1].split(",", 1)[0]
    elif "X-Amz-Credential=" in environ.get("QUERY_STRING", ""):
        from urllib.parse import parse_qs

        scope = parse_qs(environ["QUERY_STRING"]).get("X-Amz-Credential", [""])[0]
    parts = scope.split("/")
    return parts[3].lower() if len(parts) == 5 else None


def classify_s3(environ: dict[str, Any]) -> tuple[Fault, ...]:
    """S3 object and bucket requests are data plane; every other service is never faulted."""
    path = environ.get("PATH_INFO", "")
    if signing_service(environ) == "s3" and not path.startswith("/v20180820/"):
        return S3_FAULTS
    return ()


def render_s3(fault: Fault, environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes]:
    body = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{}</Code><Message>{}</Message>"
            "<Resource>{}</Resource><RequestId>sm-async-nb-fault</RequestId></Error>").format(
        fault.code, escape(fault.message), escape(environ.get("PATH_INFO", "")))
    reason = {500: "Internal Server Error", 503: "Service Unavailable"}.get(fault.status, "Error")
    return f"{fault.status} {reason}", [("Content-Type", "application/xml")], body.encode()


def _prewarm() -> None:
    """Import the backends the stack uses now, not on the first request."""
    import importlib

    for service in ("s3", "sagemaker", "sns", "sqs", "sts", "cloudwatch", "applicationautoscaling", "logs"):
        try:
            importlib.import_module(f"moto.{service}.responses")
        except Exception:  # pragma: no cover - a missing backend shows on first use anyway
            pass


def _cache_backend_names() -> None:
    """moto's dispatcher lists its package directory (~170 stat calls) on every request to match
    the Host header; the list cannot change while the server runs, so read it once. Cuts moto's
    CPU per S3 request by about a third (benchmarks/, scenarios a and d)."""
    from moto import backends

    names = tuple(backends.list_of_moto_modules())
    backends.list_of_moto_modules = lambda: names


def build_app(faults: Faults, wrap: Callable[[Any], Any] | None = None) -> Any:
    """moto's WSGI app (in ``wrap``, e.g. the stack's SageMaker routes) behind the latency/fault
    middleware."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    _cache_backend_names()
    moto_app = DomainDispatcherApplication(create_backend_app)
    return FaultMiddleware(wrap(moto_app) if wrap else moto_app, faults, classify_s3, render_s3)


def make_moto_server(host: str, port: int, app: Any) -> Any:
    """A threaded werkzeug server for ``app`` with moto's request handler (werkzeug's before moto
    5.2, which has none of its own), keep-alive and quiet."""
    from moto.moto_server import werkzeug_app
    from werkzeug.serving import WSGIRequestHandler, make_server

    from ..service.keepalive import KeepAliveMixin

    base: type[WSGIRequestHandler] = getattr(werkzeug_app, "MotoRequestHandler", WSGIRequestHandler)

    class Handler(KeepAliveMixin, base):  # type: ignore[valid-type,misc]
        """moto's header handling, with keep-alive connections."""

    server = make_server(host, port, app, threaded=True, request_handler=Handler)
    server.daemon_threads = True  # type: ignore[attr-defined]  # ThreadedWSGIServer has it
    server.connections = set()  # type: ignore[attr-defined]
    return server


class MotoServer:
    """moto's server on a thread of this process (the engine's; see the module docstring)."""

    def __init__(self, faults: Faults, host: str = "127.0.0.1", port: int = 0,
                 wrap: Callable[[Any], Any] | None = None):
        self.host, self.port, self.faults, self.wrap = host, port, faults, wrap
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return http_url(self.host, self.port)

    def start(self) -> None:
        self._server = make_moto_server(self.host, self.port, build_app(self.faults, self.wrap))
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="moto-server", daemon=True)
        self._thread.start()
        _prewarm()

    def stop(self, timeout: float = 10.0) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        from ..service.keepalive import close_connections

        server.shutdown()
        close_connections(server)
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout)
