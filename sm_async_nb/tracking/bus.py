"""A tiny in-process publish/subscribe for status changes: the panel and waiters listen, the
tracker speaks (after releasing its locks, so a listener may call back into the tracker)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..records import InvocationRecord, Status

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StatusChange:
    inference_id: str
    old: Status
    new: Status
    record: InvocationRecord


Listener = Callable[[Sequence[StatusChange]], None]


class StatusBus:
    """Listeners get each refresh's changes as one list; a failing listener is logged and never
    stops the others. ``publish`` holds no lock while listeners run."""

    def __init__(self) -> None:
        self._listeners: list[Listener] = []
        self._lock = threading.Lock()
        self._changed = threading.Condition()
        self._generation = 0

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Add a listener; returns the function that removes it."""
        with self._lock:
            self._listeners.append(listener)

        def unsubscribe() -> None:
            with self._lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return unsubscribe

    def publish(self, changes: Sequence[StatusChange]) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(changes)
            except Exception:  # a broken view must not stop tracking
                log.exception("a status listener failed (%r); the others still run", listener)
        with self._changed:
            self._generation += 1
            self._changed.notify_all()

    def wait(self, timeout: float) -> bool:
        """Block until the next publish (or timeout); True if something was published."""
        with self._changed:
            seen = self._generation
            self._changed.wait_for(lambda: self._generation != seen, timeout)
            return self._generation != seen

    @property
    def listener_count(self) -> int:
        with self._lock:
            return len(self._listeners)
