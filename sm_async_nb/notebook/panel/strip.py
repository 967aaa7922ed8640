"""The endpoint strip's lines: one per endpoint that has unfinished invocations (status, instances,
backlog, age of the oldest request, warnings), above the table. Pure functions; every value is
escaped.

The status comes from an injected ``endpoint_status(name)`` (the client's cached
``endpoint_status``), called on a worker thread (``workers.py``) at most once per ``MIN_INTERVAL``
seconds per endpoint, whatever the tracker's pace (``state.py`` decides what is due).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ...display.text import MUTED_COLOUR, WARN_COLOUR, esc, human_duration

if TYPE_CHECKING:
    from ...endpoints.router_status import RouterStatus
    from ...endpoints.status import EndpointStatus

EndpointStatusFn = Callable[[str], "EndpointStatus"]
RouterStatusFn = Callable[[str], "RouterStatus"]
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


def router_html(status: RouterStatus, target_name: str) -> str:
    """The line of a routing target (``router/target``): the router's status and each destination's
    RoutingStatus, instances and backlog, then the router's warnings (every value escaped)."""
    bits = [f"<b>{esc(status.name)}/{esc(target_name)}</b>",
            esc(f"router {status.status or ('not found' if status.exists is False else 'status unknown')}")]
    target = status.target(target_name)
    if target is not None:
        if target.capacity is not None:
            bits.append(f"capacity {target.capacity}")
        for dest in target.destinations:
            text = f"{dest.endpoint_name or dest.arn}: {dest.routing_status or '?'}"
            if dest.endpoint is not None:
                text += f" {dest.endpoint.instances_text}"
                if dest.endpoint.backlog is not None:
                    text += f" backlog {_number(dest.endpoint.backlog)}"
            bits.append(esc(text))
    warnings = "".join(f'<div style="color:{WARN_COLOUR};margin-left:12px">⚠ {esc(w)}</div>'
                       for w in status.warnings)
    return f'<div style="padding:2px 0">{" · ".join(bits)}</div>{warnings}'


def unavailable_html(name: str, exc: BaseException) -> str:
    """The line of an endpoint whose status could not be read."""
    return (f'<div><b>{esc(name)}</b> · <span style="color:{MUTED_COLOUR}">status not available: '
            f'{esc(type(exc).__name__)}: {esc(str(exc)[:200])}</span></div>')


def checking_html(name: str) -> str:
    """The line of an endpoint whose first status is being read."""
    return f"<div><b>{esc(name)}</b> · checking…</div>"
