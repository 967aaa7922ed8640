"""Done callbacks: ``fn`` runs once when what it watches is done, outside every lock: in the caller when it
is done already, else on the client's callback thread (``sm-async-nb-callbacks``), in the order they became
due. Never on the thread that noticed (the tracker's poller, the jobs thread): a callback that blocks — one
that waits for another batch, say — would stop the very polling it waits on. Checked on every publish of
the tracker's bus, so a callback costs one journal read per refresh while it waits, and nothing once it
ran."""

from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .bus import StatusBus, StatusChange

log = logging.getLogger(__name__)


@dataclass
class _Watch:
    done: Callable[[], bool]
    call: Callable[[], None]


class DoneWatch:
    """Callbacks waiting for something to be done; subscribed to the tracker's bus."""

    def __init__(self, bus: StatusBus):
        self._lock = threading.Lock()
        self._waiting: list[_Watch] = []
        self._unsubscribe: Callable[[], None] | None = None
        self._bus = bus
        self._due: collections.deque[_Watch] = collections.deque()  # taken, to run on the callback thread
        self._runner: threading.Thread | None = None

    def add(self, done: Callable[[], bool], call: Callable[[], None]) -> None:
        """Call ``call`` once ``done()`` holds: at once (in this thread) if it holds now."""
        watch = _Watch(done, call)
        if done():
            self._run([watch])
            return
        with self._lock:
            self._waiting.append(watch)
            if self._unsubscribe is None:
                self._unsubscribe = self._bus.subscribe(self._changed)
        self._changed([])  # it may have become done between the check and the registration

    def _changed(self, _changes: Sequence[StatusChange]) -> None:
        with self._lock:
            waiting = list(self._waiting)
        ready = []
        for watch in waiting:
            try:
                if watch.done():
                    ready.append(watch)
            except Exception:
                log.exception("checking a done callback failed; it is dropped")
                ready.append(_Watch(lambda: True, lambda: None))
                with self._lock:
                    if watch in self._waiting:
                        self._waiting.remove(watch)
        with self._lock:  # each watch is taken by exactly one caller, so it runs once
            taken = [w for w in ready if w in self._waiting]
            for watch in taken:
                self._waiting.remove(watch)
            self._due.extend(taken)
            if taken and self._runner is None:
                self._runner = threading.Thread(target=self._run_due, name="sm-async-nb-callbacks", daemon=True)
                self._runner.start()

    def _run_due(self) -> None:
        """The callback thread: runs what is due, one at a time, and ends when nothing is."""
        while True:
            with self._lock:
                if not self._due:
                    self._runner = None
                    return
                watch = self._due.popleft()
            self._run([watch])

    @staticmethod
    def _run(watches: list[_Watch]) -> None:
        for watch in watches:
            try:
                watch.call()
            except Exception:
                log.exception("a done callback failed")

    @property
    def waiting(self) -> int:
        with self._lock:
            return len(self._waiting)
