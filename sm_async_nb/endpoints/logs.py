"""An invocation's CloudWatch Logs lines: FilterLogEvents on ``/aws/sagemaker/Endpoints/{name}`` with
the quoted inference id as the filter pattern, from a little before the invocation on, paged until
``limit`` lines are found or :data:`MAX_PAGES` pages were read (FilterLogEvents may answer empty
pages with a next token while it scans a large group).

The pattern matches terms loosely (``"abc-1"`` also finds ``abc-12``), so each line is checked again
here: the id must appear with no id character (letters, digits, ``-``, ``_``) right before or after it.

A missing log group (no instance ever logged) is no lines; a missing permission is an
:class:`~sm_async_nb.errors.AwsError` (``kind="access_denied"``) naming ``logs:FilterLogEvents``.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from ..aws.clients import NOT_FOUND_CODES, as_error, error_code, explain
from ..context import Context
from ..contract import names
from ..errors import AwsError
from ..records import InvocationRecord
from .fetch import missing_permission_warning, permission

MAX_PAGES = 20
EARLIER_S = 300.0           # look from this long before the invocation (clocks differ)
PAGE_LIMIT = 10_000         # FilterLogEvents' own maximum per page
NO_GROUP_CODES = NOT_FOUND_CODES | {"ResourceNotFoundException"}
_ID_CHARS = "A-Za-z0-9_-"


def log_group(endpoint_name: str) -> str:
    return names.log_group(endpoint_name)


@dataclass(frozen=True)
class LogLine:
    """One log event: when (UTC), which stream (``AllTraffic/{instance-id}``), the message."""

    timestamp: dt.datetime
    stream: str
    message: str

    def __str__(self) -> str:
        return self.message


def _pattern(inference_id: str) -> str:
    """A quoted term for FilterLogEvents (quotes and backslashes cannot be quoted: use the longest run
    without them; the exact check below keeps only the right lines)."""
    runs = [r for r in re.split(r'["\\]', inference_id) if r.strip()]
    return f'"{max(runs, key=len)}"' if runs else ""


def _carries(message: str, inference_id: str) -> bool:
    return re.search(rf"(?<![{_ID_CHARS}]){re.escape(inference_id)}(?![{_ID_CHARS}])", message) is not None


def fetch(ctx: Context, record: InvocationRecord, limit: int = 100) -> list[LogLine]:
    """The log lines of ``record``'s endpoint that carry its inference id, oldest first, at most ``limit``.

    Raises:
        AwsError: the logs could not be read (a missing logs:FilterLogEvents permission is named).
    """
    group = log_group(record.endpoint_name)
    started = record.invoked_at or record.submitted_at
    if started:  # log events carry AWS's time: the invoke's, from the notebook's clock
        started += record.clock_offset if record.clock_offset is not None else (ctx.aws.s3_clock.offset() or 0.0)
    kwargs: dict[str, Any] = {"logGroupName": group, "filterPattern": _pattern(record.inference_id)}
    if started:
        kwargs["startTime"] = int((started - EARLIER_S) * 1000)
    client = ctx.aws.get("logs")
    found: list[LogLine] = []
    for _ in range(MAX_PAGES):
        try:
            page = client.filter_log_events(**kwargs, limit=min(PAGE_LIMIT, max(1, limit - len(found))))
        except Exception as exc:
            if error_code(exc) in NO_GROUP_CODES:
                return found
            problem = explain(exc, endpoint_name=record.endpoint_name)
            if problem.kind == "access_denied":
                action = permission("logs", "FilterLogEvents")
                message = missing_permission_warning(action, record.endpoint_name,
                                                     f"the log lines in {group} cannot be read")
                raise AwsError(message, code=problem.code, kind=problem.kind) from None
            raise as_error(exc, endpoint_name=record.endpoint_name, doing=f"Reading {group}") from None
        for event in page.get("events", []):
            message = str(event.get("message", "")).rstrip("\n")
            if _carries(message, record.inference_id):
                when = dt.datetime.fromtimestamp(event.get("timestamp", 0) / 1000, dt.timezone.utc)
                found.append(LogLine(when, str(event.get("logStreamName", "")), message))
        token = page.get("nextToken")
        if len(found) >= limit or not token:
            break
        kwargs["nextToken"] = token
    found.sort(key=lambda line: line.timestamp)
    return found[:limit]
