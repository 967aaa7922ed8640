"""This client's own view of an endpoint's queue, read from the journal (no AWS request): its PENDING
invocations with their deadlines, and how fast it has seen invocations finish.

The drain rate is the number of this client's invocations on the endpoint that the tracker saw
COMPLETED or FAILED (both were processed, so both left the backlog) during the last
:data:`RATE_WINDOW_S` seconds, divided by how long this client was watching in that window (from
the earliest invocation among them and the pending ones, at least :data:`MIN_WATCH_S`). It is a
lower bound of the endpoint's real rate when other clients share the endpoint, and the result's
arrival time includes the tracker's polling lag.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..context import Context
from ..records import Status

RATE_WINDOW_S = 600.0
MIN_WATCH_S = 30.0
PROCESSED = (Status.COMPLETED, Status.FAILED)


@dataclass(frozen=True)
class OwnQueue:
    """The PENDING invocations of this client on one endpoint and the completions it saw recently."""

    deadlines: tuple[float, ...] = ()   # service deadline of each PENDING row, oldest invocation first
    completed: int = 0                  # COMPLETED/FAILED rows that finished inside the window
    watched_s: float = MIN_WATCH_S      # how long the window could see completions

    @property
    def pending(self) -> int:
        return len(self.deadlines)

    @property
    def rate_per_s(self) -> float | None:
        """Completions per second seen, or None when none were seen."""
        return self.completed / self.watched_s if self.completed else None


def read(ctx: Context, endpoint_name: str, now: float) -> OwnQueue:
    """The journal's view of ``endpoint_name`` for this client's origin (two cheap queries)."""
    rows = sorted((r for r in ctx.journal.pending(ctx.origin) if r.endpoint_name == endpoint_name),
                  key=lambda r: r.invoked_at)
    since = now - RATE_WINDOW_S
    completed, first_invoked = ctx.journal.completions(ctx.origin, endpoint_name, since, PROCESSED)
    starts = [t for t in [first_invoked, *(r.invoked_at for r in rows[:1])] if t]
    watched = now - max(since, min(starts)) if starts else RATE_WINDOW_S
    return OwnQueue(tuple(r.deadline for r in rows), completed, max(MIN_WATCH_S, watched))


@dataclass(frozen=True)
class ExpiryForecast:
    """How many pending invocations will likely expire before their turn, at the rate seen."""

    late: int
    drain_s: float        # time until the whole backlog (ours, or CloudWatch's when larger) is done
    first_late_in_s: float  # time left before the first of the late ones expires


def forecast(queue: OwnQueue, backlog: float | None, now: float) -> ExpiryForecast | None:
    """Which pending rows end after their deadline if the queue drains at ``queue.rate_per_s``.

    The queue is FIFO; our i-th oldest pending row (1-based) sits at about position ``i * B / n``
    when CloudWatch reports a backlog ``B`` larger than our ``n`` pending rows (other requests spread
    evenly among ours), else at position ``i``. None when the rate is unknown (nothing seen finishing).
    """
    rate = queue.rate_per_s
    if rate is None or not queue.deadlines:
        return None
    n = queue.pending
    spread = backlog / n if backlog is not None and backlog > n else 1.0
    late = [d for i, d in enumerate(queue.deadlines, 1) if now + i * spread / rate > d]
    if not late:
        return None
    total = max(float(n), backlog or 0.0)
    return ExpiryForecast(len(late), total / rate, max(0.0, min(late) - now))


def minutes(seconds: float) -> str:
    """``"~12 min"``, ``"~1.5 h"``, ``"<1 min"``."""
    if seconds < 60:
        return "<1 min"
    if seconds < 5400:
        return f"~{math.ceil(seconds / 60)} min"
    return f"~{seconds / 3600:.1f} h"
