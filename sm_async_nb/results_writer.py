"""A batch's results streamed into Parquet, in input order, without holding them all in memory:
``batch.write_results("scored.parquet" | "scored/" | "s3://bucket/scored/")``.

Parts are downloaded and decoded a window at a time (concurrently), converted to Arrow and
appended as row groups. A destination ending in ``.parquet`` is one file; anything else is a
folder (a Parquet dataset) of files of up to ``ROWS_PER_FILE`` rows. The schema is the unified
schema of the first window's outputs (integers widen to floats if any part had floats); a later
part that does not fit it is a clear error naming the part.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

from . import arrowio
from .context import Context
from .errors import DecodeError, OutputMissing, ValidationError
from .records import BatchRecord, ErrorsMode, InvocationRecord, Status
from .results import check_errors_mode, load_frame, raise_unless_completed

log = logging.getLogger(__name__)

WINDOW = 32
ROWS_PER_FILE = 1_000_000


class _Sink:
    """Row groups into one file, or into a folder of rolling files."""

    def __init__(self, filesystem: Any, path: str, single: bool):
        self.filesystem, self.path, self.single = filesystem, path, single
        self.writer: Any = None
        self.schema: Any = None
        self.files, self.rows_in_file, self.rows = 0, 0, 0

    def _open(self) -> None:
        import pyarrow.parquet as pq

        target = self.path if self.single else f"{self.path.rstrip('/')}/part-{self.files:05d}.parquet"
        if self.filesystem.type_name != "s3":  # S3 has no folders (creating one leaves a marker object)
            folder = target.rsplit("/", 1)[0]
            if folder:
                self.filesystem.create_dir(folder, recursive=True)
        self.writer = pq.ParquetWriter(target, self.schema, filesystem=self.filesystem)
        self.files += 1
        self.rows_in_file = 0

    def write(self, table: Any) -> None:
        if self.writer is None or (not self.single and self.rows_in_file >= ROWS_PER_FILE):
            if self.writer is not None:
                self.writer.close()
            self._open()
        self.writer.write_table(table)
        self.rows_in_file += table.num_rows
        self.rows += table.num_rows

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def _unify(tables: Sequence[Any]) -> Any:
    import pyarrow as pa

    schema = pa.unify_schemas([t.schema for t in tables], promote_options="permissive")
    fields = []
    floats = {f.name for t in tables for f in t.schema if pa.types.is_floating(f.type)}
    for field in schema:
        if pa.types.is_integer(field.type) and field.name in floats:
            field = field.with_type(pa.float64())
        fields.append(field)
    return pa.schema(fields)


def _table(frame: Any) -> Any:
    import pyarrow as pa

    frame = frame.rename(columns=str)  # SageMaker CSV outputs have numbered columns
    return pa.Table.from_pandas(frame, preserve_index=False)


def write(ctx: Context, batch: BatchRecord, parts: Sequence[InvocationRecord], dest: str | os.PathLike[str],
          errors: ErrorsMode = "raise") -> str:
    """Write the parts' outputs to ``dest`` in input order; returns where it was written.

    Raises:
        InferenceFailed, InferenceExpired, ResultNotReady, SubmissionError: a part has no result and
            ``errors="raise"`` (checked before anything is written).
        DecodeError: an output that is not a table, or does not fit the schema. OutputMissing.
    """
    import pyarrow as pa

    check_errors_mode(errors)
    usable = []
    for record in parts:
        if record.status is Status.COMPLETED:
            usable.append(record)
        elif errors == "raise":
            raise_unless_completed(record)
    if not usable:
        raise ValidationError("No part of this batch has a result yet: nothing to write.")
    text = os.fspath(dest)
    filesystem, path = arrowio.resolve(ctx.aws, text)
    sink = _Sink(filesystem, path, single=text.endswith(".parquet"))
    skipped = 0
    try:
        for start in range(0, len(usable), WINDOW):
            window = usable[start:start + WINDOW]
            frames = list(ctx.pool.map(lambda r: _load(ctx, r, errors), window))
            tables = [(r, _table(f)) for r, f in zip(window, frames, strict=True) if f is not None]
            skipped += len(window) - len(tables)
            if sink.schema is None and tables:
                sink.schema = _unify([t for _, t in tables])
            for record, table in tables:
                try:
                    sink.write(table.select(sink.schema.names).cast(sink.schema))
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError, KeyError) as exc:
                    reason = (str(exc).splitlines() or [""])[0][:200]
                    raise DecodeError(f"The output of part {record.batch_index} ({record.inference_id}) does not fit "
                                      f"the columns of the earlier parts ({reason}); write it with .result() or "
                                      "download() instead.") from None
    finally:
        sink.close()
    log.info("wrote %d rows of %s to %s (%d file(s), %d part(s) skipped)", sink.rows, batch.batch_id, text,
             sink.files, skipped)
    return text


def _load(ctx: Context, record: InvocationRecord, errors: ErrorsMode) -> Any:
    try:
        return load_frame(ctx, record)
    except OutputMissing:
        if errors == "raise":
            raise
        return None
