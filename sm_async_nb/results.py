"""Completed outputs into DataFrames: download concurrently, decode by content type, align to inputs."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .context import Context
from .errors import InferenceExpired, InferenceFailed, ResultNotReady, SubmissionError
from .payloads import OCTET, decode, media_type
from .records import ERRORS_MODES, BatchKind, BatchRecord, ErrorsMode, InvocationRecord, Status
from .s3uri import S3Uri

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
    assert record.output_location is not None  # a COMPLETED row always has one
    location = S3Uri.parse(record.output_location)
    answer = ctx.aws.s3.get_object(Bucket=location.bucket, Key=location.key)
    content_type: str | None = answer.get("ContentType")
    if media_type(content_type) in _UNINFORMATIVE and record.accept:
        content_type = record.accept
    return answer["Body"].read(), content_type


def load_frame(ctx: Context, record: InvocationRecord, **reader_kwargs: Any) -> pd.DataFrame:
    body, content_type = fetch(ctx, record)
    reader_kwargs.setdefault("csv_header", ctx.settings.csv_output_header)
    return decode(body, content_type, **reader_kwargs)


def batch_index_json(index: Any) -> str | None:
    """Keep a DataFrame's index in the journal when JSON can hold it exactly (so results align
    after a kernel restart); a default RangeIndex needs nothing."""
    import pandas as pd

    if isinstance(index, pd.RangeIndex) and index.start == 0 and index.step == 1:
        return None
    values = index.tolist()
    if not all(isinstance(v, (str, int, float, bool)) and not isinstance(v, type(None)) for v in values):
        return None
    return json.dumps({"name": index.name if isinstance(index.name, (str, int)) else None, "values": values})


def _input_index(batch: BatchRecord, total_rows: int) -> pd.Index:
    import pandas as pd

    if batch.index_json:
        stored = json.loads(batch.index_json)
        return pd.Index(stored["values"], name=stored["name"])
    return pd.RangeIndex(total_rows)


def check_errors_mode(errors: str) -> ErrorsMode:
    if errors not in ERRORS_MODES:
        raise ValueError(f"errors must be 'raise' or 'skip', not {errors!r}")
    return errors


def load_batch(ctx: Context, batch: BatchRecord, parts: Sequence[InvocationRecord],
               errors: ErrorsMode = "raise", **reader_kwargs: Any) -> pd.DataFrame:
    """One DataFrame in input order. When every part returned one row per input row, the index is
    the input's index (the DataFrame's, or the payload position); otherwise it is renumbered."""
    import pandas as pd

    check_errors_mode(errors)
    usable = []
    for record in parts:
        if record.status is Status.COMPLETED:
            usable.append(record)
        elif errors == "raise":
            raise_unless_completed(record)
    frames = list(ctx.pool.map(lambda r: load_frame(ctx, r, **reader_kwargs), usable))
    if not frames:
        return pd.DataFrame()
    by_rows = batch.kind is BatchKind.DATAFRAME
    expected = [r.row_count if by_rows else 1 for r in usable]
    if all(len(f) == n for f, n in zip(frames, expected, strict=True)):
        if by_rows:
            index = _input_index(batch, sum(r.row_count or 0 for r in parts))
            pieces = [index[(r.row_start or 0):(r.row_start or 0) + (r.row_count or 0)] for r in usable]
        else:
            pieces = [pd.Index([r.batch_index]) for r in usable]
        frames = [f.set_axis(idx, axis=0) for f, idx in zip(frames, pieces, strict=True)]
        return pd.concat(frames)
    combined = pd.concat(frames, ignore_index=True)
    combined.attrs["aligned"] = False
    return combined
