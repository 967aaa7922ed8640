"""What the service does when a request leaves something out, and the "expired" rule: the client
(tracking, handles, the panel) and the emulated service (``local/``) read these, neither defines
its own."""

from __future__ import annotations

import math
from typing import Any

# The service's defaults when a request does not set them (SPEC §2).
DEFAULT_TTL_SECONDS = 21600
DEFAULT_TIMEOUT_SECONDS = 900
# A routing target's ClientConfig.MaxTimeInBacklogSeconds when unset (SPEC §20): how long a request may wait
# at one destination before the inference router moves it to another.
DEFAULT_MAX_TIME_IN_BACKLOG_SECONDS = 900
# After TTL + invocation timeout, how long an output may still take to show up in S3.
EXPIRY_GRACE_SECONDS = 300

# Failure texts that are the service's own expiry signal: the error code that leads the failure
# reason (``"<Code>: <message>"``). A model error that merely mentions "expired" is a FAILED row.
EXPIRY_CODES = frozenset({"RequestExpired", "RequestTimeToLiveExpired", "ExpiredRequest"})

# Output identity: an object at an invocation's output (or failure) location whose name the user
# chose (a reused inference id or Filename) belongs to it only if S3 says it was written after the
# invoke, less this margin. Both times are on S3's clock (the invoke's is put there with the offset
# measured from the Date of S3's answers): the margin covers the Date header's and LastModified's
# one-second resolution and the answers' way back, never a skewed notebook clock. An older object
# there is an earlier request's and is ignored until it is overwritten. A name the client generated
# (a UUIDv7 inference id, no Filename) cannot hold an earlier object: it needs no time at all.
OUTPUT_CLOCK_SKEW_SECONDS = 5.0


def written_for(last_modified: float, invoked_at: float, skew: float = OUTPUT_CLOCK_SKEW_SECONDS) -> bool:
    """Whether an object written at ``last_modified`` can be the result of an invoke at ``invoked_at``, both
    on S3's clock (S3 may report LastModified truncated to the second, hence the floor)."""
    return last_modified >= math.floor(invoked_at - skew)


# Failure codes of the service itself, not the model: a transient fault of the platform. ``retries=N``
# resends these (and EXPIRED invocations); a model's error (``ModelError``), a timeout of the model's
# own (``InvocationTimeout``), a bad input (``ClientError``) or a deleted endpoint never are.
SERVICE_FAILURE_CODES = frozenset({"InternalFailure", "InternalServerError", "ServiceUnavailable",
                                   "InternalDependencyException", "ThrottlingException"})


def failure_code(reason: str | None) -> str:
    """The error code that leads a failure reason (``"<Code>: <message>"``), or ""."""
    return (reason or "").lstrip().split(":", 1)[0].strip()


def is_expiry(reason: str | None) -> bool:
    """Whether a failure reason is the service's own expiry signal (it starts with an expiry code)."""
    return failure_code(reason) in EXPIRY_CODES


def service_caused(reason: str | None) -> bool:
    """Whether a failure reason is the service's (an expiry or a platform fault), not the model's."""
    code = failure_code(reason)
    return code in EXPIRY_CODES or code in SERVICE_FAILURE_CODES


def service_deadline(request: dict[str, Any], started: float) -> float:
    """After this, the service can no longer write an output (TTL + invocation timeout)."""
    ttl = request.get("request_ttl_seconds") or DEFAULT_TTL_SECONDS
    timeout = request.get("invocation_timeout_seconds") or DEFAULT_TIMEOUT_SECONDS
    return started + ttl + timeout


def is_overdue(deadline: float, now: float, grace: float = EXPIRY_GRACE_SECONDS) -> bool:
    """The "expired" rule: no output or failure by the service deadline plus a grace period."""
    return now > deadline + grace
