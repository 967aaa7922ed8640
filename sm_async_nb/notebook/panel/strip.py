"""The endpoint strip: one line per endpoint that has unfinished invocations (status, instances,
backlog, age of the oldest request, warnings), above the table.

The status comes from an injected ``endpoint_status(name)`` (the client's cached
``endpoint_status``), called on the strip's own worker thread, at most once per ``min_interval``
seconds per endpoint, whatever the tracker's pace: the panel asks ``update(endpoints, now)`` on
every render, which only assigns the HTML of what is known and queues what is due.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import ipywidgets as W

from .background import Worker
from .rows import BORDER_COLOUR, MUTED_COLOUR, WARN_COLOUR, esc, human_duration

if TYPE_CHECKING:
    from ...endpoints.status import EndpointStatus

log = logging.getLogger(__name__)

EndpointStatusFn = Callable[[str], "EndpointStatus"]
MIN_INTERVAL = 60.0


def _number(value: float | None) -> str:
    return "?" if value is None else f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def endpoint_html(status: EndpointStatus) -> str:
    """One endpoint's line and its warnings (every value escaped)."""
    bits = [f"<b>{esc(status.name)}</b>", esc(status.status or "status unknown")]
    if status.current_instances is not None or status.desired_instances is not None:
        bits.append(f"instances {_number(status.current_instances)}/{_number(status.desired_instances)}")
    if status.backlog is not None:
        bits.append(f"backlog {_number(status.backlog)}")
    if status.oldest_request_age_s is not None:
        bits.append(f"oldest request {esc(human_duration(status.oldest_request_age_s))}")
    if status.scales_from_zero:
        bits.append("scales from zero")
    warnings = "".join(f'<div style="color:{WARN_COLOUR};margin-left:12px">⚠ {esc(w)}</div>'
                       for w in status.warnings)
    return f'<div style="padding:2px 0">{" · ".join(bits)}</div>{warnings}'


class EndpointStrip:
    """The strip's widget and its background refresh."""

    def __init__(self, endpoint_status: EndpointStatusFn, *, min_interval: float = MIN_INTERVAL,
                 clock: Callable[[], float]):
        self._fetch, self._min_interval, self._clock = endpoint_status, min_interval, clock
        self.html = W.HTML(_dom_classes=("sm-async-endpoints",),
                           layout=W.Layout(border_left=f"3px solid {BORDER_COLOUR}", padding="0 0 0 8px"))
        self._lock = threading.Lock()
        self._known: dict[str, str] = {}        # endpoint -> its HTML (status or error line)
        self._asked: dict[str, float] = {}      # endpoint -> when its last fetch started
        self._shown: tuple[str, ...] = ()
        self._worker = Worker("endpoints")
        self.fetches = 0

    def update(self, endpoints: Sequence[str], now: float) -> None:
        """Show ``endpoints`` (those with unfinished rows); queue a fetch for each one due."""
        with self._lock:
            self._shown = tuple(endpoints)
            due = [e for e in endpoints if now - self._asked.get(e, float("-inf")) >= self._min_interval]
            for name in due:
                self._asked[name] = now
        for name in due:
            self._worker.submit(self._load, name)
        self._draw()

    def _load(self, name: str) -> None:
        try:
            self.fetches += 1
            line = endpoint_html(self._fetch(name))
        except Exception as exc:
            log.debug("endpoint status of %s failed", name, exc_info=True)
            line = (f'<div><b>{esc(name)}</b> · <span style="color:{MUTED_COLOUR}">status not available: '
                    f'{esc(type(exc).__name__)}: {esc(str(exc)[:200])}</span></div>')
        with self._lock:
            self._known[name] = line
        self._draw()

    def _draw(self) -> None:
        with self._lock:
            lines = [self._known.get(name, f"<div><b>{esc(name)}</b> · checking…</div>") for name in self._shown]
        self.html.value = "".join(lines)
        self.html.layout.display = "" if lines else "none"

    def wait_idle(self, timeout: float | None = 30) -> bool:
        return self._worker.wait_idle(timeout)

    def close(self) -> None:
        self._worker.close()
