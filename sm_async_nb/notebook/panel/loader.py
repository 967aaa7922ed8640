"""Slow look-ups for the panel (output previews, log lines, endpoint status) on a worker thread
of their own, never on the kernel's main thread, with a small LRU cache of the answers.

``request(key, work)`` answers from the cache at once, or queues ``work()`` on the worker and
calls ``on_ready(key, answer)`` from there when it is done. Only the latest request matters
(``want``): queued work for a key nobody waits for any more is skipped. Errors become answers
through ``on_error``, so the view always has something to show.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from .background import Worker

log = logging.getLogger(__name__)

T = TypeVar("T")


class CachedLoader(Generic[T]):
    """A one-thread worker plus an LRU cache of ``size`` answers."""

    def __init__(self, name: str, on_ready: Callable[[Hashable, T], None],
                 on_error: Callable[[BaseException], T], *, size: int = 32):
        self._on_ready, self._on_error, self._size = on_ready, on_error, size
        self._cache: OrderedDict[Hashable, T] = OrderedDict()
        self._lock = threading.Lock()
        self._wanted: set[Hashable] = set()
        self._worker = Worker(name)
        self.loads = 0  # how many times work() ran (the cache's misses)

    def cached(self, key: Hashable) -> T | None:
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
            return None

    def want(self, *keys: Hashable) -> None:
        """The keys whose answers are still awaited; queued work for others is skipped."""
        with self._lock:
            self._wanted = set(keys)

    def request(self, key: Hashable, work: Callable[[], T]) -> T | None:
        """The cached answer now, or None after queueing ``work`` (``on_ready`` follows)."""
        found = self.cached(key)
        if found is not None:
            return found
        with self._lock:
            self._wanted.add(key)
        self._worker.submit(self._load, key, work)
        return None

    def _load(self, key: Hashable, work: Callable[[], T]) -> None:
        with self._lock:
            if key not in self._wanted:
                return
        found = self.cached(key)
        if found is None:
            try:
                self.loads += 1
                found = work()
            except Exception as exc:
                found = self._on_error(exc)
            else:
                with self._lock:
                    self._cache[key] = found
                    while len(self._cache) > self._size:
                        self._cache.popitem(last=False)
        try:
            self._on_ready(key, found)
        except Exception:
            log.exception("the panel could not show a background answer")

    def wait_idle(self, timeout: float | None = 30) -> bool:
        return self._worker.wait_idle(timeout)

    def close(self) -> None:
        self._worker.close()
