"""Byte progress of long transfers (multipart uploads of large files): text in a terminal, a
widget in a notebook. The core only knows the :class:`ByteProgress` protocol; the notebook layer
registers its widget factory with :func:`set_factory` when the extension loads (the core never
imports ipywidgets)."""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable
from typing import Protocol, TextIO

log = logging.getLogger(__name__)

SHOW_ABOVE_BYTES = 8 * 1024 * 1024  # smaller transfers finish before a bar is worth drawing


class ByteProgress(Protocol):
    """Told how many more bytes were transferred (from any thread), then closed once."""

    def __call__(self, transferred: int) -> None: ...

    def close(self, ok: bool = True) -> None: ...


Factory = Callable[[str, int], ByteProgress]
_factory: Factory | None = None


def set_factory(factory: Factory | None) -> None:
    """Make progress displays with ``factory(what, total_bytes)`` (None: text)."""
    global _factory
    _factory = factory


def _size(count: float, unit: str = "bytes") -> str:
    if unit != "bytes":
        return f"{count:,.0f} {unit}"
    for unit in ("B", "KB", "MB", "GB"):
        if count < 1024 or unit == "GB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return ""


class TextProgress:
    """One line, rewritten at most five times a second: ``uploading x.bin: 120.0 MB / 1.0 GB (12%)``."""

    def __init__(self, what: str, total: int, stream: TextIO | None = None, unit: str = "bytes"):
        self.what, self.total, self.done, self.unit = what, max(1, total), 0, unit
        self._stream: TextIO = stream if stream is not None else sys.stderr
        self._lock = threading.Lock()
        self._shown = 0.0

    def __call__(self, transferred: int) -> None:
        with self._lock:
            self.done += transferred
            now = time.monotonic()
            if now - self._shown < 0.2 and self.done < self.total:
                return
            self._shown = now
            line = (f"\r{self.what}: {_size(self.done, self.unit)} / {_size(self.total, self.unit)} "
                    f"({100 * self.done // self.total}%)")
        self._stream.write(line)
        self._stream.flush()

    def close(self, ok: bool = True) -> None:
        self._stream.write(" done\n" if ok else " failed\n")
        self._stream.flush()


def make(what: str, total: int, unit: str = "bytes") -> ByteProgress | None:
    """A progress display for ``total`` bytes (or rows, ``unit="rows"``), or None when too small to show."""
    if unit == "bytes" and total < SHOW_ABOVE_BYTES:
        return None
    factory = _factory
    if factory is not None and unit == "bytes":
        try:
            return factory(what, total)
        except Exception:  # a display problem must never stop an upload
            log.exception("could not make a progress display; using text")
    return TextProgress(what, total, unit=unit)
