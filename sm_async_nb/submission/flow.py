"""Flow control: how many of a job's requests may be unfinished on the endpoint at once (its window).

``max_pending=N`` is a fixed window. ``max_pending="auto"`` is decided here, from what the client can
know about the endpoint, every time the job thread refills (SPEC §16):

* **capacity** ``C = instances x MaxConcurrentInvocationsPerInstance`` (DescribeEndpoint's current
  instance count, the endpoint config's ``AsyncInferenceConfig.ClientConfig``; 1 per instance when
  the config does not say): the requests the endpoint runs at once;
* **drain rate** ``r``: completions per second this client saw on the endpoint over the last
  ``RATE_WINDOW_S`` seconds (the journal's finish times), or ``C / latency`` before any finished;
* **TTL** ``T``: the requests' RequestTTLSeconds (the service's 6 h default when not given), in real
  seconds: an emulated endpoint running ``time_scale`` times faster than real time has ``T / time_scale``;
* **lag** ``L``: how long a finish takes to be seen and its slot refilled (the tracker's polling interval).

A request invoked now waits behind the backlog ``B = window - C`` for about ``B / r`` seconds before
it starts. The window is ``C + B`` with ``B = min(B_ttl, B_busy)``: ``B_ttl = r x T x TTL_SHARE``
keeps that wait within ``TTL_SHARE`` of the TTL (nothing expires even if the rate halves), and
``B_busy = max(C, r x L x BUSY_FACTOR)`` keeps enough waiting that the endpoint never runs dry
between two refills. When ``B_ttl`` is the smaller, expiry wins: the endpoint may idle for a moment,
no request is lost. Before anything finished (no rate yet) the window is ``2 x C``. With **0
instances** (scaled in, or scale-from-zero) it is ``max(1, MaxConcurrentInvocationsPerInstance)``:
a backlog that raises ``HasBacklogWithoutCapacity`` and the backlog-per-instance metric so the
endpoint scales out, and small enough that it does not wait out its TTL while instances start.

For an inference router's routing target (SPEC §20) the capacity is that of its Routable destinations
together (:func:`combined`: the ones readable with the caller's credentials), and the drain rate the
target's own completions, wherever each request ran.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

RATE_WINDOW_S = 120.0  # completions over the last two minutes make the drain rate
TTL_SHARE = 0.5        # a request may wait on the endpoint for at most half its TTL
BUSY_FACTOR = 2.0      # keep two polling intervals of work waiting
MIN_LAG_S = 0.5


@dataclass(frozen=True)
class Capacity:
    """What the endpoint runs at once: its current instances and each one's concurrency (None: unknown)."""

    instances: int | None
    per_instance: int | None

    @property
    def concurrent(self) -> int | None:
        if self.instances is None:
            return None
        return self.instances * max(1, self.per_instance or 1)


def combined(parts: Iterable[Capacity]) -> Capacity:
    """Several destinations as one — an inference router's routing target (SPEC §20): their concurrent requests
    summed, as that many one-request instances; all at 0 instances: 0, with the largest per-instance
    concurrency (the backlog that makes one of them scale out); none known: unknown."""
    known = [part for part in parts if part.instances is not None]
    if not known:
        return Capacity(None, None)
    total = sum(part.concurrent or 0 for part in known)
    if total == 0:
        return Capacity(0, max(max(1, part.per_instance or 1) for part in known))
    return Capacity(total, 1)


@dataclass(frozen=True)
class Pace:
    """Everything ``auto_window`` decides from."""

    capacity: Capacity
    drain_per_s: float | None  # completions per real second (None: nothing finished yet)
    ttl_s: float               # the requests' TTL, in real seconds
    lag_s: float               # seconds between a finish and its refill


@dataclass(frozen=True)
class Decision:
    window: int
    why: str


def auto_window(pace: Pace) -> Decision:
    """The window ``max_pending="auto"`` uses now (see the module's docstring)."""
    capacity = pace.capacity
    per_instance = max(1, capacity.per_instance or 1)
    if capacity.instances == 0:
        return Decision(per_instance, f"0 instances: a backlog of {per_instance} to scale out from zero")
    running = capacity.concurrent if capacity.concurrent is not None else per_instance
    if pace.drain_per_s is None or pace.drain_per_s <= 0:
        return Decision(2 * running, f"capacity {running}, no drain rate measured yet: 2 x capacity")
    rate = pace.drain_per_s
    ttl_backlog = math.floor(rate * pace.ttl_s * TTL_SHARE)
    busy_backlog = max(running, math.ceil(rate * max(MIN_LAG_S, pace.lag_s) * BUSY_FACTOR))
    backlog = max(0, min(ttl_backlog, busy_backlog))
    limit = "TTL" if ttl_backlog < busy_backlog else "busy"
    return Decision(running + backlog, f"capacity {running} + backlog {backlog} ({limit}-bound; {rate:.3g}/s drained, "
                                       f"TTL {pace.ttl_s:.3g} s real)")
