"""moto's server in a child process, behind the latency/fault middleware.

Why a child process: moto keeps its state in module globals, so a moto server thread would share
(and be reset by) any ``mock_aws`` active in the same process, e.g. in the user's tests; and its
request handling would compete with the notebook kernel for the GIL. The child binds the
requested loopback address on a free port, reports the port on stdout, and exits as soon as its
stdin reaches EOF — which also happens when the parent dies, so it can never outlive the kernel.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from ..service.faults import CONTROL_PATH, INTERNAL_MARKER, Fault, FaultMiddleware, Faults, is_internal
from ..settings import http_url

READY = "SM_ASYNC_NB_MOTO_READY"

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


class _ControlApp:
    """Answers the stack's fault control requests; passes everything else through."""

    def __init__(self, app: Any, faults: Faults):
        self.app, self.faults = app, faults

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        if environ.get("PATH_INFO") == CONTROL_PATH and is_internal(environ):
            if environ.get("REQUEST_METHOD") == "POST":
                length = int(environ.get("CONTENT_LENGTH") or 0)
                settings = json.loads(environ["wsgi.input"].read(length) or b"{}")
                self.faults.configure(**settings)
            body = json.dumps(self.faults.snapshot()).encode()
            start_response("200 OK", [("Content-Type", "application/json"),
                                      ("Content-Length", str(len(body)))])
            return [body]
        return self.app(environ, start_response)


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


def build_app(faults: Faults) -> Any:
    """moto's WSGI app behind the latency/fault middleware and the fault control path."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    _cache_backend_names()
    moto_app = DomainDispatcherApplication(create_backend_app)
    return _ControlApp(FaultMiddleware(moto_app, faults, classify_s3, render_s3), faults)


def make_moto_server(host: str, port: int, app: Any) -> Any:
    """A threaded werkzeug server for ``app`` with moto's request handler, keep-alive and quiet."""
    from moto.moto_server.werkzeug_app import MotoRequestHandler
    from werkzeug.serving import make_server

    from ..service.keepalive import KeepAliveMixin

    class Handler(KeepAliveMixin, MotoRequestHandler):
        """moto's header handling, with keep-alive connections."""

    server = make_server(host, port, app, threaded=True, request_handler=Handler)
    server.daemon_threads = True  # type: ignore[attr-defined]  # ThreadedWSGIServer has it
    server.connections = set()  # type: ignore[attr-defined]
    return server


def serve(host: str, port: int, latency_ms: float, fault_rate: float, seed: int | None) -> None:
    """Child entry point: serve until stdin closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when we stop
    server = make_moto_server(host, port, build_app(Faults(latency_ms, fault_rate, seed)))
    thread = threading.Thread(target=server.serve_forever, name="moto-server", daemon=True)
    thread.start()
    threading.Thread(target=_prewarm, name="moto-prewarm", daemon=True).start()
    out = sys.stdout
    sys.stdout = sys.stderr  # moto sometimes prints; keep the handshake channel clean
    out.write(f"{READY} {server.server_address[1]}\n")
    out.flush()
    try:
        sys.stdin.buffer.read()  # returns at EOF: parent closed the pipe or died
    finally:
        server.socket.close()  # stop listening at once; open keep-alive threads die with us
        sys.stderr.flush()
        os._exit(0)


class InProcessMoto:
    """moto served from a thread of this process (only for a process that hosts nothing else,
    such as the detached stack server: see the module docstring for why not in a kernel).
    Same interface as :class:`MotoProcess`."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, latency_ms: float = 0,
                 fault_rate: float = 0.0, seed: int | None = None):
        self.host, self.port, self.faults = host, port, Faults(latency_ms, fault_rate, seed)
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return http_url(self.host, self.port)

    def start(self) -> None:
        self._server = make_moto_server(self.host, self.port, build_app(self.faults))
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="moto-server", daemon=True)
        self._thread.start()
        _prewarm()

    def control(self, **settings: Any) -> dict[str, Any]:
        if settings:
            self.faults.configure(**settings)
        return self.faults.snapshot()

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

    @property
    def pid(self) -> int | None:
        return os.getpid() if self._server is not None else None


class MotoProcess:
    """Parent-side handle on the moto child."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, latency_ms: float = 0,
                 fault_rate: float = 0.0, seed: int | None = None, startup_timeout: float = 60.0):
        self.host, self.port = host, port
        self._args = [str(latency_ms), str(fault_rate), "" if seed is None else str(seed)]
        self._timeout = startup_timeout
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return http_url(self.host, self.port)

    def start(self) -> None:
        cmd = [sys.executable, "-m", "sm_async_nb.local.motoserver.server", self.host, str(self.port), *self._args]
        root = str(Path(__file__).resolve().parents[3])  # the folder holding the sm_async_nb package
        path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)
        env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONPATH=path)
        self.process = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
        line = self._read_handshake()
        self.port = int(line.split()[1])

    def _read_handshake(self) -> str:
        assert self.process is not None and self.process.stdout is not None
        stdout = self.process.stdout
        result: list[str] = []
        reader = threading.Thread(target=lambda: result.append(stdout.readline().decode()), daemon=True)
        reader.start()
        reader.join(self._timeout)
        if not result or not result[0].startswith(READY):
            self.stop()
            got = result[0].strip() if result else "nothing"
            raise RuntimeError(f"the moto server child did not start (it said {got!r}); "
                               "check that `pip install \"sm_async_nb[local]\"` succeeded")
        self.process.stdout.close()
        return result[0]

    def control(self, **settings: Any) -> dict[str, Any]:
        """Read (no arguments) or change the child's latency/fault settings; returns a snapshot."""
        data = json.dumps(settings).encode() if settings else None
        request = urllib.request.Request(self.url + CONTROL_PATH, data=data,
                                         headers={"User-Agent": INTERNAL_MARKER})
        no_proxy = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback only
        with no_proxy.open(request, timeout=10) as answer:
            return json.loads(answer.read())

    def stop(self, timeout: float = 10.0) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        try:
            if process.stdin:
                process.stdin.close()
            process.wait(timeout)
        except (subprocess.TimeoutExpired, OSError):
            process.terminate()
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        finally:
            for stream in (process.stdin, process.stdout):
                if stream and not stream.closed:
                    stream.close()

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="moto server child of sm_async_nb's LocalStack")
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("latency_ms", type=float)
    parser.add_argument("fault_rate", type=float)
    parser.add_argument("seed", nargs="?", default="")
    ns = parser.parse_args()
    serve(ns.host, ns.port, ns.latency_ms, ns.fault_rate, int(ns.seed) if ns.seed else None)
