"""The panel's slow actions (load, resubmit, refresh now) on a worker thread of their own, one at
a time, so a click never blocks the kernel and a second click while one runs is refused."""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

log = logging.getLogger(__name__)


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
        current = self._current
        if current is None:
            return True
        try:
            current.result(timeout)
        except Exception:
            return current.done()
        return True

    def close(self) -> None:
        self._worker.shutdown(wait=False, cancel_futures=True)
