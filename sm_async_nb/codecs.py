"""Payloads to bytes and model outputs to DataFrames: pure functions, no network or S3 I/O.

Encoding (``encode``) picks a serialisation by payload type and by the media type of the
content type (given, or inferred as in ``CONTENT_TYPE_RULES``); an explicit content type is
kept exactly as given. ``str``/``bytes`` are sent as they are, whatever the content type.
All text we produce is UTF-8. JSON is compact; NaN/±inf become ``null`` (as pandas writes
them), numpy scalars/arrays become numbers/lists, dates ISO 8601 strings. A Series is sent as
a one-column DataFrame (so CSV is one value per line and JSON a list of one-item rows).
A ``pathlib.Path`` is streamed from disk: only its size and SHA-256 are computed here.
Empty (0-byte) or over-1-GB payloads are refused before anything is uploaded.

Decoding (``decode``) follows SPEC §7 by the output's media type; anything it cannot read
raises ``DecodeError`` pointing to ``.raw()``. Empty text outputs give an empty DataFrame.
Security: nothing is ever evaluated, and NPY is always written and read with
``allow_pickle=False``; NPY headers announcing Python objects are refused before reading.

pandas/numpy/pyarrow are imported lazily: a payload can only be a DataFrame or an ndarray if
its library is already in ``sys.modules``, so ``import sm_async_nb.codecs`` stays cheap.
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

from .errors import DecodeError, ValidationError

if TYPE_CHECKING:  # pragma: no cover
    import pandas

MAX_S3_PAYLOAD = 1_000_000_000  # SageMaker's limit for an S3 input object (1 GB)

CSV, JSON, NPY, TEXT, OCTET = "text/csv", "application/json", "application/x-npy", "text/plain", \
    "application/octet-stream"
JSONL_TYPES = ("application/jsonlines", "application/x-jsonlines", "application/x-ndjson")
PARQUET_TYPES = ("application/x-parquet", "application/parquet", "application/vnd.apache.parquet")

CONTENT_TYPE_RULES = """\
Content type, when not given (an explicit content type is always sent exactly as given):
- str: application/json if, after leading whitespace, it starts with { or [ and parses as
  JSON; otherwise default_content_type (text/csv). The text is sent byte-for-byte as UTF-8.
- bytes / bytearray / memoryview: application/octet-stream, sent as they are.
- dict / list / tuple: application/json (with a JSON Lines type: one line per list item).
- pandas DataFrame / Series: text/csv without header or index (csv_header=True adds the
  header); also application/json (list of rows), application/jsonlines (one object per row),
  Parquet (application/x-parquet) or application/x-npy when asked for.
- numpy array: application/x-npy (never pickled); 1-D/2-D arrays also as text/csv or JSON.
- pathlib.Path: streamed from disk; by suffix: .csv text/csv, .json application/json,
  .jsonl/.ndjson application/jsonlines, .parquet application/x-parquet, .npy
  application/x-npy, .txt text/plain, else the system's MIME table, else
  application/octet-stream.
Payloads must hold 1 byte to 1 GB."""

_SUFFIXES = {CSV: ".csv", JSON: ".json", NPY: ".npy", TEXT: ".txt", OCTET: ".bin",
             **{t: ".jsonl" for t in JSONL_TYPES}, **{t: ".parquet" for t in PARQUET_TYPES}}
_PATH_TYPES = {".csv": CSV, ".json": JSON, ".jsonl": JSONL_TYPES[0], ".ndjson": JSONL_TYPES[0],
               ".parquet": PARQUET_TYPES[0], ".npy": NPY, ".txt": TEXT}
_SAFE_SUFFIX = re.compile(r"^\.[a-z0-9]{1,12}$")
_UNSUPPORTED = ("Cannot send a {} payload: use str, bytes, dict/list, a pandas DataFrame/Series, "
                "a numpy array or a pathlib.Path.")
_CHUNK = 1 << 20


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
        return io.BytesIO(self.body) if self.path is None else self.path.open("rb")


def media_type(content_type: str | None) -> str | None:
    """The bare, lower-case media type: ``"Text/CSV; charset=utf-8"`` -> ``"text/csv"``."""
    bare = (content_type or "").split(";", 1)[0].strip().lower()
    return bare or None


def _charset(content_type: str | None) -> str:
    match = re.search(r";\s*charset\s*=\s*\"?([\w.:-]+)", content_type or "", re.IGNORECASE)
    return match.group(1) if match else "utf-8"


def suffix_for(content_type: str) -> str:
    """A file extension for the input object's name, e.g. ``.csv``; ``.bin`` when unknown."""
    media = media_type(content_type) or OCTET
    suffix = _SUFFIXES.get(media) or mimetypes.guess_extension(media) or ".bin"
    return suffix if _SAFE_SUFFIX.match(suffix) else ".bin"


def _pandas() -> Any:
    import pandas  # lazily: importing this module must stay cheap

    return pandas


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
    if not text.lstrip()[:1] in ("{", "["):
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


# -- JSON -------------------------------------------------------------------------------------

def _json_default(obj: Any) -> Any:
    """Serialise numpy and pandas values the way a data scientist would expect."""
    pd = sys.modules.get("pandas")
    if pd is not None and (obj is pd.NA or obj is pd.NaT):
        return None
    if isinstance(obj, (datetime, date, time)):
        return obj.isoformat()
    if isinstance(obj, _library_type("numpy", "ndarray")):
        return obj.tolist()
    if isinstance(obj, _library_type("numpy", "generic")):
        return obj.item()
    raise TypeError(obj)


def _finite(obj: Any) -> Any:
    """A copy with NaN/±inf as None: JSON has no such numbers (strict parsers reject them)."""
    if isinstance(obj, dict):
        return {key: _finite(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(value) for value in obj]
    if isinstance(obj, _library_type("numpy", "ndarray", "generic")):
        return _finite(obj.tolist())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def _dumps(obj: Any) -> str:
    options: dict[str, Any] = dict(separators=(",", ":"), ensure_ascii=False, allow_nan=False,
                                   default=_json_default)
    try:
        try:
            return json.dumps(obj, **options)
        except ValueError:  # NaN or inf somewhere: retry with them as null
            return json.dumps(_finite(obj), **options)
    except TypeError as exc:
        culprit = exc.args[0] if exc.args else None
        what = (f"it holds a {type(culprit).__name__} value, which is not JSON-serialisable"
                if not isinstance(culprit, str) else culprit)
        problem = exc
    except (ValueError, RecursionError) as exc:
        what, problem = "it is circular or nested too deeply", exc
    raise ValidationError(f"Cannot send the payload as JSON: {what}; convert it to str, numbers, "
                          "lists and dicts.", parameter="payload") from problem


def _json_lines(items: Any) -> bytes:
    return "".join(_dumps(item) + "\n" for item in items).encode()


def _to_json(payload: Any, media: str, csv_header: bool) -> bytes:
    if media in JSONL_TYPES:
        return _json_lines(payload if isinstance(payload, (list, tuple)) else [payload])
    if media in (CSV, TEXT, NPY, *PARQUET_TYPES):
        raise ValidationError(f"A {type(payload).__name__} payload is sent as JSON, not {media}: "
                              "use application/json, or pass a DataFrame or a str instead.",
                              parameter="content_type")
    return _dumps(payload).encode()


# -- DataFrames and arrays --------------------------------------------------------------------

def _frame_parquet(df: pandas.DataFrame, csv_header: bool) -> bytes:
    buffer = io.BytesIO()  # Parquet needs string column names; the index is not written
    df.rename(columns=str).to_parquet(buffer, engine="pyarrow", index=False)
    return buffer.getvalue()


def _array_npy(array: Any, csv_header: bool) -> bytes:
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


Encoder = Callable[[Any, bool], bytes]
_FRAME_ENCODERS: dict[str, Encoder] = {
    CSV: lambda df, header: df.to_csv(index=False, header=header, lineterminator="\n").encode(),
    # Our own JSON rather than df.to_json, which rounds floats to 10 significant digits.
    JSON: lambda df, header: _dumps(df.to_numpy(dtype=object).tolist()).encode(),
    NPY: lambda df, header: _array_npy(df.to_numpy(), header),
    **dict.fromkeys(JSONL_TYPES, lambda df, header: _json_lines(df.to_dict(orient="records"))),
    **dict.fromkeys(PARQUET_TYPES, _frame_parquet),
}
_ARRAY_ENCODERS: dict[str, Encoder] = {
    NPY: _array_npy,
    CSV: lambda array, header: _FRAME_ENCODERS[CSV](_pandas().DataFrame(_tabular(array, CSV)), False),
    JSON: lambda array, header: _dumps(_tabular(array, JSON).tolist()).encode(),
}


def _by_media(registry: dict[str, Encoder], what: str, payload: Any, media: str,
              csv_header: bool) -> bytes:
    encoder = registry.get(media)
    if encoder is None:
        raise ValidationError(f"Cannot send {what} as {media}: use one of "
                              f"{', '.join(registry)}.", parameter="content_type")
    try:
        return encoder(payload, csv_header)
    except ValidationError:
        raise
    except (ValueError, TypeError, NotImplementedError, ImportError) as exc:  # e.g. from pyarrow
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise ValidationError(f"Cannot write {what} as {media} ({reason}): convert the offending "
                              "values or choose another content type.", parameter="payload") from exc


def _encode_frame(payload: Any, media: str, csv_header: bool) -> bytes:
    df = payload.to_frame() if payload.ndim == 1 else payload
    if len(df) == 0:
        raise ValidationError("The DataFrame has no rows: SageMaker rejects empty inputs.",
                              parameter="payload")
    return _by_media(_FRAME_ENCODERS, "a DataFrame", df, media, csv_header)


_ENCODERS: dict[str, Callable[[Any, str, bool], bytes]] = {
    "text": lambda text, media, header: text.encode("utf-8"),
    "bytes": lambda data, media, header: data.tobytes() if isinstance(data, memoryview) else bytes(data),
    "json": _to_json,
    "frame": _encode_frame,
    "array": lambda array, media, header: _by_media(_ARRAY_ENCODERS, "a numpy array", array, media, header),
}


def encode(payload: Any, content_type: str | None = None, *, default_content_type: str = CSV,
           csv_header: bool = False) -> EncodedPayload:
    """Turn a payload into bytes (or a streamed file) plus what the upload needs to know."""
    kind = _kind(payload)
    content_type = content_type or infer_content_type(payload, default_content_type=default_content_type)
    if kind == "path":
        return _encode_path(Path(payload).expanduser(), content_type)
    body = _ENCODERS[kind](payload, media_type(content_type) or OCTET, csv_header)
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


# -- Decoding -----------------------------------------------------------------------------------

KNOWN_LIST_KEYS = ("predictions", "outputs", "results", "embeddings")


def _rows(items: list) -> pandas.DataFrame:
    """Records -> rows, lists -> rows, scalars (or a mix) -> one "prediction" column."""
    if not items:
        return _pandas().DataFrame()
    if all(isinstance(item, dict) for item in items):
        return _pandas().DataFrame.from_records(items)
    if all(isinstance(item, list) for item in items):
        return _pandas().DataFrame(items)
    return _pandas().DataFrame({"prediction": items})


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
        return _pandas().DataFrame(value)  # a dict of equal-length columns
    return _pandas().DataFrame([value])  # one row; nested values stay object cells


def _text(body: bytes, content_type: str | None) -> str:
    charset = _charset(content_type)
    return body.decode("utf-8-sig" if charset.lower().replace("_", "-") in ("utf-8", "utf8") else charset)


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


def _decode_csv(body: bytes, content_type: str | None, *, csv_header: bool = False,
                **reader_kwargs: Any) -> pandas.DataFrame:
    if not body.strip():
        return _pandas().DataFrame()
    reader_kwargs.setdefault("encoding", _charset(content_type))
    return _pandas().read_csv(io.BytesIO(body), header=0 if csv_header else None, **reader_kwargs)


def _decode_parquet(body: bytes, content_type: str | None, **reader_kwargs: Any) -> pandas.DataFrame:
    return _pandas().read_parquet(io.BytesIO(body), engine="pyarrow", **reader_kwargs)


_DECODERS: dict[str, Callable[..., pandas.DataFrame]] = {
    CSV: _decode_csv, JSON: _decode_json, NPY: _decode_npy, TEXT: _decode_text,
    **{t: _decode_jsonl for t in JSONL_TYPES}, **{t: _decode_parquet for t in PARQUET_TYPES},
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
        raise DecodeError(f"Cannot turn {shown} output into a DataFrame; use .raw() to get the bytes "
                          "(or pass accept=... to ask the model for CSV/JSON).")
    if reader_kwargs and decoder not in _TAKES_KWARGS:
        raise TypeError(f"reader options {sorted(reader_kwargs)} apply only to text/csv and "
                        f"Parquet outputs, not {media}")
    kwargs = dict(reader_kwargs, csv_header=csv_header) if decoder is _decode_csv else reader_kwargs
    try:
        return decoder(bytes(body), content_type, **kwargs)
    except DecodeError:
        raise
    except Exception as exc:  # corrupt data: pandas/pyarrow/json/numpy each raise their own types
        if isinstance(exc, TypeError) and reader_kwargs:  # most likely a bad reader option
            raise
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise DecodeError(f"Cannot read this {media} output ({reason}); use .raw() to get "
                          "the bytes.") from exc
