"""HTML fragments of an output's preview, one per kind: a table, wrapped text, a pretty-printed
JSON document (collapsed when large), a hex dump, and an image / audio / video element whose
source is a ``data:`` URI. Pure functions; every string from the output goes through ``esc``,
and media are only ever referenced as ``<img>``/``<audio>``/``<video>`` sources (an SVG in an
``<img>`` never runs scripts), never inlined as markup.
"""

from __future__ import annotations

import base64
from typing import Any

from .text import BORDER_COLOUR, MUTED_COLOUR, esc, note

ROWS = 10             # table rows shown
COLUMNS = 12          # table columns shown
CELL_CHARS = 80       # characters per cell shown
HEX_BYTES = 64        # bytes of an unknown output shown as hex
JSON_OPEN_LINES = 40  # a pretty-printed document longer than this starts collapsed
PRE = "white-space:pre-wrap;overflow-wrap:anywhere;margin:2px 0;max-height:24em;overflow:auto"


def _cell(value: Any) -> str:
    text = str(value)
    return esc(text if len(text) <= CELL_CHARS else text[:CELL_CHARS - 1] + "…")


def table_html(frame: Any, partial: bool, rows: int = ROWS) -> str:
    """The first ``rows`` x COLUMNS of a DataFrame as an HTML table; every header and cell escaped."""
    shown = frame.iloc[:rows, :COLUMNS]
    line = f' style="border-bottom:1px solid {BORDER_COLOUR}"'
    head = "".join(f"<th>{_cell(c)}</th>" for c in ["", *shown.columns])
    body = "".join(f"<tr{line}><th>{_cell(i)}</th>" + "".join(f"<td>{_cell(v)}</td>" for v in row) + "</tr>"
                   for i, row in zip(shown.index, shown.itertuples(index=False, name=None), strict=True))
    more = []
    if len(frame) > rows or partial:
        more.append(f"first {len(shown)} rows" + (" of the output's start" if partial else f" of {len(frame):,}"))
    if frame.shape[1] > COLUMNS:
        more.append(f"first {COLUMNS} of {frame.shape[1]} columns")
    table = (f'<table class="sm-async-preview-table" cellpadding="3" style="border-collapse:collapse;font-size:90%;'
             f'text-align:left;line-height:1.4"><thead><tr{line}>{head}</tr></thead><tbody>{body}</tbody></table>')
    return table + (note("; ".join(more)) if more else "")


def table_text(frame: Any, rows: int = ROWS) -> str:
    return str(frame.iloc[:rows, :COLUMNS].to_string(max_colwidth=CELL_CHARS))


def pre_html(text: str, css_class: str = "sm-async-text") -> str:
    """Text, wrapped, escaped."""
    return f'<pre class="{css_class}" style="{PRE}">{esc(text)}</pre>'


def json_html(pretty: str, lines: int, summary: str) -> str:
    """A pretty-printed document; longer than JSON_OPEN_LINES it starts collapsed under ``summary``."""
    block = pre_html(pretty, "sm-async-json")
    if lines <= JSON_OPEN_LINES:
        return block
    return (f'<details class="sm-async-json-doc"><summary style="cursor:pointer;color:{MUTED_COLOUR}">'
            f"{esc(summary)}</summary>{block}</details>")


def hex_dump(data: bytes) -> str:
    """Offset, hex and printable characters, 16 bytes a line."""
    lines = []
    for at in range(0, len(data), 16):
        chunk = data[at:at + 16]
        shown = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        lines.append(f"{at:08x}  {chunk.hex(' '):<47}  {shown}")
    return "\n".join(lines)


def data_uri(media_type: str, data: bytes) -> str:
    return f"data:{media_type};base64,{base64.b64encode(data).decode('ascii')}"


def media_element(family: str, media_type: str, data: bytes, alt: str, *, max_height: str = "480px") -> str:
    """An <img>, <audio controls> or <video controls> whose source is the bytes as a data: URI
    (nothing plays by itself; an SVG in <img> is an image, its scripts never run)."""
    src = data_uri(media_type, data)
    if family == "image":
        return (f'<img class="sm-async-media" src="{src}" alt="{esc(alt)}" '
                f'style="max-width:100%;max-height:{max_height};height:auto;display:block">')
    if family == "audio":
        return f'<audio class="sm-async-media" controls preload="metadata" src="{src}"></audio>'
    return (f'<video class="sm-async-media" controls preload="metadata" src="{src}" '
            f'style="max-width:100%;max-height:{max_height}"></video>')
