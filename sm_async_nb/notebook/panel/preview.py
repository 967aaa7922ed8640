"""An output's first bytes as a small, escaped HTML preview: the first rows as a table, or the
first 2 KB of text, or "binary, N bytes". Pure functions of (bytes, content type, size): the
fetching is someone else's (``results.head``, run by the details view's background loader).

Everything shown is bounded (rows, columns, characters per cell), so a preview's HTML stays a
few KB whatever the output, and every value goes through ``html.escape``.
"""

from __future__ import annotations

import logging
from typing import Any

from ...payloads import CSV, JSON, NPY, PARQUET_TYPES, decode, media_type
from ...payloads.decoding import BINARY_FAMILIES, BINARY_TYPES
from ...payloads.mediatypes import JSONL_TYPES
from .rows import BORDER_COLOUR, MUTED_COLOUR, esc, human_size

log = logging.getLogger(__name__)

FETCH_BYTES = 65536   # one ranged GET of the output's start
TEXT_BYTES = 2048     # text shown
ROWS = 10             # table rows shown
COLUMNS = 12          # table columns shown
CELL_CHARS = 80       # characters per cell shown

# Types whose start can be decoded on its own once cut at a line end.
_LINES = frozenset({CSV, *JSONL_TYPES})
# Types that decode only whole (text/plain is shown as text, not as a one-column table).
_WHOLE = frozenset({JSON, NPY, *PARQUET_TYPES})


def _note(text: str) -> str:
    return f'<div style="color:{MUTED_COLOUR};font-size:90%">{esc(text)}</div>'


def _cell(value: Any) -> str:
    text = str(value)
    return esc(text if len(text) <= CELL_CHARS else text[:CELL_CHARS - 1] + "…")


def table_html(frame: Any, partial: bool) -> str:
    """The first ROWS x COLUMNS of a DataFrame as an HTML table; every header and cell escaped."""
    shown = frame.iloc[:ROWS, :COLUMNS]
    line = f' style="border-bottom:1px solid {BORDER_COLOUR}"'
    head = "".join(f"<th>{_cell(c)}</th>" for c in ["", *shown.columns])
    body = "".join(f"<tr{line}><th>{_cell(i)}</th>" + "".join(f"<td>{_cell(v)}</td>" for v in row) + "</tr>"
                   for i, row in zip(shown.index, shown.itertuples(index=False, name=None), strict=True))
    more = []
    if len(frame) > ROWS or partial:
        more.append(f"first {len(shown)} rows" + (" of the output's start" if partial else f" of {len(frame):,}"))
    if frame.shape[1] > COLUMNS:
        more.append(f"first {COLUMNS} of {frame.shape[1]} columns")
    table = (f'<table class="sm-async-preview-table" cellpadding="3" style="border-collapse:collapse;font-size:90%;'
             f'text-align:left;line-height:1.4"><thead><tr{line}>{head}</tr></thead><tbody>{body}</tbody></table>')
    return table + (_note("; ".join(more)) if more else "")


def _as_text(body: bytes) -> str | None:
    """The first TEXT_BYTES as UTF-8 text, or None when it is not text."""
    start = body[:TEXT_BYTES]
    if b"\x00" in start:
        return None
    for cut in range(4):  # the limit may split a multi-byte character
        try:
            return start[:len(start) - cut].decode("utf-8")
        except UnicodeDecodeError:
            continue
    return None


def text_html(body: bytes, total: int) -> str | None:
    text = _as_text(body)
    if text is None:
        return None
    note = f"first {TEXT_BYTES:,} bytes of {human_size(total)}" if total > TEXT_BYTES else human_size(total)
    return (f'<pre style="white-space:pre-wrap;margin:2px 0;max-height:16em;overflow:auto">{esc(text)}</pre>'
            + _note(note))


def binary_html(total: int, media: str | None) -> str:
    return _note(f"binary, {total:,} bytes" + (f" ({media})" if media else ""))


def preview_html(body: bytes, content_type: str | None, total: int | None, *, csv_header: bool = False) -> str:
    """The preview of an output whose first bytes are ``body`` (``total``: its whole size)."""
    size = len(body) if total is None else total
    complete = len(body) >= size
    media = media_type(content_type)
    if media is not None and (media.split("/")[0] in BINARY_FAMILIES or media in BINARY_TYPES):
        return binary_html(size, media)
    if not body:
        return _note("empty output (0 bytes)")
    if media in _LINES or (media in _WHOLE and complete):
        data = body if complete or media not in _LINES else body[:body.rfind(b"\n") + 1]
        try:
            if data:
                return table_html(decode(data, content_type, csv_header=csv_header), partial=not complete)
        except Exception as exc:  # not what its type says: show it as text or bytes instead
            log.debug("preview: %s output did not decode: %s", media, exc)
    if media in (NPY, *PARQUET_TYPES):
        return binary_html(size, media)
    return text_html(body, size) or binary_html(size, media)
