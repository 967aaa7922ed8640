"""S3's clock, as seen from the notebook: the offset between the two, learned from the ``Date`` header
of S3's answers to the requests this client makes anyway (uploads, listings, HEADs).

Times S3 writes (an object's LastModified) are on S3's clock; times the notebook writes (submitted,
invoked) are on its own, which may be off by seconds or hours (a laptop without NTP, a VM after
suspend: SigV4 tolerates 15 minutes). Comparing the two directly loses results; the tracker turns
one into the other with this offset instead. ``Date`` has a resolution of one second, so an offset
smaller than ``RESOLUTION_S`` cannot be told from none and counts as 0.
"""

from __future__ import annotations

import email.utils
import logging
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

RESOLUTION_S = 2.0  # Date is whole seconds, plus the answer's way back: below this, no offset is known


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

    def __init__(self, clock: Callable[[], float]):
        self.clock = clock
        self._lock = threading.Lock()
        self._offset: float | None = None
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
        """One reading: S3 said ``server_time`` (whole seconds) when the notebook said ``local_time``."""
        offset = server_time + 0.5 - local_time  # the Date is truncated: the middle of its second
        offset = 0.0 if abs(offset) < RESOLUTION_S else offset
        with self._lock:
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
