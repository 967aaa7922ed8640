"""A batch's results streamed into Parquet, in input order, without holding them all in memory:
``batch.write_results("scored.parquet" | "scored/" | "s3://bucket/scored/")``.

Parts are downloaded and decoded a window at a time (concurrently), converted to Arrow and
appended as row groups. A destination ending in ``.parquet`` is one file; anything else is a
folder (a Parquet dataset) of files of up to ``ROWS_PER_FILE`` rows. The schema is the unified
schema of the first window's outputs (integers widen to floats if any part had floats); a later
part that does not fit it (a missing or an extra column, a type that does not cast) is a
DecodeError naming the part. Nothing is visible at the destination until every part is written,
and an existing one is replaced only with ``overwrite=True`` (see ``destinations``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

from ..context import Context
from ..errors import DecodeError, OutputMissing, ValidationError
from ..records import BatchRecord, ErrorsMode, InvocationRecord
from .destinations import LocalDestination, S3Destination, open_destination, part_name
from .loading import check_errors_mode, completed_parts, load_frame

log = logging.getLogger(__name__)

WINDOW = 32
ROWS_PER_FILE = 1_000_000


class _Sink:
    """Row groups into one file, or into a folder of rolling files, through a destination that
    puts them in place only on commit()."""

    def __init__(self, destination: LocalDestination | S3Destination):
        self.destination = destination
        self.single = destination.single
        self.writer: Any = None
        self.stream: Any = None
        self.schema: Any = None
        self.files, self.rows_in_file, self.rows = 0, 0, 0

    def _open(self) -> None:
        import pyarrow.parquet as pq

        self.stream = self.destination.open(None if self.single else part_name(self.files))
        self.writer = pq.ParquetWriter(self.stream, self.schema)
        self.files += 1
        self.rows_in_file = 0

    def write(self, table: Any) -> None:
        if self.writer is None or (not self.single and self.rows_in_file >= ROWS_PER_FILE):
            self.close()
            self._open()
        self.writer.write_table(table)
        self.rows_in_file += table.num_rows
        self.rows += table.num_rows

    def close(self) -> None:
        """Finish the current file (its footer written, its stream closed)."""
        writer, stream, self.writer, self.stream = self.writer, self.stream, None, None
        if writer is not None:
            writer.close()
        if stream is not None:
            stream.close()

    def abandon(self) -> None:
        """Drop the current file after an error (what it held is discarded by the destination)."""
        try:
            self.close()
        except Exception as exc:
            log.debug("closing an abandoned output file: %s", exc)


def _unify(parts: Sequence[tuple[InvocationRecord, Any]]) -> Any:
    """The schema of the first window: each part's unified into the others' (integers widen to
    floats when a part had floats); a part whose columns cannot be merged is a DecodeError."""
    import pyarrow as pa

    schema = parts[0][1].schema
    for record, table in parts[1:]:
        try:
            schema = pa.unify_schemas([schema, table.schema], promote_options="permissive")
        except (pa.ArrowException, TypeError, ValueError) as exc:
            raise _misfit(record, exc) from None
    floats = {f.name for _, t in parts for f in t.schema if pa.types.is_floating(f.type)}
    fields = []
    for field in schema:
        if pa.types.is_integer(field.type) and field.name in floats:
            field = field.with_type(pa.float64())
        fields.append(field)
    return pa.schema(fields)


def _reason(exc: BaseException) -> str:
    text = str(exc.args[0]) if len(exc.args) > 1 else str(exc)  # pyarrow's conversion errors are tuples
    return (text.splitlines() or [""])[0][:200]


def _misfit(record: InvocationRecord, exc: BaseException | str) -> DecodeError:
    reason = exc if isinstance(exc, str) else _reason(exc)
    return DecodeError(f"The output of part {record.batch_index} ({record.inference_id}) does not fit the columns "
                       f"of the earlier parts ({reason}); write it with .result() or download() instead.")


def _table(record: InvocationRecord, frame: Any) -> Any:
    import pyarrow as pa

    frame = frame.rename(columns=str)  # SageMaker CSV outputs have numbered columns
    try:
        return pa.Table.from_pandas(frame, preserve_index=False)
    except (pa.ArrowException, TypeError, ValueError) as exc:
        raise DecodeError(f"The output of part {record.batch_index} ({record.inference_id}) cannot be written "
                          f"to Parquet ({_reason(exc)}); read it with .result() or download() instead.") from None


def _fit(record: InvocationRecord, table: Any, schema: Any) -> Any:
    import pyarrow as pa

    extra = [n for n in table.schema.names if n not in schema.names]
    if extra:
        raise _misfit(record, f"columns {extra} are not in the earlier parts")
    try:
        return table.select(schema.names).cast(schema)
    except (pa.ArrowException, KeyError, TypeError, ValueError) as exc:
        raise _misfit(record, exc) from None


def write(ctx: Context, batch: BatchRecord, parts: Sequence[InvocationRecord], dest: object,
          errors: ErrorsMode = "raise", *, overwrite: bool = False) -> str:
    """Write the parts' outputs to ``dest`` in input order; returns where it was written.

    Nothing is visible at ``dest`` until every part was written (see ``destinations``); on any
    error what this call wrote is removed and the previous content stays.

    Raises:
        ValidationError: a bad ``dest`` or ``errors``; an existing file, or a non-empty folder or
            prefix, without ``overwrite=True``; no part with a result.
        InferenceFailed, InferenceExpired, ResultNotReady, SubmissionError: a part has no result and
            ``errors="raise"`` (checked before anything is written).
        DecodeError: an output that is not a table, does not convert to Arrow, or does not fit the
            schema. OutputMissing. AwsError: S3 refused (a missing bucket...).
    """
    check_errors_mode(errors)
    destination = open_destination(ctx.aws, dest, overwrite=overwrite)  # checks only: nothing written yet
    usable = completed_parts(batch, parts, errors)
    if not usable:
        raise ValidationError("No part of this batch has a result yet: nothing to write.")
    _write(ctx, batch, usable, errors, destination)
    return os.fspath(dest)  # type: ignore[call-overload]


def _write(ctx: Context, batch: BatchRecord, usable: Sequence[InvocationRecord], errors: ErrorsMode,
           destination: LocalDestination | S3Destination) -> None:
    sink = _Sink(destination)
    skipped = 0
    try:
        for start in range(0, len(usable), WINDOW):
            window = usable[start:start + WINDOW]
            frames = list(ctx.pool.map(lambda r: _load(ctx, r, errors), window))
            tables = [(r, _table(r, f)) for r, f in zip(window, frames, strict=True) if f is not None]
            skipped += len(window) - len(tables)
            if sink.schema is None and tables:
                sink.schema = _unify(tables)
            for record, table in tables:
                sink.write(_fit(record, table, sink.schema))
        sink.close()
        if sink.files == 0:
            raise ValidationError("None of the parts' outputs could be read (removed from S3): nothing was written.")
        destination.commit()
    except BaseException:
        destination.cancel()
        sink.abandon()
        destination.discard()
        raise
    log.info("wrote %d rows of %s to %s (%d file(s), %d part(s) skipped)", sink.rows, batch.batch_id,
             destination, sink.files, skipped)


def _load(ctx: Context, record: InvocationRecord, errors: ErrorsMode) -> Any:
    try:
        return load_frame(ctx, record)
    except OutputMissing:
        if errors == "raise":
            raise
        return None
