"""Model outputs to DataFrames by media type (SPEC §7); pure functions, never pickle or eval.

Anything that cannot be read raises ``DecodeError`` pointing to ``.raw()``; empty text outputs
give an empty DataFrame. NPY is read with ``allow_pickle=False``, and headers announcing Python
objects are refused before reading.
"""

from __future__ import annotations

import functools
import io
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..errors import DecodeError, ValidationError
from .mediatypes import CSV, JSON, JSONL_TYPES, NPY, PARQUET_TYPES, TEXT, charset, media_type
from .mediatypes import pandas_module as _pandas

if TYPE_CHECKING:  # pragma: no cover
    import pandas


# Outputs that are media or documents rather than tables (result() points to raw()/download()).
BINARY_FAMILIES = frozenset({"image", "audio", "video", "font", "model"})
BINARY_TYPES = frozenset({"application/pdf", "application/octet-stream", "binary/octet-stream", "application/zip",
                          "application/gzip", "application/x-tar"})

KNOWN_LIST_KEYS = ("predictions", "outputs", "results", "embeddings")


def _exact_integers(frame: pandas.DataFrame, values: Callable[[Any], list]) -> pandas.DataFrame:
    """Columns of JSON integers with a null among them as pandas' nullable Int64, not float64 (which
    would turn 3 into 3.0 and round ids above 2**53); ``values(column)`` gives a column's JSON values."""
    for column in frame.columns:
        if frame[column].dtype.kind != "f" or not frame[column].isna().any():
            continue
        given = values(column)
        if all(v is None or (isinstance(v, int) and not isinstance(v, bool)) for v in given) \
                and all(-2**63 <= v < 2**63 for v in given if v is not None):
            frame[column] = _pandas().array(given, dtype="Int64")
    return frame


def _rows(items: list) -> pandas.DataFrame:
    """Records -> rows, lists -> rows, scalars (or a mix) -> one "prediction" column."""
    if not items:
        return _pandas().DataFrame()
    if all(isinstance(item, dict) for item in items):
        return _exact_integers(_pandas().DataFrame.from_records(items), lambda c: [item.get(c) for item in items])
    if all(isinstance(item, list) for item in items):
        return _exact_integers(_pandas().DataFrame(items),
                               lambda c: [row[c] if c < len(row) else None for row in items])
    return _exact_integers(_pandas().DataFrame({"prediction": items}), lambda c: items)


def _frame_from_json(value: Any) -> pandas.DataFrame:
    if isinstance(value, list):
        return _rows(value)
    if not isinstance(value, dict):
        return _pandas().DataFrame({"prediction": [value]})
    if not value:
        return _pandas().DataFrame()
    lists = [key for key, item in value.items() if isinstance(item, list)]
    if len(lists) == 1 and lists[0] in KNOWN_LIST_KEYS:
        frame = _rows(value[lists[0]])
        frame.attrs.update({key: item for key, item in value.items() if key != lists[0]})
        return frame  # other (non-list) keys are metadata, kept in DataFrame.attrs
    if len(lists) == len(value) and len({len(value[key]) for key in lists}) == 1:
        return _exact_integers(_pandas().DataFrame(value), lambda c: value[c])  # a dict of equal-length columns
    return _pandas().DataFrame([value])  # one row; nested values stay object cells


def _text(body: bytes, content_type: str | None) -> str:
    encoding = charset(content_type)
    return body.decode("utf-8-sig" if encoding.lower().replace("_", "-") in ("utf-8", "utf8") else encoding)


def _decode_json(body: bytes, content_type: str | None) -> pandas.DataFrame:
    text = _text(body, content_type)
    return _frame_from_json(json.loads(text)) if text.strip() else _rows([])


def _decode_jsonl(body: bytes, content_type: str | None) -> pandas.DataFrame:
    items = []
    for number, line in enumerate(_text(body, content_type).splitlines(), 1):
        if line.strip():
            try:
                items.append(json.loads(line))
            except ValueError as exc:
                raise ValueError(f"line {number}: {exc}") from exc
    return _rows(items)


def _decode_text(body: bytes, content_type: str | None) -> pandas.DataFrame:
    return _pandas().DataFrame({"text": _text(body, content_type).splitlines()})


def _decode_npy(body: bytes, content_type: str | None) -> pandas.DataFrame:
    import numpy as np
    fmt = np.lib.format
    stream = io.BytesIO(body)
    if not body.startswith(fmt.MAGIC_PREFIX):
        raise ValueError("not an NPY file (no \\x93NUMPY header)")
    version = fmt.read_magic(stream)
    read_header = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
    if read_header(stream)[2].hasobject:  # refuse before any data is read; never unpickle
        raise DecodeError("This application/x-npy output holds Python objects; sm_async_nb never "
                          "unpickles (it could run code); use .raw() if you trust the model.")
    array = fmt.read_array(io.BytesIO(body), allow_pickle=False)
    if array.ndim > 2:
        raise DecodeError(f"This application/x-npy output has shape {array.shape} (more than 2 "
                          "dimensions) and does not fit a DataFrame; use .raw() and numpy.load.")
    if array.ndim == 2 or array.dtype.names:
        return _pandas().DataFrame(array)
    return _pandas().DataFrame({"prediction": array.reshape(-1)})


@functools.cache
def _rounds_floats() -> bool:
    """pandas before 3.0 reads floats to within one unit in the last place by default
    (0.30000000000000004 comes back as 0.3); 3.0 reads them exactly and deprecates the option."""
    return int(_pandas().__version__.split(".")[0]) < 3


def _decode_csv(body: bytes, content_type: str | None, *, csv_header: bool = False,
                **reader_kwargs: Any) -> pandas.DataFrame:
    if not body.strip():
        return _pandas().DataFrame()
    as_given = not reader_kwargs  # the caller chose no reader options: integers are kept exact here
    reader_kwargs.setdefault("encoding", charset(content_type))
    if _rounds_floats() and reader_kwargs.get("engine", "c") == "c":
        reader_kwargs.setdefault("float_precision", "round_trip")
    header = 0 if csv_header else None
    frame = _pandas().read_csv(io.BytesIO(body), header=header, **reader_kwargs)
    holes = [i for i, dtype in enumerate(frame.dtypes) if dtype.kind == "f" and frame.iloc[:, i].isna().any()]
    if as_given and holes:
        # read_csv makes an integer column with an empty cell float64: 3 becomes 3.0, ids above 2**53 are
        # rounded. Read those columns again with nullable types and keep the ones that are integers.
        again = _pandas().read_csv(io.BytesIO(body), header=header, usecols=holes, dtype_backend="numpy_nullable",
                                   **reader_kwargs)
        for position, column in zip(holes, again.columns, strict=True):
            if again[column].dtype.kind in "iu":
                frame[frame.columns[position]] = again[column].array
    return frame


def _decode_parquet(body: bytes, content_type: str | None, **reader_kwargs: Any) -> pandas.DataFrame:
    return _pandas().read_parquet(io.BytesIO(body), engine="pyarrow", **reader_kwargs)


_DECODERS: dict[str, Callable[..., pandas.DataFrame]] = {
    CSV: _decode_csv, JSON: _decode_json, NPY: _decode_npy, TEXT: _decode_text,
    **dict.fromkeys(JSONL_TYPES, _decode_jsonl), **dict.fromkeys(PARQUET_TYPES, _decode_parquet),
}
_TAKES_KWARGS = (_decode_csv, _decode_parquet)


def _decoder_for(media: str | None) -> Callable[..., pandas.DataFrame] | None:
    if media is None:
        return None
    if media in _DECODERS:
        return _DECODERS[media]
    if media.endswith("+json"):
        return _decode_json
    return _decode_text if media.startswith("text/") else None


def decode(body: bytes, content_type: str | None, *, csv_header: bool = False,
           **reader_kwargs: Any) -> pandas.DataFrame:
    """An output's bytes as a DataFrame, by its content type (SPEC §7).

    ``reader_kwargs`` go to ``pandas.read_csv`` / ``read_parquet`` (other types take none).
    """
    media = media_type(content_type)
    decoder = _decoder_for(media)
    shown = media or "untyped (no Content-Type)"
    if decoder is None:
        if media is not None and (media.split("/")[0] in BINARY_FAMILIES or media in BINARY_TYPES):
            raise DecodeError(f"This output is {media}, not a table: use .raw() for its bytes, or "
                              "batch.download(folder) to save outputs as files.")
        raise DecodeError(f"Cannot turn {shown} output into a DataFrame; use .raw() to get the bytes "
                          "(or pass accept=... to ask the model for CSV/JSON).")
    if reader_kwargs and decoder not in _TAKES_KWARGS:
        raise ValidationError(f"reader options {sorted(reader_kwargs)} apply only to text/csv and Parquet outputs, "
                              f"not {media}.", parameter="reader_kwargs")
    kwargs = dict(reader_kwargs, csv_header=csv_header) if decoder is _decode_csv else reader_kwargs
    try:
        return decoder(bytes(body), content_type, **kwargs)
    except DecodeError:
        raise
    except Exception as exc:  # corrupt data: pandas/pyarrow/json/numpy each raise their own types
        if isinstance(exc, TypeError) and reader_kwargs:  # most likely a bad reader option
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            raise ValidationError(f"The reader options {sorted(reader_kwargs)} do not fit this {media} output "
                                  f"({reason}): result() passes them to pandas' reader for the type.",
                                  parameter="reader_kwargs") from None
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise DecodeError(f"Cannot read this {media} output ({reason}); use .raw() to get "
                          "the bytes.") from exc
