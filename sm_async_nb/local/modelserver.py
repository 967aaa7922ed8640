"""Models given as Python objects, served from this process with the container contract.

A stack whose engine runs in another process (a child) cannot call a Python callable, module or
adapter object of this one: such a model is served here on a loopback port as a serving
container is, under a path of its own — ``GET .../ping``, ``POST .../invocations`` given the
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
    """Serves model adapters on ``host`` (loopback), on one thread of this process: each under a
    path of its own, ``/models/<n>``, which the engine takes as that model's container URL."""

    def __init__(self, host: str = "127.0.0.1"):
        from .service import modellogs

        self._models: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._server = make_server(host, 0, self._app, threaded=True, request_handler=KeepAliveHandler)
        self._server.connections = set()  # type: ignore[attr-defined]
        self.url = http_url(host, self._server.server_address[1])
        self._thread: threading.Thread | None = None
        self._modellogs = modellogs

    def add(self, adapter: Any) -> str:
        """Load ``adapter`` and serve it; returns its container URL.

        Raises:
            Exception: whatever loading the model raised (it is not served).
        """
        adapter.load()
        with self._lock:
            if self._thread is None:
                self._modellogs.install()
                self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.5},
                                                name="sm-async-nb-model-server", daemon=True)
                self._thread.start()
            key = str(len(self._models))
            self._models[key] = adapter
        log.info("serving model %s at %s/models/%s", describe(adapter), self.url, key)
        return f"{self.url}/models/{key}"

    def stop(self) -> None:
        """Stop serving (idempotent); a model call still running is abandoned on its daemon thread."""
        with self._lock:
            thread, self._thread = self._thread, None
            models, self._models = list(self._models.values()), {}
        if thread is not None:
            self._server.shutdown()
            close_connections(self._server)
            thread.join()
            self._modellogs.uninstall()
        self._server.server_close()
        for adapter in models:
            adapter.close()

    def _app(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        parts = request.path.strip("/").split("/")
        with self._lock:
            adapter = self._models.get(parts[1]) if len(parts) == 3 and parts[0] == "models" else None
        if adapter is not None and parts[2] == "ping" and request.method == "GET":
            response = Response("", status=200)
        elif adapter is not None and parts[2] == "invocations" and request.method == "POST":
            response = self._invoke(adapter, request)
        else:
            response = Response("not found: a model here serves GET /models/<n>/ping and POST /models/<n>/invocations",
                                status=404)
        return response(environ, start_response)

    def _invoke(self, adapter: Any, request: Request) -> Response:
        headers = request.headers
        lines: list[str] = []
        try:
            with self._modellogs.capture() as lines:
                body, content_type = adapter.invoke(
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
