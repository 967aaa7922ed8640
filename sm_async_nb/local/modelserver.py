"""A model given as a Python object, served from this process with the container contract.

A stack whose engine runs in another process (a child, the detached server) cannot call a Python
callable, module or adapter object of this one: such a model is served here on a loopback port
as a serving container is — ``GET /ping`` (200 once loaded), ``POST /invocations`` given the
request's ``Content-Type``, ``Accept`` and ``X-Amzn-SageMaker-Custom-Attributes``, answering
with the model's body and content type — and the engine uses it as a container model. The
model therefore still runs in this process, as it would in-process: it may share objects (an
Event, a counter) with the code that made the stack.

A model error answers its status (a ``ModelInvocationError``'s, else 500) with
``"Type: message"`` as the body, so the failure object reads as it would in-process. What the
model printed or logged during the call (and its traceback) travels back in the
:data:`LOG_HEADER` header, which the engine's container adapter prints into the model's
CloudWatch Logs stream.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
from typing import Any

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from .service.hosting import LOG_HEADER, ModelInvocationError, describe
from .service.keepalive import KeepAliveHandler, close_connections
from .settings import http_url

log = logging.getLogger(__name__)


class ModelServer:
    """Serves one model adapter on ``host`` (loopback), on a thread of this process."""

    def __init__(self, adapter: Any, host: str = "127.0.0.1"):
        from .service import modellogs

        self.adapter = adapter
        self.name = describe(adapter)
        self._loaded = threading.Event()
        self._server = make_server(host, 0, self._app, threaded=True, request_handler=KeepAliveHandler)
        self._server.connections = set()  # type: ignore[attr-defined]
        self.url = http_url(host, self._server.server_address[1])
        self._thread: threading.Thread | None = None
        self._modellogs = modellogs

    def start(self) -> str:
        """Load the model and serve it; returns its URL.

        Raises:
            Exception: whatever loading the model raised (nothing is left listening).
        """
        try:
            self.adapter.load()
        except BaseException:
            self._server.server_close()
            raise
        self._loaded.set()
        self._modellogs.install()
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="sm-async-nb-model-server", daemon=True)
        self._thread.start()
        return self.url

    def stop(self) -> None:
        if self._thread is None:
            return
        self._server.shutdown()
        close_connections(self._server)
        self._server.server_close()
        self._thread.join()
        self._thread = None
        self.adapter.close()
        self._modellogs.uninstall()

    def _app(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        if request.path == "/ping" and request.method == "GET":
            response = Response("", status=200 if self._loaded.is_set() else 503)
        elif request.path == "/invocations" and request.method == "POST":
            response = self._invoke(request)
        else:
            response = Response("not found: this model serves GET /ping and POST /invocations", status=404)
        return response(environ, start_response)

    def _invoke(self, request: Request) -> Response:
        headers = request.headers
        lines: list[str] = []
        try:
            with self._modellogs.capture() as lines:
                body, content_type = self.adapter.invoke(
                    request.get_data(), headers.get("Content-Type"), headers.get("Accept"),
                    headers.get("X-Amzn-SageMaker-Custom-Attributes"))
            response = Response(body, status=200, content_type=content_type)
        except ModelInvocationError as exc:
            response = Response(exc.message, status=exc.status, content_type="text/plain")
        except Exception as exc:  # the model's own error: the worker writes it into the failure object
            lines += self._modellogs.error_lines(exc)
            response = Response(f"{type(exc).__name__}: {exc}", status=500, content_type="text/plain")
        if lines:
            response.headers[LOG_HEADER] = base64.b64encode(json.dumps(lines).encode()).decode("ascii")
        return response
