"""Datasets bigger than memory: a Parquet or CSV file, folder or glob (local or ``s3://``), read
with ``pyarrow.dataset`` one record batch at a time and cut into requests of exactly
``rows_per_request`` rows (the last one shorter).

Everything that can be wrong with the source is found before the first request is sent: a
missing path, no file matching, an unsupported file type, a column that does not exist in any file,
columns whose types differ between files beyond widening, and (counting the rows is a full streaming
pass for CSV) a ragged or unreadable row. The schema is decided once, from every file (not the first).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from ..context import Context
from ..errors import ValidationError
from . import dataset_files

READAHEAD_BATCHES = 2
FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv"}


@dataclass
class OpenDataset:
    """A readable dataset and what is known about it before anything is sent."""

    dataset: Any            # pyarrow.dataset.Dataset
    columns: list[str] | None
    rows: int
    name: str               # for messages and progress


def _format_of(paths: Sequence[str], source: str) -> str:
    suffixes = {PurePosixPath(p).suffix.lower() for p in paths}
    known = {FORMATS[s] for s in suffixes if s in FORMATS}
    unknown = sorted(s or "(none)" for s in suffixes if s not in FORMATS)
    if unknown or len(known) != 1:
        found = ", ".join(unknown) if unknown else " and ".join(sorted(known))
        raise ValidationError(f"{source}: submit_dataset reads Parquet (.parquet) or CSV (.csv) files of one kind, "
                              f"not {found}.", parameter="source")
    return known.pop()


def _reason(exc: BaseException) -> str:
    """The reader's own words, without pyarrow's wrapping ("Error creating dataset ... Invalid: ...")."""
    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    for marker in ("CSV parse error", "Invalid: "):
        if marker in text:
            text = text[text.rindex(marker):].removeprefix("Invalid: ")
            break
    return text[:240]


def _widening_loses_range(own: Any, unified: Any) -> bool:
    """An integer column unified into an integer type that cannot hold all its values (pyarrow's
    permissive promotion makes uint64 + int64 an int64: a large value would fail half-way)."""
    import pyarrow as pa

    if not (pa.types.is_integer(own) and pa.types.is_integer(unified)) or own == unified:
        return False
    own_signed, unified_signed = pa.types.is_signed_integer(own), pa.types.is_signed_integer(unified)
    if own_signed and not unified_signed:
        return True
    return own.bit_width > unified.bit_width - (1 if unified_signed and not own_signed else 0)


def _unify(schemas: Sequence[tuple[str, Any]], wanted: list[str] | None, source: str) -> Any:
    """One schema for every file, decided before anything is read for sending: a column that only some
    files have is in it (null where missing); types widen as pyarrow's permissive promotion does (int32 →
    int64, int → float, null → anything). Columns that cannot be one column are refused here, naming the
    file, instead of failing half-way through the sending.

    Raises:
        ValidationError: the column, the two types and the file; nothing was sent.
    """
    import pyarrow as pa

    unified: Any = None
    seen: list[tuple[str, Any]] = []
    for path, own in schemas:
        if wanted is not None:
            own = pa.schema([own.field(n) for n in wanted if n in own.names])
        if unified is None:
            unified = own
            seen.append((path, own))
            continue
        try:
            unified = pa.unify_schemas([unified, own], promote_options="permissive")
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
            name, theirs, where = _conflict(seen, own)
            raise ValidationError(
                f"{source}: column {name!r} is {own.field(name).type} in {path} but {theirs} in {where}: they "
                "cannot be sent as one column (nothing was sent). Make the files agree, or leave the column out "
                "with columns=[...].", parameter="source") from None
        seen.append((path, own))
    for path, own in seen:
        for field in own:
            target = unified.field(field.name).type
            if _widening_loses_range(field.type, target):
                raise ValidationError(
                    f"{source}: column {field.name!r} is {field.type} in {path} but {target} elsewhere, which "
                    f"cannot hold every {field.type} value (nothing was sent). Make the files agree, or leave the "
                    "column out with columns=[...].", parameter="source")
    return unified


def _conflict(seen: Sequence[tuple[str, Any]], own: Any) -> tuple[str, Any, str]:
    """The first column of ``own`` that an earlier file holds as a type it cannot be unified with."""
    import pyarrow as pa

    for field in own:
        for path, earlier in seen:
            if field.name in earlier.names:
                try:
                    pa.unify_schemas([pa.schema([earlier.field(field.name)]), pa.schema([field])],
                                     promote_options="permissive")
                except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
                    return field.name, earlier.field(field.name).type, path
    name = own.names[0] if own.names else "?"
    return name, "another type", seen[0][0]


def check_csv_columns(opened: OpenDataset) -> None:
    """CSV holds flat values: a nested or binary column would reach the model as a Python repr.

    Raises:
        ValidationError: naming the column.
    """
    import pyarrow as pa

    for name in opened.columns or opened.dataset.schema.names:
        t = opened.dataset.schema.field(name).type
        if pa.types.is_nested(t) or pa.types.is_binary(t) or pa.types.is_large_binary(t):
            raise ValidationError(f"Column {name!r} holds {t} values, which text/csv cannot carry: choose other "
                                  "columns, or send JSON (content_type='application/json').", parameter="columns")


def check_source(source: object) -> str:
    """The dataset source as text, checked without reading anything.

    Raises:
        ValidationError: not a path, glob or s3:// URI.
    """
    if not isinstance(source, (str, os.PathLike)) or not os.fspath(source):
        raise ValidationError(f"submit_dataset needs a path, glob or s3:// URI, not {source!r}.", parameter="source")
    text = os.fspath(source)
    if not isinstance(text, str):
        raise ValidationError(f"submit_dataset needs a text path, not {source!r}.", parameter="source")
    if any(0xD800 <= ord(c) <= 0xDFFF for c in text):  # bytes that are not UTF-8, as os.fsdecode gives them
        raise ValidationError(f"{text!r} is not valid UTF-8 (a file or folder name in another encoding), which the "
                              "dataset reader cannot open: rename it.", parameter="source")
    return text


def open_dataset(ctx: Context, text: str, columns: Sequence[str] | None) -> OpenDataset:
    """Open and check the source ``text`` (see :func:`check_source`); counts its rows (a streaming pass
    over CSV, metadata for Parquet). ``columns`` is already checked (``options.parse``).

    Everything is decided here, once, for every file: the schema is unified across all of them
    (:func:`_unify`), hive partition folders (``year=2024/``) below a folder or a glob's literal
    folders are columns, and those are what ``columns`` may name.

    Raises:
        ValidationError: a missing path, no match, an unsupported file type, a missing column, columns
            that differ between files beyond widening, or a file that cannot be read (with the reader's
            first line); nothing has been sent.
    """
    import pyarrow as pa
    import pyarrow.dataset as pads

    wanted = list(columns) if columns is not None else None
    found = dataset_files.find(ctx, text)
    kind = _format_of(found.files, text)
    options = pads.FileSystemFactoryOptions(partition_base_dir=found.base or "")
    if found.base is not None:
        options.partitioning_factory = pads.HivePartitioning.discover(infer_dictionary=False)
    try:
        factory = pads.FileSystemDatasetFactory(
            found.filesystem, found.files, pads.ParquetFileFormat() if kind == "parquet" else pads.CsvFileFormat(),
            options)
        first = factory.finish()
        files = [(fragment.path, fragment.physical_schema) for fragment in first.get_fragments()]
        partitions = list(first.partitioning.schema) if first.partitioning is not None else []
    except (pa.ArrowInvalid, pa.ArrowTypeError, OSError) as exc:
        raise ValidationError(f"{text} cannot be read as {kind}: {_reason(exc)} (nothing was sent).",
                              parameter="source") from None
    names = list(dict.fromkeys([n for _, own in files for n in own.names] + [f.name for f in partitions]))
    if wanted is not None:
        missing = [c for c in wanted if c not in names]
        if missing:
            raise ValidationError(f"{text} has no column {missing[0]!r} (it has: {', '.join(names)}).",
                                  parameter="columns")
    schema = _unify(files, wanted, text)
    # Every partition field, chosen or not: a fragment's partition expression names them all.
    schema = pa.schema(list(schema) + [f for f in partitions if f.name not in schema.names])
    try:
        dataset = factory.finish(schema)
        # Parquet knows its row count; CSV is parsed once, streaming, which also finds ragged rows.
        if kind == "parquet":
            rows = dataset.count_rows()
        else:
            rows = sum(batch.num_rows for batch in dataset.to_batches(
                columns=wanted, batch_readahead=READAHEAD_BATCHES, fragment_readahead=1))
    except (pa.ArrowInvalid, pa.ArrowTypeError, OSError) as exc:
        raise ValidationError(f"{text} cannot be read: {_reason(exc)} (nothing was sent).",
                              parameter="source") from None
    if rows == 0:
        raise ValidationError(f"{text} has no rows: there is nothing to send.", parameter="source")
    return OpenDataset(dataset, wanted, rows, PurePosixPath(text.rstrip("/")).name or text)


def to_frame(table: Any, *, exact_integers: bool = True) -> Any:
    """A slice as a DataFrame whose values are the file's: integer columns stay integers when the slice
    has a null in them (pandas' nullable ``Int64``..., not float64: ``3`` stays ``3``, ids above 2**53 are
    not rounded). ``exact_integers=False`` keeps numpy's floats (for NPY, which has no nulls)."""
    import pandas as pd
    import pyarrow as pa

    if not exact_integers:
        return table.to_pandas()
    nullable = {pa.int8(): pd.Int8Dtype(), pa.int16(): pd.Int16Dtype(), pa.int32(): pd.Int32Dtype(),
                pa.int64(): pd.Int64Dtype(), pa.uint8(): pd.UInt8Dtype(), pa.uint16(): pd.UInt16Dtype(),
                pa.uint32(): pd.UInt32Dtype(), pa.uint64(): pd.UInt64Dtype()}
    holes = {f.type for f, column in zip(table.schema, table.columns, strict=True)
             if pa.types.is_integer(f.type) and column.null_count}
    return table.to_pandas(types_mapper=lambda t: nullable[t] if t in holes else None)


def _record_batches(opened: OpenDataset, batch_size: int, skip_rows: int = 0) -> Iterator[Any]:
    """The dataset's record batches in file order from row ``skip_rows`` on, one Parquet row group in
    memory at a time; whole row groups before ``skip_rows`` are passed over by their metadata, unread.

    Why not ``dataset.to_batches()``: its scanner reads ahead and pre-buffers whole files; measured
    on a 10M-row file it held ~190 MB more than reading row group by row group (28 MB).
    """
    import pyarrow.dataset as pads

    schema = opened.dataset.schema  # unified across files
    for fragment in opened.dataset.get_fragments():
        if isinstance(fragment, pads.ParquetFileFragment):
            for group in fragment.split_by_row_group():
                rows = group.row_groups[0].num_rows
                if skip_rows >= rows:
                    skip_rows -= rows
                    continue
                table = group.to_table(schema=schema, columns=opened.columns, use_threads=False)
                yield from table.slice(skip_rows).to_batches(max_chunksize=batch_size)
                skip_rows = 0
        else:
            for batch in fragment.to_batches(schema=schema, columns=opened.columns, batch_size=batch_size,
                                             batch_readahead=READAHEAD_BATCHES, use_threads=False):
                if skip_rows >= batch.num_rows:
                    skip_rows -= batch.num_rows
                    continue
                yield batch.slice(skip_rows)
                skip_rows = 0


def chunks(opened: OpenDataset, rows_per_request: int, start: int = 0) -> Iterator[tuple[int, Any]]:
    """(first row, pyarrow.Table of ``rows_per_request`` rows) in order, from request ``start`` on (its
    first row is ``start * rows_per_request``), reading one batch at a time."""
    import pyarrow as pa

    pending: list[Any] = []
    first = start * rows_per_request
    held = 0
    for batch in _record_batches(opened, max(rows_per_request, 1024), skip_rows=first):
        pending.append(batch)
        held += batch.num_rows
        while held >= rows_per_request:
            table = pa.Table.from_batches(pending)
            yield first, table.slice(0, rows_per_request)
            rest = table.slice(rows_per_request)
            first += rows_per_request
            held -= rows_per_request
            pending = rest.to_batches() if rest.num_rows else []
    if held:
        yield first, pa.Table.from_batches(pending)
