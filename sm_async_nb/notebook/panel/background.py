"""The panel's slow actions (load, resubmit, refresh now) on a worker thread of their own, one at
a time, so a click never blocks the kernel and a second click while one runs is refused; and
``Worker``, the one-thread worker of the other background look-ups."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

log = logging.getLogger(__name__)


def wait_all(futures: Iterable[Future[Any]], timeout: float | None) -> bool:
    """Wait for each of ``futures`` (``timeout`` s each); True when all are done."""
    for future in futures:
        try:
            future.result(timeout)
        except Exception:
            if not future.done():
                return False
    return True


class Worker:
    """One worker thread and the futures it still runs: ``submit`` (False once closed),
    ``wait_idle``, ``close`` (queued work is dropped)."""

    def __init__(self, name: str):
        self._executor = ThreadPoolExecutor(1, thread_name_prefix=f"sm-async-nb-{name}")
        self._futures: list[Future[Any]] = []
        self._lock = threading.Lock()

    def submit(self, work: Callable[..., None], *args: Any) -> bool:
        with self._lock:
            self._futures = [f for f in self._futures if not f.done()]
            try:
                self._futures.append(self._executor.submit(work, *args))
            except RuntimeError:  # closed
                return False
        return True

    def wait_idle(self, timeout: float | None = 30) -> bool:
        with self._lock:
            futures = list(self._futures)
        return wait_all(futures, timeout)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


class BackgroundAction:
    """``run(work)`` calls ``work()`` (which returns the message to show) on the worker thread,
    then ``finish(message)``; ``busy(True/False)`` brackets it. Errors become messages through
    ``describe``."""

    def __init__(self, *, busy: Callable[[bool], None], finish: Callable[[str], None],
                 say: Callable[[str], None], describe: Callable[[BaseException], str]):
        self._busy, self._finish, self._say, self._describe = busy, finish, say, describe
        self._worker = ThreadPoolExecutor(1, thread_name_prefix="sm-async-nb-panel")
        self._current: Future[None] | None = None

    def run(self, busy_message: str, work: Callable[[], str]) -> None:
        if self._current is not None and not self._current.done():
            self._say("Still working on the previous action…")
            return
        self._say(busy_message)
        self._busy(True)
        self._current = self._worker.submit(self._perform, work)

    def _perform(self, work: Callable[[], str]) -> None:
        try:
            message = work()
        except Exception as exc:
            message = self._describe(exc)
        try:
            self._finish(message)
        except Exception as exc:
            log.exception("the panel could not show the result of an action")
            self._say(f"{message} (panel update failed: {type(exc).__name__}: {exc})")
        finally:
            self._busy(False)

    def wait_idle(self, timeout: float | None = 30) -> bool:
        """Wait for the running action; True if none is left."""
        return wait_all([] if self._current is None else [self._current], timeout)

    def close(self) -> None:
        self._worker.shutdown(wait=False, cancel_futures=True)
