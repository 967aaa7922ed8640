"""Payloads to bytes: pure functions, no network or S3 I/O (decoding is ``decoding.py``).

``encode`` picks a serialisation by payload type and by the media type of the content type
(given, or inferred as in ``CONTENT_TYPE_RULES``); an explicit content type is kept exactly as
given. ``str``/``bytes`` are sent as they are, whatever the content type. All text we produce is
UTF-8. JSON is compact; NaN/±inf become ``null`` (as pandas writes them), numpy scalars/arrays
become numbers/lists, dates ISO 8601 strings. A Series is sent as a one-column DataFrame (so
CSV is one value per line and JSON a list of one-item rows). A ``pathlib.Path`` is streamed
from disk: only its size and SHA-256 are computed here. Empty (0-byte) or over-1-GB payloads are
refused before anything is uploaded. NPY is always written with ``allow_pickle=False``.

pandas/numpy/pyarrow are imported lazily: a payload can only be a DataFrame or an ndarray if
its library is already in ``sys.modules``, so ``import sm_async_nb.payloads`` stays cheap.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import mimetypes
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Any, BinaryIO

from ..contract.serving import DEFAULT_JSON_FORMAT, JSON_FORMATS
from ..errors import ValidationError
from .mediatypes import CSV, JSON, JSONL_TYPES, NPY, OCTET, PARQUET_TYPES, TEXT, media_type
from .mediatypes import pandas_module as _pandas

if TYPE_CHECKING:  # pragma: no cover
    import pandas


MAX_S3_PAYLOAD = 1_000_000_000  # SageMaker's limit for an S3 input object (1 GB)


CONTENT_TYPE_RULES = """\
Content type, when not given (an explicit content type is always sent exactly as given):
- str: application/json if, after leading whitespace, it starts with { or [ and parses as
  JSON; otherwise default_content_type (text/csv). The text is sent byte-for-byte as UTF-8.
- bytes / bytearray / memoryview: application/octet-stream, sent as they are.
- dict / list / tuple: application/json (with a JSON Lines type: one line per list item).
- pandas DataFrame / Series: text/csv without header or index (csv_header=True adds the
  header); also application/json (a list of rows, or as json_format says: records, split,
  instances, inputs), application/jsonlines (one object per row), Parquet
  (application/x-parquet) or application/x-npy when asked for.
- numpy array: application/x-npy (never pickled); 1-D/2-D arrays also as text/csv or JSON.
- pathlib.Path: streamed from disk; by suffix: .csv text/csv, .json application/json,
  .jsonl/.ndjson application/jsonlines, .parquet application/x-parquet, .npy
  application/x-npy, .txt text/plain, else the system's MIME table, else
  application/octet-stream.
Payloads must hold 1 byte to 1 GB."""

_SUFFIXES = {CSV: ".csv", JSON: ".json", NPY: ".npy", TEXT: ".txt", OCTET: ".bin",
             **dict.fromkeys(JSONL_TYPES, ".jsonl"), **dict.fromkeys(PARQUET_TYPES, ".parquet")}
_PATH_TYPES = {".csv": CSV, ".json": JSON, ".jsonl": JSONL_TYPES[0], ".ndjson": JSONL_TYPES[0],
               ".parquet": PARQUET_TYPES[0], ".npy": NPY, ".txt": TEXT}
_SAFE_SUFFIX = re.compile(r"^\.[a-z0-9]{1,12}$")
_UNSUPPORTED = ("Cannot send a {} payload: use str, bytes, dict/list, a pandas DataFrame/Series, "
                "a numpy array or a pathlib.Path.")
_CHUNK = 1 << 20


@dataclass(frozen=True)
class TableLayout:
    """How a table is written in text formats: the CSV header row, and the JSON document (SPEC §19)."""

    csv_header: bool = False
    json_format: str = DEFAULT_JSON_FORMAT


@dataclass(frozen=True)
class EncodedPayload:
    """Bytes ready to upload: in memory (``body``) or a file streamed from disk (``path``)."""

    content_type: str
    size: int
    sha256: str  # lets a retried submission recognise the same input
    suffix: str
    body: bytes | None = None
    path: Path | None = None

    def open(self) -> BinaryIO:
        """A fresh binary stream of the payload (the caller closes it)."""
        if self.path is not None:
            return self.path.open("rb")
        return io.BytesIO(self.body or b"")


def suffix_for(content_type: str) -> str:
    """A file extension for the input object's name, e.g. ``.csv``; ``.bin`` when unknown."""
    media = media_type(content_type) or OCTET
    suffix = _SUFFIXES.get(media) or mimetypes.guess_extension(media) or ".bin"
    return suffix if _SAFE_SUFFIX.match(suffix) else ".bin"


def _library_type(module: str, *names: str) -> tuple[type, ...]:
    """Classes of a library only if it was imported: otherwise no payload can be one of them."""
    lib = sys.modules.get(module)
    return tuple(getattr(lib, name) for name in names) if lib is not None else ()


def _kind(payload: Any) -> str:
    if isinstance(payload, str):
        return "text"
    if isinstance(payload, (bytes, bytearray, memoryview)):
        return "bytes"
    if isinstance(payload, PurePath):
        return "path"
    if isinstance(payload, (dict, list, tuple)):
        return "json"
    if isinstance(payload, _library_type("pandas", "DataFrame", "Series")):
        return "frame"
    if isinstance(payload, _library_type("numpy", "ndarray")):
        return "array"
    raise ValidationError(_UNSUPPORTED.format(type(payload).__name__), parameter="payload")


def _looks_like_json(text: str) -> bool:
    if text.lstrip()[:1] not in ("{", "["):
        return False
    try:
        json.loads(text, parse_constant=_reject_constant)  # strict: no NaN/Infinity
    except ValueError:
        return False
    return True


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def infer_content_type(payload: Any, *, default_content_type: str = CSV) -> str:
    """The content type ``encode`` uses when none is given (see ``CONTENT_TYPE_RULES``)."""
    kind = _kind(payload)
    if kind == "text":
        return JSON if _looks_like_json(payload) else default_content_type
    if kind == "path":
        suffix = PurePath(payload).suffix.lower()
        if suffix in _PATH_TYPES:
            return _PATH_TYPES[suffix]
        guessed, encoding = mimetypes.guess_type(PurePath(payload).name, strict=False)
        return guessed if guessed and not encoding else OCTET  # .csv.gz is gzip bytes, not CSV
    return {"bytes": OCTET, "json": JSON, "frame": CSV, "array": NPY}[kind]


# -- text -------------------------------------------------------------------------------------

def _utf8(text: str, what: str = "The text") -> bytes:
    """Text we send, as UTF-8: the one place any payload's text becomes bytes.

    Raises:
        ValidationError: a lone surrogate (e.g. from a badly decoded file), which UTF-8 cannot carry.
    """
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise _not_unicode(exc, what) from None


def _not_unicode(exc: UnicodeEncodeError, what: str) -> ValidationError:
    where = f" at position {exc.start}" if what == "The text" else ""
    return ValidationError(f"{what} has a character that is not valid Unicode ({exc.object[exc.start]!r}{where}, a "
                           "lone surrogate), so it cannot be sent as UTF-8: fix the text, or send bytes.",
                           parameter="payload")


# -- JSON -------------------------------------------------------------------------------------

def _json_default(obj: Any) -> Any:
    """Serialise numpy and pandas values the way a data scientist would expect."""
    pd = sys.modules.get("pandas")
    if pd is not None and (obj is pd.NA or obj is pd.NaT):
        return None
    if isinstance(obj, (datetime, date, time)):
        return obj.isoformat()
    if isinstance(obj, _library_type("numpy", "ndarray")):
        return obj.tolist()  # type: ignore[attr-defined]
    if isinstance(obj, _library_type("numpy", "generic")):
        return obj.item()  # type: ignore[attr-defined]
    raise TypeError(obj)


def _finite(obj: Any) -> Any:
    """A copy with NaN/±inf as None: JSON has no such numbers (strict parsers reject them)."""
    if isinstance(obj, dict):
        return {key: _finite(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(value) for value in obj]
    if isinstance(obj, _library_type("numpy", "ndarray", "generic")):
        return _finite(obj.tolist())  # type: ignore[attr-defined]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def _dumps(obj: Any) -> str:
    options: dict[str, Any] = {"separators": (",", ":"), "ensure_ascii": False, "allow_nan": False,
                                   "default": _json_default}
    try:
        try:
            return json.dumps(obj, **options)
        except ValueError:  # NaN or inf somewhere: retry with them as null
            return json.dumps(_finite(obj), **options)
    except TypeError as exc:
        culprit = exc.args[0] if exc.args else None
        what = (f"it holds a {type(culprit).__name__} value, which is not JSON-serialisable"
                if not isinstance(culprit, str) else culprit)
        problem: Exception = exc
    except (ValueError, RecursionError) as exc:
        what, problem = "it is circular or nested too deeply", exc
    raise ValidationError(f"Cannot send the payload as JSON: {what}; convert it to str, numbers, "
                          "lists and dicts.", parameter="payload") from problem


def _json_lines(items: Any) -> bytes:
    return _utf8("".join(_dumps(item) + "\n" for item in items), "The payload")


def _to_json(payload: Any, media: str, layout: TableLayout) -> bytes:
    if media in JSONL_TYPES:
        return _json_lines(payload if isinstance(payload, (list, tuple)) else [payload])
    if media in (CSV, TEXT, NPY, *PARQUET_TYPES):
        raise ValidationError(f"A {type(payload).__name__} payload is sent as JSON, not {media}: "
                              "use application/json, or pass a DataFrame or a str instead.",
                              parameter="content_type")
    return _utf8(_dumps(payload), "The payload")


# -- DataFrames and arrays --------------------------------------------------------------------

def _frame_parquet(df: pandas.DataFrame, layout: TableLayout) -> bytes:
    buffer = io.BytesIO()  # Parquet needs string column names; the index is not written
    df.rename(columns=str).to_parquet(buffer, engine="pyarrow", index=False)
    return buffer.getvalue()


def _array_npy(array: Any, layout: TableLayout) -> bytes:
    if array.dtype.hasobject:
        raise ValidationError("Cannot send an array of Python objects (dtype object, e.g. strings or "
                              "mixed columns) as application/x-npy: that needs pickle, which "
                              "sm_async_nb never uses. Convert it to a numeric dtype or send it "
                              "as text/csv or application/json.", parameter="payload")
    buffer = io.BytesIO()
    sys.modules["numpy"].save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def _tabular(array: Any, media: str) -> Any:
    if array.dtype.kind not in "biufU" or array.ndim not in (1, 2):
        raise ValidationError(f"Only 1-D or 2-D numeric arrays can be sent as {media}; this one has "
                              f"shape {array.shape} and dtype {array.dtype}: use application/x-npy.",
                              parameter="payload")
    return array


def _frame_json(df: pandas.DataFrame, layout: TableLayout) -> bytes:
    """A DataFrame as the JSON document ``layout.json_format`` names (``contract.serving``). Our own
    JSON rather than ``df.to_json``, which rounds floats to 10 significant digits."""
    rows = df.to_numpy(dtype=object).tolist()
    document: Any = rows
    if layout.json_format == "split":  # pandas' orient="split" without the index, as MLflow reads it
        document = {"dataframe_split": {"columns": df.columns.tolist(), "data": rows}}
    elif layout.json_format == "instances":
        document = {"instances": rows}
    elif layout.json_format == "inputs":  # one column (texts, for a pipeline) is a flat list
        document = {"inputs": [row[0] for row in rows] if df.shape[1] == 1 else rows}
    return _utf8(_dumps(document), "The DataFrame")


Encoder = Callable[[Any, TableLayout], bytes]
_FRAME_ENCODERS: dict[str, Encoder] = {
    CSV: lambda df, layout: _utf8(df.to_csv(index=False, header=layout.csv_header, lineterminator="\n"),
                                  "The DataFrame"),
    JSON: _frame_json,
    NPY: lambda df, layout: _array_npy(df.to_numpy(), layout),
    **dict.fromkeys(JSONL_TYPES, lambda df, layout: _json_lines(df.to_dict(orient="records"))),
    **dict.fromkeys(PARQUET_TYPES, _frame_parquet),
}
_ARRAY_ENCODERS: dict[str, Encoder] = {
    NPY: _array_npy,
    CSV: lambda array, layout: _FRAME_ENCODERS[CSV](_pandas().DataFrame(_tabular(array, CSV)), TableLayout()),
    JSON: lambda array, layout: _utf8(_dumps(_tabular(array, JSON).tolist()), "The array"),
}


def _by_media(registry: dict[str, Encoder], what: str, payload: Any, media: str,
              layout: TableLayout) -> bytes:
    encoder = registry.get(media)
    if encoder is None:
        raise ValidationError(f"Cannot send {what} as {media}: use one of "
                              f"{', '.join(registry)}.", parameter="content_type")
    try:
        return encoder(payload, layout)
    except ValidationError:
        raise
    except UnicodeEncodeError as exc:  # text that pyarrow or numpy turned into UTF-8 on the way
        raise _not_unicode(exc, f"The {what.split(' ', 1)[-1]}") from None
    except (ValueError, TypeError, NotImplementedError, ImportError) as exc:  # e.g. from pyarrow
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise ValidationError(f"Cannot write {what} as {media} ({reason}): convert the offending "
                              "values or choose another content type.", parameter="payload") from exc


# Formats that key values by column name: duplicate names would silently lose columns.
_KEYED = frozenset({*JSONL_TYPES, *PARQUET_TYPES})


def _encode_frame(payload: Any, media: str, layout: TableLayout) -> bytes:
    df = payload.to_frame() if payload.ndim == 1 else payload
    if len(df) == 0:
        raise ValidationError("The DataFrame has no rows: SageMaker rejects empty inputs.",
                              parameter="payload")
    duplicated = sorted({str(c) for c in df.columns[df.columns.duplicated()]})
    if duplicated and media in _KEYED:
        raise ValidationError(f"The DataFrame has duplicate column names ({', '.join(duplicated[:5])}), which "
                              f"{media} keys by name, so columns would be lost: rename them, or send text/csv "
                              "or application/json (rows as lists).", parameter="payload")
    return _by_media(_FRAME_ENCODERS, "a DataFrame", df, media, layout)




_ENCODERS: dict[str, Callable[[Any, str, TableLayout], bytes]] = {
    "text": lambda text, media, layout: _utf8(text),
    "bytes": lambda data, media, layout: data.tobytes() if isinstance(data, memoryview) else bytes(data),
    "json": _to_json,
    "frame": _encode_frame,
    "array": lambda array, media, layout: _by_media(_ARRAY_ENCODERS, "a numpy array", array, media, layout),
}


def check_json_format(json_format: Any, content_type: str | None = None) -> str:
    """``json_format`` as given, if it names a layout and ``content_type`` (when known) is JSON.

    Raises:
        ValidationError: an unknown name, or a content type that is not application/json.
    """
    if not isinstance(json_format, str) or json_format not in JSON_FORMATS:
        raise ValidationError(f"json_format must be one of {', '.join(JSON_FORMATS)}, not {json_format!r}.",
                              parameter="json_format")
    if content_type is not None and media_type(content_type) != JSON:
        raise ValidationError(f"json_format={json_format!r} lays out DataFrames sent as application/json, not "
                              f"{content_type}: pass content_type='application/json' (or leave json_format out).",
                              parameter="json_format")
    return json_format


def encode(payload: Any, content_type: str | None = None, *, default_content_type: str = CSV,
           csv_header: bool = False, json_format: str | None = None,
           default_json_format: str = DEFAULT_JSON_FORMAT) -> EncodedPayload:
    """Turn a payload into bytes (or a streamed file) plus what the upload needs to know.

    Args:
        payload: see ``CONTENT_TYPE_RULES``.
        content_type: sent exactly as given; inferred when None.
        default_content_type: for str payloads that are not JSON.
        csv_header: write a header row when a table is sent as text/csv.
        json_format: asked for by the caller: the payload must be a DataFrame (or Series) sent as
            application/json (``contract.serving.JSON_FORMATS``).
        default_json_format: the layout of DataFrames sent as application/json otherwise (a setting).

    Raises:
        ValidationError: the payload cannot be sent as asked; nothing was sent.
    """
    kind = _kind(payload)
    content_type = content_type or infer_content_type(payload, default_content_type=default_content_type)
    if json_format is not None:
        check_json_format(json_format)
        if kind != "frame":
            raise ValidationError(f"json_format={json_format!r} lays out DataFrames (and Series); a "
                                  f"{type(payload).__name__} payload is sent as it is: leave json_format out.",
                                  parameter="json_format")
        check_json_format(json_format, content_type)
    if kind == "path":
        return _encode_path(Path(payload).expanduser(), content_type)
    layout = TableLayout(csv_header, json_format or default_json_format)
    body = _ENCODERS[kind](payload, media_type(content_type) or OCTET, layout)
    _check_size(len(body), "The payload")
    return EncodedPayload(content_type=content_type, size=len(body), suffix=suffix_for(content_type),
                          sha256=hashlib.sha256(body).hexdigest(), body=body)


def _check_size(size: int, what: str) -> None:
    if size == 0:
        raise ValidationError(f"{what} is empty (0 bytes): SageMaker rejects empty inputs; "
                              "send at least one byte.", parameter="payload")
    if size > MAX_S3_PAYLOAD:
        raise ValidationError(f"{what} is {size:,} bytes, over SageMaker's 1 GB limit for "
                              "asynchronous inputs: split it (e.g. submit_dataframe).",
                              parameter="payload")


def _encode_path(path: Path, content_type: str) -> EncodedPayload:
    """Size from stat and SHA-256 by streaming in chunks: the file is never read whole."""
    try:
        if path.is_dir():
            raise ValidationError(f"{path} is a directory, not a file: pass a file's path.",
                                  parameter="payload")
        size = path.stat().st_size
        _check_size(size, f"The file {path}")
        digest, seen = hashlib.sha256(), 0
        with path.open("rb") as stream:
            while chunk := stream.read(_CHUNK):
                digest.update(chunk)
                seen += len(chunk)
    except FileNotFoundError:
        raise ValidationError(f"{path} does not exist: check the path.", parameter="payload") from None
    except OSError as exc:
        raise ValidationError(f"{path} cannot be read ({exc.strerror or exc}): check its permissions.",
                              parameter="payload") from None
    if seen != size:
        raise ValidationError(f"{path} changed while it was read: try again once it is written.",
                              parameter="payload")
    suffix = path.suffix.lower()
    return EncodedPayload(content_type=content_type, size=size, sha256=digest.hexdigest(),
                          suffix=suffix if _SAFE_SUFFIX.match(suffix) else suffix_for(content_type),
                          path=path)
