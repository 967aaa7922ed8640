"""The local async runtime's HTTP server: a werkzeug ``routing.Map`` on a threaded server.

Why werkzeug: it is already required by moto's server, speaks HTTP/1.1 keep-alive (botocore
reuses connections) and handles ``Expect: 100-continue``. The server binds only the address the
stack was given (loopback by default) and, on :meth:`RuntimeServer.stop`, closes every open
keep-alive connection so no handler thread outlives it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from ..settings import CONTROL_PREFIX, http_url
from . import responses
from .faults import FaultMiddleware, Faults
from .keepalive import KeepAliveHandler, close_connections
from .models import Backend, RouterNotFound, ServiceError, UnsupportedOperation, UnsupportedRouterOperation
from .routing import Routing

log = logging.getLogger(__name__)

INVOKE_ASYNC, INVOKE_ROUTER_ASYNC = "invoke_async", "invoke_router_async"
DATA_PLANE = frozenset({INVOKE_ASYNC, INVOKE_ROUTER_ASYNC})  # the routes latency and faults apply to
URLS = Map([
    Rule("/endpoints/<endpoint_name>/async-invocations", endpoint=INVOKE_ASYNC, methods=["POST"],
         strict_slashes=False),
    Rule("/endpoints/<endpoint_name>/invocations", endpoint="invoke_sync", methods=["POST"], strict_slashes=False),
    Rule("/inference-routers/<router_name>/async-invocations", endpoint=INVOKE_ROUTER_ASYNC, methods=["POST"],
         strict_slashes=False),
    Rule("/inference-routers/<router_name>/invocations", endpoint="invoke_router_sync", methods=["POST"],
         strict_slashes=False),
    Rule("/ping", endpoint="ping", methods=["GET"]),
])


class RuntimeApp:
    """WSGI app for the runtime routes; state lives in the :class:`Backend`."""

    def __init__(self, backend: Backend, clock: Callable[[], float], routing: Routing | None = None):
        self.backend, self.clock, self.routing = backend, clock, routing
        self.handlers: dict[str, Callable[..., Response]] = {
            INVOKE_ASYNC: self.invoke_async, "invoke_sync": self.invoke_sync,
            INVOKE_ROUTER_ASYNC: self.invoke_router_async, "invoke_router_sync": self.invoke_router_sync,
            "ping": lambda request: Response("", status=200)}

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = Request(environ)
        try:
            response = self.dispatch(request)
        except ServiceError as exc:
            response = responses.service_error(exc)
        except Exception as exc:  # never let a bug become a dropped connection
            log.exception("local runtime request failed")
            response = responses.error_response(500, "InternalFailure", f"{type(exc).__name__}: {exc}")
        return response(environ, start_response)

    def dispatch(self, request: Request) -> Response:
        adapter = URLS.bind_to_environ(request.environ)
        try:
            name, args = adapter.match()
        except (NotFound, MethodNotAllowed):
            return responses.error_response(
                404, "UnknownOperationException",
                f"No operation {request.method} {request.path} on the local SageMaker async runtime; it "
                "serves POST /endpoints/{name}/async-invocations and /inference-routers/{name}/async-invocations.")
        return self.handlers[str(name)](request, **args)

    def invoke_async(self, request: Request, endpoint_name: str) -> Response:
        args = responses.parse_invoke(endpoint_name, request.headers, request.get_data())
        invocation = self.backend.submit(args, now_clock=self.clock(), now_wall=time.time())
        return responses.accepted(invocation.inference_id, invocation.output_location, invocation.failure_location)

    def invoke_sync(self, request: Request, endpoint_name: str) -> Response:
        raise UnsupportedOperation(endpoint_name)

    def invoke_router_async(self, request: Request, router_name: str) -> Response:
        target, args = responses.parse_router_invoke(router_name, request.headers, request.get_data())
        if self.routing is None:  # a runtime without routers (unit tests): none exists
            raise RouterNotFound(router_name, self.backend.account_id)
        invocation = self.routing.submit(router_name, target, args, now_clock=self.clock(), now_wall=time.time())
        return responses.accepted(invocation.inference_id, invocation.output_location, invocation.failure_location)

    def invoke_router_sync(self, request: Request, router_name: str) -> Response:
        raise UnsupportedRouterOperation(router_name)


def classify_runtime(environ: dict[str, Any]) -> tuple[Any, ...]:
    """Only async invokes (of an endpoint or an inference router) are data plane (faultable) on the runtime."""
    try:
        name, _ = URLS.bind_to_environ(environ).match()
    except Exception:
        return ()
    return responses.RUNTIME_FAULTS if name in DATA_PLANE else ()


class _Mount:
    """Sends paths under :data:`CONTROL_PREFIX` to the stack's control app, the rest to the runtime."""

    def __init__(self, runtime: Callable[..., Iterable[bytes]], control: Callable[..., Iterable[bytes]]):
        self.runtime, self.control = runtime, control

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        app = self.control if environ.get("PATH_INFO", "").startswith(CONTROL_PREFIX) else self.runtime
        return app(environ, start_response)


class RuntimeServer:
    """Serves a :class:`RuntimeApp` (behind latency/fault emulation) on ``host:port``."""

    def __init__(self, backend: Backend, faults: Faults, clock: Callable[[], float],
                 host: str = "127.0.0.1", port: int = 0, control: Callable[..., Iterable[bytes]] | None = None,
                 routing: Routing | None = None):
        self.app = RuntimeApp(backend, clock, routing)
        wsgi: Callable[..., Iterable[bytes]] = FaultMiddleware(self.app, faults, classify_runtime,
                                                               responses.render_fault)
        if control is not None:
            wsgi = _Mount(wsgi, control)
        self._server = make_server(host, port, wsgi, threaded=True, request_handler=KeepAliveHandler)
        self._server.connections = set()  # type: ignore[attr-defined]
        self.host, self.port = host, self._server.server_address[1]
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return http_url(self.host, self.port)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="sm-async-nb-runtime", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is None:
            return
        self._server.shutdown()
        close_connections(self._server)
        # Closes the listening socket. Handler threads are daemon threads (werkzeug's), so this joins none:
        # a client holding a connection or sending more requests cannot hold the stop up.
        self._server.server_close()
        self._thread.join()
        self._thread = None
