"""The local async runtime's HTTP server: a small route table on a werkzeug threaded server.

Why werkzeug: it is already required by moto's server, speaks HTTP/1.1 keep-alive (botocore
reuses connections) and handles ``Expect: 100-continue``. The server binds only the address the
stack was given (loopback by default) and, on :meth:`RuntimeServer.stop`, closes every open
keep-alive connection so no handler thread outlives it.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from . import wire
from .backend import Backend
from .faults import FaultMiddleware, Faults

_INVOKE_ASYNC = re.compile(r"^/endpoints/([^/]*)/async-invocations/?$")
_INVOKE_SYNC = re.compile(r"^/endpoints/([^/]*)/invocations/?$")


class RuntimeApp:
    """WSGI app for the runtime routes; state lives in the :class:`Backend`."""

    def __init__(self, backend: Backend, clock: Callable[[], float]):
        self.backend, self.clock = backend, clock
        self.routes: list[tuple[str, re.Pattern[str], Callable[..., Response]]] = [
            ("POST", _INVOKE_ASYNC, self.invoke_async),
            ("POST", _INVOKE_SYNC, self.invoke_sync),
            ("GET", re.compile(r"^/ping$"), lambda request: Response("", status=200)),
        ]

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Any:
        request = Request(environ)
        try:
            response = self.dispatch(request)
        except wire.WireError as exc:
            response = exc.response()
        except Exception as exc:  # never let a bug become a dropped connection
            response = wire.error_response(500, "InternalFailure", f"{type(exc).__name__}: {exc}")
        return response(environ, start_response)

    def dispatch(self, request: Request) -> Response:
        path = request.path
        for method, pattern, handler in self.routes:
            match = pattern.match(path)
            if match and request.method == method:
                return handler(request, *(unquote(group) for group in match.groups()))
        return wire.error_response(404, "UnknownOperationException",
                                   f"No operation {request.method} {path} on the local SageMaker "
                                   "async runtime; it serves POST /endpoints/{name}/async-invocations.")

    def invoke_async(self, request: Request, endpoint_name: str) -> Response:
        args = wire.parse_invoke(endpoint_name, request.headers, request.get_data())
        endpoint = self.backend.endpoint(endpoint_name)
        if endpoint is None:
            raise wire.endpoint_not_found(endpoint_name, self.backend.account_id)
        if not endpoint.asynchronous:
            raise wire.endpoint_not_async(endpoint_name, self.backend.account_id, endpoint.config_name)
        invocation, _ = self.backend.submit(args, now_clock=self.clock(), now_wall=time.time())
        return wire.accepted(invocation.inference_id, invocation.output_location, invocation.failure_location)

    def invoke_sync(self, request: Request, endpoint_name: str) -> Response:
        raise wire.WireError(400, "ValidationError",
                             f"The local stack serves asynchronous inference only; call "
                             f"InvokeEndpointAsync on endpoint {endpoint_name} instead of InvokeEndpoint.")


def classify_runtime(environ: dict[str, Any]) -> tuple:
    """Only async invokes are data plane (faultable) on the runtime."""
    if environ.get("REQUEST_METHOD") == "POST" and _INVOKE_ASYNC.match(environ.get("PATH_INFO", "")):
        return wire.RUNTIME_FAULTS
    return ()


class _Handler(WSGIRequestHandler):
    """Quiet, and registers its connection so stop() can close idle keep-alive sockets."""

    def setup(self) -> None:
        super().setup()
        self.server.connections.add(self.connection)  # type: ignore[attr-defined]

    def finish(self) -> None:
        self.server.connections.discard(self.connection)  # type: ignore[attr-defined]
        super().finish()

    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass


class RuntimeServer:
    """Serves a :class:`RuntimeApp` (behind latency/fault emulation) on ``host:port``."""

    def __init__(self, backend: Backend, faults: Faults, clock: Callable[[], float],
                 host: str = "127.0.0.1", port: int = 0):
        self.app = RuntimeApp(backend, clock)
        wsgi = FaultMiddleware(self.app, faults, classify_runtime, wire.render_fault)
        self._server = make_server(host, port, wsgi, threaded=True, request_handler=_Handler)
        self._server.connections = set()  # type: ignore[attr-defined]
        self.host, self.port = host, self._server.server_address[1]
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> None:
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="sm-async-nb-runtime", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is None:
            return
        self._server.shutdown()
        for conn in list(self._server.connections):  # type: ignore[attr-defined]
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._server.server_close()  # joins the (now unblocked) handler threads
        self._thread.join()
        self._thread = None
