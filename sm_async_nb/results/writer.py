"""A batch's results streamed into Parquet, in input order, without holding them all in memory:
``batch.write_results("scored.parquet" | "scored/" | "s3://bucket/scored/")``.

Parts are downloaded and decoded a window at a time (concurrently), converted to Arrow and
appended as row groups. A destination ending in ``.parquet`` is one file; anything else is a
folder (a Parquet dataset) of files of up to ``ROWS_PER_FILE`` rows.

The schema is never frozen by the first parts: it starts as the first window's, unified, and a
later part that widens it (a field that was null so far, an integer column that turns float, a
column that only later parts have) starts the writing again with the wider schema, from the first
part; parts without a column get nulls there, as ``result()``'s concat does. A part whose columns
cannot be unified at all (text where others have numbers) is a DecodeError naming it.

The input index is written with the rows (pandas' ``__index_level_0__`` convention, restored as
the index by ``pd.read_parquet``): the DataFrame's index, the dataset's row numbers, or the
payload positions, so a file written with ``errors="skip"`` still joins back to its input. When a
part does not return one row per input row there is no index to keep, and none is written.

Nothing is visible at the destination until every part is written, and the commit never replaces
what appeared there meanwhile (see ``destinations``).
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
from .loading import PartIndex, check_errors_mode, completed_parts, load_frame

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


class _Widen(Exception):
    """A part does not fit what was decided so far: write again from the first part with ``schema`` (the
    unified schema so far; None: decide it again) and, when a part did not return one row per input row,
    without the index."""

    def __init__(self, schema: Any, with_index: bool):
        super().__init__("widen")
        self.schema, self.with_index = schema, with_index


def _merge(schema: Any, table_schema: Any) -> Any:
    """``schema`` unified with a part's (a column only some parts have is null in the others; integers
    widen to floats, null to any type, as pyarrow's permissive promotion does).

    Raises:
        pyarrow.ArrowException: the part's columns cannot be merged (a type that does not unify).
    """
    import pyarrow as pa

    if schema is None:
        return table_schema
    merged = pa.unify_schemas([schema, table_schema], promote_options="permissive")
    return merged.with_metadata(schema.metadata)  # pandas' metadata (the index columns) of the first part


def _conflict(schema: Any, table_schema: Any) -> str | None:
    """Which column of a part cannot be merged with the others', in words."""
    import pyarrow as pa

    for field in table_schema:
        if field.name in schema.names:
            theirs = schema.field(field.name)
            try:
                pa.unify_schemas([pa.schema([theirs]), pa.schema([field])], promote_options="permissive")
            except (pa.ArrowException, TypeError, ValueError):
                return f"column {field.name!r} is {field.type} here but {theirs.type} in the other parts"
    return None


def _reason(exc: BaseException) -> str:
    text = str(exc.args[0]) if len(exc.args) > 1 else str(exc)  # pyarrow's conversion errors are tuples
    return (text.splitlines() or [""])[0][:200]


def _misfit(record: InvocationRecord, exc: BaseException | str) -> DecodeError:
    reason = exc if isinstance(exc, str) else _reason(exc)
    return DecodeError(f"The output of part {record.batch_index} ({record.inference_id}) does not fit the columns "
                       f"of the other parts ({reason}); write it with .result() or download() instead.")


def _table(record: InvocationRecord, frame: Any, index: Any) -> Any:
    """A part's frame as Arrow, with the input rows it stands for as its index (None: no index kept)."""
    import pyarrow as pa

    frame = frame.rename(columns=str)  # SageMaker CSV outputs have numbered columns
    try:
        if index is None:
            return pa.Table.from_pandas(frame, preserve_index=False)
        return pa.Table.from_pandas(frame.set_axis(index, axis=0), preserve_index=True)
    except (pa.ArrowException, TypeError, ValueError) as exc:
        raise DecodeError(f"The output of part {record.batch_index} ({record.inference_id}) cannot be written "
                          f"to Parquet ({_reason(exc)}); read it with .result() or download() instead.") from None


def _fit(record: InvocationRecord, table: Any, schema: Any) -> Any:
    """The part's table with exactly ``schema``'s columns (those it lacks are null), cast to their types."""
    import pyarrow as pa

    try:
        columns = [table.column(f.name).cast(f.type) if f.name in table.schema.names
                   else pa.nulls(table.num_rows, f.type) for f in schema]
        return pa.Table.from_arrays(columns, schema=schema)
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
    _write(ctx, batch, parts, usable, errors, destination)
    return os.fspath(dest)  # type: ignore[call-overload]


def _write(ctx: Context, batch: BatchRecord, parts: Sequence[InvocationRecord], usable: Sequence[InvocationRecord],
           errors: ErrorsMode, destination: LocalDestination | S3Destination) -> None:
    """Write until what the parts need is known: a part that widens the schema (a field null so far, an
    integer that turns float, a column that appears later) or cannot keep the index starts the writing
    again with the wider decision. Each restart widens something, so there are a handful at most."""
    index = PartIndex(batch, parts)
    schema: Any = None
    with_index = index.note is None
    try:
        while True:
            try:
                sink, skipped = _write_once(ctx, usable, errors, destination, index if with_index else None, schema)
                break
            except _Widen as widen:
                log.info("write_results of %s starts again: %s", batch.batch_id,
                         "a part did not return one row per input row (no index)" if not widen.with_index
                         else "a later part widened the columns")
                schema, with_index = widen.schema, widen.with_index and with_index
                destination.reset()
        destination.commit()
    except BaseException:
        destination.cancel()
        destination.discard()
        raise
    log.info("wrote %d rows of %s to %s (%d file(s), %d part(s) skipped)", sink.rows, batch.batch_id,
             destination, sink.files, skipped)


def _write_once(ctx: Context, usable: Sequence[InvocationRecord], errors: ErrorsMode,
                destination: LocalDestination | S3Destination, index: PartIndex | None, schema: Any
                ) -> tuple[_Sink, int]:
    """One pass over the parts with ``schema`` (None: the first window's, unified).

    Raises:
        _Widen: a part needs a wider schema, or cannot keep the index; nothing of this pass is kept.
    """
    import pyarrow as pa

    sink = _Sink(destination)
    skipped = 0
    try:
        for start in range(0, len(usable), WINDOW):
            window = usable[start:start + WINDOW]
            frames = list(ctx.pool.map(lambda r: _load(ctx, r, errors), window))
            loaded = [(r, f) for r, f in zip(window, frames, strict=True) if f is not None]
            skipped += len(window) - len(loaded)
            if index is not None and any(len(f) != index.rows(r) for r, f in loaded):
                if sink.writer is not None:  # rows already written with their index: write them again without,
                    raise _Widen(None, with_index=False)  # and decide the schema again (it held the index)
                index = None  # found before anything was written: go on without
            tables = [(r, _table(r, f, None if index is None else index.of(r))) for r, f in loaded]
            wanted = schema
            for record, table in tables:
                try:
                    wanted = _merge(wanted, table.schema)
                except (pa.ArrowException, TypeError, ValueError) as exc:
                    raise _misfit(record, _conflict(wanted, table.schema) or exc) from None
            if sink.schema is None and wanted is not None:
                sink.schema = schema = wanted  # the first window decides, unless a later part widens it
            elif wanted is not None and not wanted.equals(schema):
                raise _Widen(wanted, with_index=index is not None)
            for record, table in tables:
                sink.write(_fit(record, table, sink.schema))
        sink.close()
    except BaseException:
        sink.abandon()
        raise
    if sink.files == 0:
        raise ValidationError("None of the parts' outputs could be read (removed from S3): nothing was written.")
    return sink, skipped


def _load(ctx: Context, record: InvocationRecord, errors: ErrorsMode) -> Any:
    try:
        return load_frame(ctx, record)
    except OutputMissing:
        if errors == "raise":
            raise
        return None
