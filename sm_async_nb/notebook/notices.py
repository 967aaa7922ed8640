"""Notices: one line each for what deserves attention now, shared by the panel's header and the
handles' live status lines — a batch whose last part finished, an endpoint at 0 instances with
work waiting, requests about to expire. Pure functions of journal facts and cached endpoint
statuses (no request is made for a notice); every outside string is escaped where drawn."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from ..display.text import OK_COLOUR, WARN_COLOUR, esc, human_duration
from ..endpoints.rules import waiting
from ..endpoints.status import EndpointStatus
from ..records import FINISHED, UNSUCCESSFUL, Status

EXPIRING_WITHIN = 300.0  # "about to expire": unfinished requests whose deadline is this close (seconds)


@dataclass(frozen=True)
class Notice:
    level: Literal["done", "warn"]
    text: str


def batch_finished(name: str, counts: Mapping[Status, int], at: float) -> Notice:
    """A batch's last part finished: when, and how its parts ended."""
    parts = ", ".join(f"{counts[s]:,} {s.value.lower()}" for s in Status if s in FINISHED and counts.get(s))
    how = "" if not any(counts.get(s) for s in UNSUCCESSFUL) else " (resubmit() sends the unsuccessful ones again)"
    return Notice("done", f"Batch {name} finished at {time.strftime('%H:%M:%S', time.localtime(at))}: {parts}{how}.")


def zero_instances(status: EndpointStatus) -> Notice | None:
    """An endpoint at 0 instances while requests wait on it; None otherwise."""
    reason = waiting(status)
    if status.current_instances != 0 or reason is None:
        return None
    if status.desired_instances or status.scales_from_zero:
        then = "it is scaling out: the first results take minutes"
    else:
        then = "nothing scales it out: requests wait until they expire"
    return Notice("warn", f"Endpoint {status.name} has 0 instances and {reason}; {then}.")


def expiring(count: int, first_in: float | None, where: str = "") -> Notice | None:
    """Unfinished requests whose TTL and invocation timeout run out within EXPIRING_WITHIN."""
    if not count or first_in is None:
        return None
    return Notice("warn", f"{count:,} pending invocation(s){where} expire within "
                          f"{human_duration(EXPIRING_WITHIN)} (the first in {human_duration(first_in)}) "
                          "unless they finish.")


def notices_html(notices: Sequence[Notice]) -> str:
    """The notices as lines: ✓ for what finished, ⚠ for warnings (text escaped)."""
    return "".join(
        f'<div class="sm-async-notice sm-async-notice-{n.level}" style="color:'
        f'{OK_COLOUR if n.level == "done" else WARN_COLOUR}">{"✓" if n.level == "done" else "⚠"} {esc(n.text)}</div>'
        for n in notices)
