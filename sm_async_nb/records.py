"""The state of an invocation as the journal stores it, and the one definition of every status set,
service default and the "expired" rule. Handles, the tracker, the panel and the local stack read
these; none of them defines its own.
"""

from __future__ import annotations

import dataclasses
import enum
import os
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

from .contract.service import is_expiry, service_deadline
from .errors import ValidationError


class Status(str, enum.Enum):
    """Where an invocation is in its life. QUEUED: its input is in S3 (uploaded, or the user's own
    object) and journaled, held by the client's flow control, not yet invoked; ERROR: never reached
    SageMaker; FAILED: the model or service wrote a failure object; EXPIRED: nothing appeared in
    time, or the service said so."""

    SUBMITTING = "SUBMITTING"
    PENDING = "PENDING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    EXPIRED = "EXPIRED"
    ERROR = "ERROR"
    QUEUED = "QUEUED"  # SPEC §16 (listed last: the first map's order is kept)

    @property
    def finished(self) -> bool:
        return self in FINISHED

    def __str__(self) -> str:
        return self.value


# Every status set the package uses, defined once.
FINISHED = frozenset({Status.COMPLETED, Status.FAILED, Status.EXPIRED, Status.ERROR})
UNFINISHED = frozenset({Status.QUEUED, Status.SUBMITTING, Status.PENDING})
ON_ENDPOINT = frozenset({Status.PENDING})         # invoked and not finished: what a flow-control window counts
UNSUCCESSFUL = frozenset({Status.FAILED, Status.EXPIRED, Status.ERROR})
RESUBMITTABLE = UNSUCCESSFUL                      # resubmit() accepts these
RESUMABLE = frozenset({Status.ERROR, Status.SUBMITTING})  # a re-run of the same request continues these


class SubmitStep(str, enum.Enum):
    """How far a SUBMITTING invocation got, so recovery knows what is safe to redo."""

    JOURNALED = "journaled"   # row written; the input may be partly uploaded, nothing invoked
    INVOKING = "invoking"     # input in place; the invoke may have been sent, answer not recorded
    DONE = "done"             # the invoke was answered (or the submission gave up)


class BatchKind(str, enum.Enum):
    """What a batch was made from, which decides how its results are aligned."""

    PAYLOADS = "payloads"     # one payload per part: one result row per part aligns to its position
    DATAFRAME = "dataframe"   # row slices of one DataFrame: aligns to the DataFrame's index
    S3 = "s3"                 # objects already in S3: one result row per object aligns to its position
    DATASET = "dataset"       # row slices of a dataset read in a stream: aligns to its row numbers

    @property
    def by_rows(self) -> bool:
        """Parts are slices of rows (results align row by row), not one payload each."""
        return self in (BatchKind.DATAFRAME, BatchKind.DATASET)


ErrorsMode = Literal["raise", "skip"]
ERRORS_MODES: tuple[ErrorsMode, ...] = ("raise", "skip")

# Request parameters kept for display and for resubmission (Python keyword names).
REQUEST_FIELDS = ("content_type", "accept", "custom_attributes", "request_ttl_seconds",
                  "invocation_timeout_seconds", "s3_output_path_extension", "filename")


def statuses_of(value: object, name: str = "statuses") -> frozenset[Status]:
    """A status filter as given by a user: a Status, its name (``"ERROR"``, any case), or several of them.

    Raises:
        ValidationError: anything else, naming the statuses there are.
    """
    items = [value] if isinstance(value, (str, Status)) else value
    if not isinstance(items, Iterable):
        items = [items]
    found = set()
    for item in items:
        text = item.value if isinstance(item, Status) else item
        if not isinstance(text, str) or text.upper() not in Status.__members__:
            raise ValidationError(f"{name} must be statuses ({', '.join(s.value for s in Status)}), not {value!r}.",
                                  parameter=name)
        found.add(Status(text.upper()))
    return frozenset(found)


def ids_of(value: object, name: str = "inference_ids") -> list[str]:
    """Inference ids as given by a user: one id, or an iterable of them.

    Raises:
        ValidationError: anything but text ids.
    """
    items = [value] if isinstance(value, str) else value
    if isinstance(items, (bytes, bytearray, dict)) or not isinstance(items, Iterable):
        raise ValidationError(f"{name} must be an inference id or a list of them, not {type(value).__name__}.",
                              parameter=name)
    found = list(items)
    if not all(isinstance(i, str) for i in found):
        raise ValidationError(f"{name} must be inference ids (str), not {found[:3]!r}.", parameter=name)
    return found


def failure_status(reason: str | None) -> Status:
    """EXPIRED when the failure reason starts with one of the service's expiry codes, else FAILED."""
    return Status.EXPIRED if is_expiry(reason) else Status.FAILED


def new_inference_id(now: float | None = None) -> str:
    """A UUIDv7 (RFC 9562): random, but sorting by time, so a listing can start after the
    oldest pending id instead of reading every output the endpoint ever wrote."""
    ms = int((time.time() if now is None else now) * 1000) & ((1 << 48) - 1)
    rand = int.from_bytes(secrets.token_bytes(10), "big")
    rand_a, rand_b = rand >> 68, rand & ((1 << 62) - 1)
    value = (ms << 80) | (0x7 << 76) | (rand_a << 64) | (0b10 << 62) | rand_b
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


@dataclass
class InvocationRecord:
    inference_id: str
    endpoint_name: str
    status: Status = Status.SUBMITTING
    submit_step: SubmitStep = SubmitStep.JOURNALED
    origin: str = ""
    label: str | None = None
    batch_id: str | None = None
    batch_index: int | None = None
    row_start: int | None = None
    row_count: int | None = None
    request: dict[str, Any] = field(default_factory=dict)
    inline: bool = False
    input_location: str | None = None
    input_size: int | None = None
    input_sha256: str | None = None
    output_location: str | None = None
    failure_location: str | None = None
    submitted_at: float | None = None
    invoked_at: float | None = None
    finished_at: float | None = None
    updated_at: float | None = None
    output_size: int | None = None
    failure_reason: str | None = None
    error: str | None = None
    owner_pid: int = field(default_factory=os.getpid)
    deadline: float | None = None  # when the service's TTL and invocation timeout have both run out
    resubmitted_as: str | None = None  # the id that carries this FAILED/EXPIRED request now
    user_input: bool = False  # input_location is the user's own object: never deleted
    output_body: bytes | None = field(default=None, repr=False)  # a small output from its notification
    output_content_type: str | None = None
    clock_offset: float | None = None  # S3's clock minus the notebook's at the invoke (None: unknown)
    named_by_user: bool = True  # the output's name was chosen by the user: an earlier object may sit there

    @property
    def content_type(self) -> str | None:
        return self.request.get("content_type")

    @property
    def accept(self) -> str | None:
        return self.request.get("accept")

    @property
    def latency(self) -> float | None:
        """Seconds from submission to the result being seen (None while unfinished)."""
        if self.finished_at is None or self.submitted_at is None:
            return None
        return max(0.0, self.finished_at - self.submitted_at)

    def service_deadline(self) -> float:
        """After this, the service can no longer write an output (TTL + invocation timeout)."""
        if self.deadline is not None:
            return self.deadline
        return service_deadline(self.request, self.invoked_at or self.submitted_at or 0.0)

    def replace(self, **changes: Any) -> InvocationRecord:
        return dataclasses.replace(self, **changes)


class JobState(str, enum.Enum):
    """What a batch's job is doing. A RUNNING job whose owner process died is paused in effect:
    nothing resumes by itself after a kernel restart."""

    RUNNING = "running"
    PAUSED = "paused"
    CANCELLED = "cancelled"
    DONE = "done"


@dataclass
class BatchRecord:
    batch_id: str
    endpoint_name: str
    size: int
    label: str | None = None
    created_at: float | None = None
    kind: BatchKind = BatchKind.PAYLOADS
    index_json: str | None = None   # the input DataFrame's index, when JSON can hold it
    # A job (SPEC §16: flow control, background, retries); None when the batch was sent at once.
    max_pending: str | None = None   # "auto", or an int as text; None: no window
    retries: int = 0                 # how often an EXPIRED (or service-failed) part is sent again
    job_state: JobState | None = None
    job_owner: int | None = None     # the process driving the job (a dead one: the job shows as paused)
    read_position: int | None = None  # the next request of the source still to read (None: all read)
    source_json: str | None = None   # how to read the source again after a restart (a dataset), else None




class PendingRow(NamedTuple):
    """The few fields the tracker polls with: cheap to read for thousands of pending rows."""

    inference_id: str
    endpoint_name: str
    output_location: str | None
    failure_location: str | None
    deadline: float
    invoked_at: float = 0.0  # on the notebook's clock
    clock_offset: float | None = None  # S3's clock minus the notebook's at the invoke (None: unknown)
    named_by_user: bool = True  # only then can an earlier request's object sit at the output location

    @classmethod
    def of(cls, record: InvocationRecord) -> PendingRow:
        return cls(record.inference_id, record.endpoint_name, record.output_location,
                   record.failure_location, record.service_deadline(),
                   record.invoked_at or record.submitted_at or 0.0, record.clock_offset, record.named_by_user)


class Finish(NamedTuple):
    """How a PENDING invocation ended, as the tracker learned it (an output or failure object, a
    notification, or its deadline passing): what ``Journal.finish`` records."""

    inference_id: str
    status: Status                        # COMPLETED, FAILED or EXPIRED
    finished_at: float | None = None      # when the result was written, on the notebook's clock (None: unknown)
    output_size: int | None = None
    failure_reason: str | None = None
    output_body: bytes | None = None      # a small output delivered inside its notification
    output_content_type: str | None = None
