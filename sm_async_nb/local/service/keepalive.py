"""A werkzeug request handler that keeps HTTP/1.1 connections open between requests.

Why: werkzeug's development server answers every request with ``Connection: close`` (its
``run_wsgi`` cannot tell where a request body ends, so it reads whatever is left on the socket)
— so every botocore call to the stack paid a TCP connect, a new server thread and a 10 ms drain.
This handler reads exactly ``Content-Length`` request bytes (the rest of an unread body is
discarded before the next request), answers with a ``Content-Length`` and leaves the connection
open. A chunked request body falls back to werkzeug's own handling (and a closed connection).

Servers using it keep the set of open connections (``server.connections``) so stopping them can
close idle keep-alive sockets at once (see :func:`close_connections`).
"""

from __future__ import annotations

import contextlib
import io
import logging
import socket
from typing import Any

from werkzeug.serving import WSGIRequestHandler

log = logging.getLogger(__name__)


class _Body(io.RawIOBase):
    """The request body: at most ``length`` bytes of ``stream``."""

    def __init__(self, stream: Any, length: int):
        self.stream, self.left = stream, length

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.left <= 0:
            return 0
        data = self.stream.read(min(len(buffer), self.left))
        buffer[:len(data)] = data
        self.left -= len(data)
        return len(data)

    def drain(self) -> None:
        """Discard what the application did not read, so the next request starts where it should."""
        while self.left > 0:
            data = self.stream.read(min(self.left, 65536))
            if not data:
                break
            self.left -= len(data)


class KeepAliveMixin:
    """Put before a ``WSGIRequestHandler`` subclass; see the module docstring."""

    protocol_version = "HTTP/1.1"
    server: Any
    connection: Any
    headers: Any
    rfile: Any
    wfile: Any
    command: str
    close_connection: bool

    def setup(self) -> None:
        super().setup()  # type: ignore[misc]
        # Headers and body go out in one write, and small answers must not wait for the peer's
        # delayed ACK (Nagle): without this, every request on a kept-alive connection took 40 ms.
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        connections = getattr(self.server, "connections", None)
        if connections is not None:
            connections.add(self.connection)

    def finish(self) -> None:
        connections = getattr(self.server, "connections", None)
        if connections is not None:
            connections.discard(self.connection)
        super().finish()  # type: ignore[misc]

    def log_request(self, *args: Any, **kwargs: Any) -> None:  # one line per request is noise
        pass

    def run_wsgi(self) -> None:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.close_connection = True
            super().run_wsgi()  # type: ignore[misc]
            return
        # ``Expect: 100-continue`` was answered by http.server's parse_request (HTTP/1.1).
        environ = self.make_environ()  # type: ignore[attr-defined]
        body = _Body(self.rfile, int(self.headers.get("Content-Length") or 0))
        environ["wsgi.input"] = io.BufferedReader(body)
        answer: list[Any] = []

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            answer[:] = [status, headers]
            return lambda data: None  # the legacy write() callable: unused by our apps and moto's

        try:
            result = self.server.app(environ, start_response)
            try:
                payload = b"".join(result)
            finally:
                if hasattr(result, "close"):
                    result.close()
        except Exception:
            log.exception("request %s %s failed", self.command, environ.get("PATH_INFO"))
            answer, payload, self.close_connection = ["500 Internal Server Error", []], b"", True
        self._respond(str(answer[0]), answer[1], payload)
        body.drain()

    def _respond(self, status: str, headers: list[tuple[str, str]], payload: bytes) -> None:
        code = int(status[:3])
        self.send_response(code, status[4:])  # type: ignore[attr-defined]
        has_length = False
        for key, value in headers:
            lower = key.lower()
            if lower == "connection":
                continue
            has_length = has_length or lower == "content-length"
            self.send_header(key, value)  # type: ignore[attr-defined]
        bodyless = self.command == "HEAD" or code in (204, 304) or 100 <= code < 200
        if not has_length and not bodyless:
            self.send_header("Content-Length", str(len(payload)))  # type: ignore[attr-defined]
        if self.close_connection:
            self.send_header("Connection", "close")  # type: ignore[attr-defined]
        buffer = self._headers_buffer  # type: ignore[attr-defined]  # http.server's pending header lines
        buffer.append(b"\r\n")
        if not bodyless:
            buffer.append(payload)
        self.flush_headers()  # type: ignore[attr-defined]  # one write: headers, blank line, body


class KeepAliveHandler(KeepAliveMixin, WSGIRequestHandler):
    """werkzeug's handler with keep-alive (for the runtime server)."""


def close_connections(server: Any) -> None:
    """Shut down every open keep-alive connection of ``server`` (idle ones block in a read)."""
    for conn in list(getattr(server, "connections", ())):
        with contextlib.suppress(OSError):
            conn.shutdown(socket.SHUT_RDWR)
