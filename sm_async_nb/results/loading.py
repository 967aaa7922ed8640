"""Completed outputs into DataFrames: download concurrently, decode by content type, align to inputs."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..aws.clients import NOT_FOUND_CODES, as_error, error_code
from ..aws.s3uri import S3Uri
from ..context import Context
from ..errors import InferenceExpired, InferenceFailed, OutputMissing, ResultNotReady, SubmissionError, ValidationError
from ..payloads import OCTET, decode, media_type
from ..payloads.indexes import decode_index
from ..records import ERRORS_MODES, BatchRecord, ErrorsMode, InvocationRecord, Status

if TYPE_CHECKING:
    import pandas as pd


log = logging.getLogger(__name__)

# Content types that say nothing about the body; the Accept we asked for is a better hint.
_UNINFORMATIVE = {None, "binary/octet-stream", OCTET}


def raise_unless_completed(record: InvocationRecord) -> None:
    """The exception that says why there is no output (or nothing when there is one)."""
    status = record.status
    if status is Status.COMPLETED:
        return
    if status is Status.FAILED:
        raise InferenceFailed(record.inference_id, record.failure_reason, record.failure_location,
                              record.input_location)
    if status is Status.EXPIRED:
        raise InferenceExpired(record.inference_id, (record.failure_reason or "no result in time").strip())
    if status is Status.ERROR:
        raise SubmissionError(f"Inference {record.inference_id} was never submitted: {record.error}",
                              inference_id=record.inference_id)
    raise ResultNotReady(record.inference_id, status.value)


def fetch(ctx: Context, record: InvocationRecord) -> tuple[bytes, str | None]:
    """The output object's bytes and the content type to decode it by."""
    raise_unless_completed(record)
    if record.output_body is not None:  # delivered in its notification (IncludeInferenceResponseIn)
        return record.output_body, record.output_content_type or record.accept
    assert record.output_location is not None  # a COMPLETED row always has one
    location = S3Uri.parse(record.output_location)
    try:
        answer = ctx.aws.s3.get_object(Bucket=location.bucket, Key=location.key)
    except Exception as exc:
        if error_code(exc) in NOT_FOUND_CODES:
            raise OutputMissing(record.inference_id, record.output_location) from None
        raise as_error(exc, bucket=location.bucket, doing=f"Loading the output of {record.inference_id}") from None
    content_type: str | None = answer.get("ContentType")
    if media_type(content_type) in _UNINFORMATIVE and record.accept:
        content_type = record.accept
    return answer["Body"].read(), content_type


def load_frame(ctx: Context, record: InvocationRecord, **reader_kwargs: Any) -> pd.DataFrame:
    body, content_type = fetch(ctx, record)
    reader_kwargs.setdefault("csv_header", ctx.settings.csv_output_header)
    return decode(body, content_type, **reader_kwargs)


def check_errors_mode(errors: object) -> ErrorsMode:
    """``errors`` as an ErrorsMode.

    Raises:
        ValidationError: anything but "raise" or "skip" (a ValueError too).
    """
    if not isinstance(errors, str) or errors not in ERRORS_MODES:
        raise ValidationError(f"errors must be 'raise' or 'skip', not {errors!r}.", parameter="errors")
    return errors


def unsent_slots(batch: BatchRecord, parts: Sequence[InvocationRecord]) -> list[int]:
    """The batch's slots that were never journaled: a streamed submission (a dataset) stopped part-way
    (Ctrl-C, expired credentials, a crash) before reading them. The batch row knows how many it has."""
    journaled = {r.batch_index for r in parts}
    return [i for i in range(batch.size) if i not in journaled]


def unsent_error(batch: BatchRecord, parts: Sequence[InvocationRecord], unsent: Sequence[int]) -> SubmissionError:
    """What a batch with unsent slots says when all of its results are asked for."""
    prefix = batch.batch_id.removeprefix("batch-")
    rows = ""
    if batch.kind.by_rows and parts:
        sent_rows = max((r.row_start or 0) + (r.row_count or 0) for r in parts)
        rows = f" (rows from {sent_rows} on)"
    return SubmissionError(
        f"{len(unsent)} of {batch.size} requests of {batch.batch_id} were never sent{rows}: its submission stopped "
        f"part-way. Re-run the same submit call with inference_id={prefix!r} to send them (nothing is sent twice), "
        "or pass errors='skip' for the results there are.", batch_id=batch.batch_id, code="Unsent")


def completed_parts(batch: BatchRecord, parts: Sequence[InvocationRecord], errors: ErrorsMode
                    ) -> list[InvocationRecord]:
    """The parts with a result; with ``errors="raise"`` the first one without raises its error, and so
    does a batch whose submission stopped before every part was sent.

    Raises:
        ValidationError: a bad ``errors``. InferenceFailed, InferenceExpired, ResultNotReady,
            SubmissionError: a part has no result (or was never sent) and ``errors="raise"``.
    """
    check_errors_mode(errors)
    unsent = unsent_slots(batch, parts)
    if unsent and errors == "raise":
        raise unsent_error(batch, parts, unsent)
    if unsent:
        log.warning("%s: %d of %d requests were never sent; their rows are left out", batch.batch_id,
                    len(unsent), batch.size)
    usable = []
    for record in parts:
        if record.status is Status.COMPLETED:
            usable.append(record)
        elif errors == "raise":
            raise_unless_completed(record)
    return usable


def load_batch(ctx: Context, batch: BatchRecord, parts: Sequence[InvocationRecord],
               errors: ErrorsMode = "raise", **reader_kwargs: Any) -> pd.DataFrame:
    """One DataFrame in input order. When every part returned one row per input row, the index is
    the input's index (the DataFrame's, or the payload position); otherwise it is renumbered."""
    import pandas as pd

    usable = completed_parts(batch, parts, errors)

    def load(record: InvocationRecord) -> pd.DataFrame | None:
        try:
            return load_frame(ctx, record, **reader_kwargs)
        except OutputMissing:
            if errors == "raise":
                raise
            return None  # skipped like a part without a result; attrs["missing"] names it

    unsent = unsent_slots(batch, parts)
    loaded = list(ctx.pool.map(load, usable))
    missing = [r.inference_id for r, f in zip(usable, loaded, strict=True) if f is None]
    usable = [r for r, f in zip(usable, loaded, strict=True) if f is not None]
    frames = [f for f in loaded if f is not None]
    result = _assemble(batch, parts, usable, frames) if frames else pd.DataFrame()
    if missing:
        result.attrs["missing"] = missing  # outputs removed from S3 since they completed
    if unsent:
        result.attrs["unsent"] = len(unsent)  # requests a stopped submission never sent (errors="skip")
    return result


class PartIndex:
    """Which rows of the input each part's result stands for, when each part returns one row per input row
    (per input row of its slice, for a DataFrame or a dataset; one row per payload otherwise)."""

    def __init__(self, batch: BatchRecord, parts: Sequence[InvocationRecord], rows: int | None = None):
        self.by_rows = batch.kind.by_rows
        if self.by_rows:  # ``rows``: the input's rows when not every part is known yet (a part alone)
            total = sum(r.row_count or 0 for r in parts) if rows is None else rows
            self.index, self.note = decode_index(batch.index_json, total)
        else:  # a Series of URIs: its index; else the payload positions
            self.index, self.note = decode_index(batch.index_json, batch.size)

    def rows(self, record: InvocationRecord) -> int:
        """How many result rows the part must have to align."""
        return (record.row_count or 0) if self.by_rows else 1

    def of(self, record: InvocationRecord) -> Any:
        """The input index of the part's rows (``note`` is None: the index is known)."""
        if self.by_rows:
            start = record.row_start or 0
            return self.index[start:start + (record.row_count or 0)]
        return self.index[[record.batch_index or 0]]


def load_part(ctx: Context, batch: BatchRecord, record: InvocationRecord, **reader_kwargs: Any) -> pd.DataFrame:
    """One part's output, indexed like its input rows (the DataFrame's index, the dataset's row numbers, the
    payload's position) when it returned one row per input row; else renumbered, ``attrs["aligned"]`` False.

    Raises:
        InferenceFailed / InferenceExpired / ResultNotReady / SubmissionError / OutputMissing: no output.
    """
    frame = load_frame(ctx, record, **reader_kwargs)
    index = PartIndex(batch, [], rows=(record.row_start or 0) + (record.row_count or 0))
    if index.note is None and len(frame) == index.rows(record):
        return frame.set_axis(index.of(record), axis=0)
    frame.attrs["aligned"] = False
    frame.attrs["note"] = index.note or "the part did not return one row per input row"
    return frame


def _assemble(batch: BatchRecord, parts: Sequence[InvocationRecord], usable: list[InvocationRecord],
              frames: list[pd.DataFrame]) -> pd.DataFrame:
    import pandas as pd

    index = PartIndex(batch, parts)
    note = "some parts did not return one row per input row"
    if all(len(f) == index.rows(r) for f, r in zip(frames, usable, strict=True)):
        if index.note is None:
            return pd.concat([f.set_axis(index.of(r), axis=0) for f, r in zip(frames, usable, strict=True)])
        note = index.note
    combined = pd.concat(frames, ignore_index=True)
    combined.attrs["aligned"] = False  # concatenated in input order with a new index; attrs["note"] says why
    combined.attrs["note"] = note
    return combined


def head(ctx: Context, record: InvocationRecord, limit: int = 65536) -> tuple[bytes, str | None, int | None]:
    """The first ``limit`` bytes of a completed output (one ranged GET), the content type to
    decode it by, and the object's whole size (None when unknown): what a preview needs."""
    raise_unless_completed(record)
    if record.output_body is not None:
        body = record.output_body
        return body[:limit], record.output_content_type or record.accept, len(body)
    assert record.output_location is not None  # a COMPLETED row always has one
    location = S3Uri.parse(record.output_location)
    try:
        answer = ctx.aws.s3.get_object(Bucket=location.bucket, Key=location.key, Range=f"bytes=0-{max(0, limit - 1)}")
    except Exception as exc:
        if error_code(exc) in NOT_FOUND_CODES:
            raise OutputMissing(record.inference_id, record.output_location) from None
        if error_code(exc) == "InvalidRange":  # an empty object
            return b"", record.accept, 0
        raise as_error(exc, bucket=location.bucket, doing=f"Previewing the output of {record.inference_id}") from None
    content_type: str | None = answer.get("ContentType")
    if media_type(content_type) in _UNINFORMATIVE and record.accept:
        content_type = record.accept
    total = answer.get("ContentRange", "").rpartition("/")[2]
    body = answer["Body"].read(limit)
    return body, content_type, int(total) if total.isdigit() else answer.get("ContentLength", len(body))
