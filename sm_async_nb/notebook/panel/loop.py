"""The panel's one loop: every intent (clicks and filter edits from the view, the tracker's
refreshes, the workers' answers) goes into one queue, and one thread (``sm-async-nb-panel-loop``)
takes what has gathered, applies it to the state in order, has the effects carried out, computes
one snapshot and hands it to the view. A burst of refreshes or keystrokes costs one snapshot.

Nothing else touches the state, so it needs no lock; the view is drawn from this thread only
(after the first snapshot, drawn by the thread that builds the panel). Callbacks (the draw, the
effects) run with no lock held. A failure is logged and shown in the panel's status line; it never
reaches the tracker or the kernel.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence

from . import actions
from .intents import Effect, Intent, Say
from .snapshot import Snapshot
from .state import PanelState

log = logging.getLogger(__name__)

Draw = Callable[[Snapshot], None]
RunEffect = Callable[[Effect], Intent | None]
_STOP = object()


class PanelLoop:
    """The queue and the thread that feed one ``PanelState`` and draw its snapshots.

    Args:
        state: the state this loop owns.
        draw: the view's draw (called with each snapshot).
        say: shows one line when a snapshot could not be made or drawn.
        clock: the time source.
    """

    def __init__(self, state: PanelState, *, draw: Draw, say: Callable[[str], None],
                 clock: Callable[[], float] = time.time):
        self.state = state
        self._draw, self._say, self._clock = draw, say, clock
        self._run_effect: RunEffect | None = None
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._progress = threading.Condition()
        self._posted = 0
        self._done = 0
        self._closed = False
        self._thread: threading.Thread | None = None

    # --- any thread --------------------------------------------------------------------------

    def post(self, intent: Intent) -> None:
        """Queue ``intent`` (from any thread; ignored once closed)."""
        with self._progress:
            if self._closed:
                return
            self._posted += 1
        self._queue.put(intent)

    def flush(self, timeout: float | None = 30) -> bool:
        """Wait until what was posted before this call is drawn; True when it is."""
        if threading.current_thread() is self._thread:
            return False  # the loop cannot wait for itself
        with self._progress:
            target = self._posted
            return self._progress.wait_for(lambda: self._done >= target or self._closed, timeout)

    @property
    def idle(self) -> bool:
        with self._progress:
            return self._done >= self._posted

    # --- lifetime ----------------------------------------------------------------------------

    def start(self, run_effect: RunEffect, first: Intent) -> None:
        """Apply ``first`` and draw the first snapshot on this thread (so the panel shows its rows
        as soon as it is displayed; an error here is raised), then hand over to the loop's thread."""
        self._run_effect = run_effect
        self.step([first])
        self._thread = threading.Thread(target=self._run, name="sm-async-nb-panel-loop", daemon=True)
        self._thread.start()

    def close(self, timeout: float = 5.0) -> None:
        """Stop the loop: what is queued is dropped, a draw under way finishes first."""
        with self._progress:
            if self._closed:
                return
            self._closed = True
            self._progress.notify_all()
        self._queue.put(_STOP)
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    # --- the loop's thread -------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            while True:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            if any(item is _STOP for item in batch):
                return
            try:
                self.step(batch)  # type: ignore[arg-type]  # no _STOP in it
            except Exception as exc:  # a view or journal problem must never end the loop
                log.exception("panel update failed")
                try:
                    message = f"Panel update failed: {type(exc).__name__}: {exc}"
                    self.state.apply(Say(message), self._clock())
                    self._say(message)
                except Exception:
                    log.exception("could not show the panel update failure either")
            with self._progress:
                self._done += len(batch)
                self._progress.notify_all()

    def step(self, intents: Sequence[Intent]) -> None:
        """One turn: apply ``intents`` (and the quick effects' answers) in order, carry out the
        effects, compute one snapshot and draw it."""
        now, state = self._clock(), self.state
        pending = deque(intents)
        while pending:
            intent = pending.popleft()
            try:
                state.apply(intent, now)
            except Exception as exc:  # e.g. the journal refused: one line, the rest goes on
                log.debug("panel intent %r failed", intent, exc_info=True)
                state.apply(Say(actions.describe_error(exc)), now)
            pending.extend(self._carry_out(state.take_effects()))
        snapshot = state.snapshot(now)
        for answer in self._carry_out(state.take_effects()):  # fetches the snapshot found missing
            self.post(answer)
        self._draw(snapshot)

    def _carry_out(self, effects: Sequence[Effect]) -> list[Intent]:
        """Run ``effects``; the answers of the quick ones (a failure as one line) in order."""
        assert self._run_effect is not None, "start() first"
        answers: list[Intent] = []
        for effect in effects:
            try:
                answer = self._run_effect(effect)
            except Exception as exc:
                log.debug("panel effect %r failed", effect, exc_info=True)
                answer = Say(actions.describe_error(exc))
            if answer is not None:
                answers.append(answer)
        return answers
