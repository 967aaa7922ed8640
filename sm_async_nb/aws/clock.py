"""S3's clock, as seen from the notebook: the offset between the two, learned from the ``Date`` header
of S3's answers to the requests this client makes anyway (uploads, listings, HEADs).

Times S3 writes (an object's LastModified) are on S3's clock; times the notebook writes (submitted,
invoked) are on its own, which may be off by seconds or hours (a laptop without NTP, a VM after
suspend: SigV4 tolerates 15 minutes). Comparing the two directly loses results; the tracker turns
one into the other with this offset instead. ``Date`` has a resolution of one second, so an offset
smaller than ``RESOLUTION_S`` cannot be told from none and counts as 0.
"""

from __future__ import annotations

import collections
import email.utils
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

RESOLUTION_S = 2.0  # Date is whole seconds, plus the answer's way back: below this, no offset is known
READINGS_S = 300.0  # the offset is the best reading of this long (a clock set back shows within it)
MAX_READINGS = 256  # readings kept at most (a busy client makes many per second)


def parse_date(value: str | None) -> float | None:
    """An HTTP ``Date`` header (RFC 7231) as epoch seconds, or None when absent or unreadable."""
    if not value:
        return None
    try:
        return email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


class ServerClock:
    """The offset of S3's clock from the notebook's (``clock``), from the last S3 answer that had a Date.

    ``observe`` is a botocore ``after-call`` handler registered on every S3 client of the context.
    """

    def __init__(self, clock: Callable[[], float], monotonic: Callable[[], float] = time.monotonic):
        self.clock, self._monotonic = clock, monotonic
        self._lock = threading.Lock()
        self._offset: float | None = None
        self._readings: collections.deque[tuple[float, float]] = collections.deque()  # (monotonic time, offset)
        self._warned = False

    def observe(self, http_response: Any = None, parsed: Any = None, **_: Any) -> None:
        """Take S3's time from one answer (botocore calls this right after it arrives)."""
        headers = ((parsed or {}).get("ResponseMetadata") or {}).get("HTTPHeaders") or {}
        if not headers and http_response is not None:
            headers = getattr(http_response, "headers", {}) or {}
        date = parse_date(headers.get("date") or headers.get("Date"))
        if date is not None:
            self.update(date, self.clock())

    def update(self, server_time: float, local_time: float) -> None:
        """One reading: S3 said ``server_time`` (whole seconds) when the notebook said ``local_time``.

        S3 dates its answer when it sends it; botocore reports it once the answer has arrived (after its
        whole body, for a download), so every reading is late by that time and the true offset is at
        least as large. The offset is the largest reading of the last ``READINGS_S`` seconds: the answer
        that came back fastest (a slow download or a loaded machine does not shift it), while a clock that
        was set back still shows within that time."""
        reading = server_time + 0.5 - local_time  # the Date is truncated: the middle of its second
        at = self._monotonic()  # not the notebook's clock: that is what may be set back
        with self._lock:
            self._readings.append((at, reading))
            while self._readings and (at - self._readings[0][0] > READINGS_S
                                      or len(self._readings) > MAX_READINGS):
                self._readings.popleft()
            best = max(offset for _, offset in self._readings)
            offset = 0.0 if abs(best) < RESOLUTION_S else best
            self._offset = offset
            warn = offset != 0.0 and not self._warned and abs(offset) > 60
            self._warned = self._warned or warn
        if warn:
            log.warning("This machine's clock is %.0f s %s S3's; results are still matched on S3's clock, but "
                        "AWS refuses requests signed more than 15 minutes off: sync the clock (NTP).", abs(offset),
                        "behind" if offset > 0 else "ahead of")

    def offset(self) -> float | None:
        """S3's time minus the notebook's, in seconds (0.0 when within the resolution); None before any
        answer with a Date was seen."""
        with self._lock:
            return self._offset

    def to_local(self, server_time: float) -> float:
        """A time on S3's clock (LastModified, an event time) on the notebook's clock."""
        return server_time - (self.offset() or 0.0)
