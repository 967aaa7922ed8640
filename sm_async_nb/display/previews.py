"""An output's preview by media type: images, audio and video as media, JSON pretty-printed, text
wrapped, tables as the first rows, anything else as its size and first bytes in hex.

What an output is comes from its bytes first (``payloads.sniffing``: magic numbers) and from its
declared content type second; a declared type the bytes contradict is not trusted (an "image/png"
that is HTML is shown as escaped text, with a note saying so). Nothing from the output is ever
injected as markup: text is escaped, media are ``data:`` sources of ``<img>``/``<audio>``/``<video>``
(an SVG only ever as an image), and a JSON string holding ``<script>`` stays text.

Bounded, in two steps (``load``): one ranged GET of the output's first ``HEAD_BYTES`` serves
tables, text, hex and the headers of media; only an image, audio or video output of at most
``MEDIA_LIMIT`` bytes (a JSON document of at most ``DOCUMENT_LIMIT``) is then read whole. A larger
one is described (type, size, an image's dimensions read from its header) and the preview says
``download()`` saves it; its bytes are never read, and never sent to the browser.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..payloads import CSV, JSON, NPY, OCTET, PARQUET_TYPES, decode, media_type
from ..payloads.mediatypes import JSONL_TYPES
from ..payloads.sniffing import SVG, canonical, family, image_size, sniff, wav_seconds
from . import fragments
from .text import esc, human_size, note

log = logging.getLogger(__name__)

HEAD_BYTES = 65536               # the first ranged GET: tables, text, hex, media headers
MEDIA_LIMIT = 2 * 1024 * 1024    # an image, audio or video shown whole up to this size (2 MiB)
DOCUMENT_LIMIT = 1024 * 1024     # a JSON document parsed whole up to this size (1 MiB)
TEXT_BYTES = 2048                # text shown
JSON_CHARS = 20_000              # pretty-printed JSON shown

# (limit) -> (first bytes, content type, whole size or None): a ranged GET of one output.
FetchHead = Callable[[int], "tuple[bytes, str | None, int | None]"]

_GENERIC = frozenset({None, OCTET, "binary/octet-stream"})
_LINES = frozenset({CSV, *JSONL_TYPES})           # tables whose start decodes once cut at a line end
_WHOLE_TABLES = frozenset({NPY, *PARQUET_TYPES})  # tables that decode only whole
_NAMES = {"image/png": "PNG image", "image/jpeg": "JPEG image", "image/gif": "GIF image",
          "image/webp": "WebP image", SVG: "SVG image", "audio/wav": "WAV audio", "audio/mpeg": "MP3 audio",
          "audio/ogg": "Ogg audio", "audio/flac": "FLAC audio", "audio/mp4": "MP4 audio", "audio/aac": "AAC audio",
          "video/mp4": "MP4 video", "video/webm": "WebM video", "video/ogg": "Ogg video",
          "video/quicktime": "QuickTime video"}


@dataclass(frozen=True)
class Media:
    """An image, audio or video output's bytes (whole, at most MEDIA_LIMIT)."""

    family: str       # "image" | "audio" | "video"
    media_type: str   # e.g. "image/png"
    data: bytes

    @property
    def format(self) -> str:
        """The subtype, as ipywidgets' Image/Audio/Video ``format`` trait takes it ("png", "svg+xml", "wav")."""
        return self.media_type.split("/", 1)[1]

    def element(self, alt: str, max_height: str = "480px") -> str:
        return fragments.media_element(self.family, self.media_type, self.data, alt, max_height=max_height)


@dataclass(frozen=True)
class Preview:
    """What a preview shows: ``html`` is everything but the media itself (escaped), ``media`` the
    bytes to play or show (None for other kinds), ``text`` the same for a terminal."""

    kind: str          # image | audio | video | json | table | text | binary | empty
    caption: str       # one line of plain text: "PNG image · 640×480 · 1.2 MB"
    html: str
    text: str
    media: Media | None = None
    media_type: str | None = None
    size: int | None = None

    def to_html(self, max_height: str = "480px") -> str:
        """The whole preview as HTML, the media inlined as a ``data:`` source."""
        if self.media is None:
            return self.html
        return self.media.element(self.caption, max_height) + self.html

    @property
    def weight(self) -> int:
        """Bytes held (what a cache of previews counts)."""
        return len(self.html) + len(self.text) + (len(self.media.data) if self.media is not None else 0)


@dataclass(frozen=True)
class Kind:
    """What an output is taken for: its kind, the media type that says so, and why a declared type
    was not believed (or "")."""

    kind: str
    media: str | None
    doubt: str = ""


def classify(head: bytes, content_type: str | None) -> Kind:
    """What the bytes are, believing the declared type only where the bytes do not contradict it."""
    declared = canonical(media_type(content_type))
    if not head:
        return Kind("empty", declared)
    sniffed = sniff(head)
    said = "" if declared in _GENERIC else f"declared {declared}, "
    if sniffed is not None:
        if sniffed == SVG and declared not in (*_GENERIC, SVG, "image/svg", "application/xml", "text/xml"):
            return Kind("text", declared)  # markup declared as something else: shown as its text
        found = family(sniffed)
        if found is not None:
            sniffed = _container(sniffed, declared)
            found = family(sniffed) or found
            doubt = "" if not said or family(declared) == found else f"{said}but the bytes are {_name(sniffed)}"
            return Kind(found, sniffed, doubt)
        if sniffed in _WHOLE_TABLES:
            return Kind("table", sniffed)
        return Kind("binary", sniffed, "" if not said or declared == sniffed else f"{said}but the bytes are {sniffed}")
    if declared in _WHOLE_TABLES or (declared or "").split("/")[0] in ("image", "audio", "video"):
        doubt = f"{said}but the bytes are not {_name(declared)}"
        return Kind("text" if _as_text(head) is not None else "binary", None, doubt)
    if declared == JSON or (declared or "").endswith("+json"):
        return Kind("json", declared)
    if declared in _LINES:
        return Kind("table", declared)
    if declared in _GENERIC and head.lstrip()[:1] in (b"{", b"[") and _as_text(head) is not None:
        return Kind("json", JSON)
    return Kind("text" if _as_text(head) is not None else "binary", declared)


def _container(sniffed: str, declared: str | None) -> str:
    """Ogg and MP4 hold audio or video alike: the declared family decides between the two."""
    if sniffed == "audio/ogg" and declared == "video/ogg":
        return declared
    if sniffed == "video/mp4" and declared in ("audio/mp4", "audio/aac"):
        return "audio/mp4"
    return sniffed


def _name(media: str | None) -> str:
    return _NAMES.get(media or "", media or "unknown")


def rest_size(head: bytes, content_type: str | None, total: int | None, *, media_limit: int = MEDIA_LIMIT) -> int:
    """How many bytes of the output the whole preview needs beyond ``head``: its whole size for
    media (at most ``media_limit``) and JSON documents (at most DOCUMENT_LIMIT) not yet whole; else 0."""
    size = len(head) if total is None else total
    if len(head) >= size:
        return 0
    kind = classify(head, content_type).kind
    if kind in ("image", "audio", "video") and size <= media_limit:
        return size
    if kind == "json" and size <= DOCUMENT_LIMIT:
        return size
    return 0


def load(fetch_head: FetchHead, *, csv_header: bool = False, head_bytes: int = HEAD_BYTES,
         media_limit: int = MEDIA_LIMIT) -> Preview:
    """The preview of one output: one ranged GET of its start, a second one of the whole only for
    media of at most ``media_limit`` bytes and JSON documents of at most DOCUMENT_LIMIT."""
    body, content_type, total = fetch_head(head_bytes)
    wanted = rest_size(body, content_type, total, media_limit=media_limit)
    if wanted:
        body, content_type, total = fetch_head(wanted)
    return build(body, content_type, total, csv_header=csv_header, media_limit=media_limit)


def build(body: bytes, content_type: str | None, total: int | None, *, csv_header: bool = False,
          media_limit: int = MEDIA_LIMIT, withheld: str | None = None) -> Preview:
    """The preview of an output whose first bytes are ``body`` (``total``: its whole size);
    ``withheld`` says why a media output within the limit was not read whole (a gallery's budget)."""
    size = len(body) if total is None else total
    complete = len(body) >= size
    kind = classify(body, content_type)
    doubt = note(f"Not shown as declared: {kind.doubt}.") if kind.doubt else ""
    if kind.kind == "empty":
        return Preview("empty", "empty output", note("empty output (0 bytes)"), "empty output (0 bytes)",
                       media_type=kind.media, size=0)
    if kind.kind in ("image", "audio", "video"):
        return _media(body, kind, size, complete, doubt, media_limit, withheld)
    if kind.kind == "json" and complete:
        found = _json(body, content_type, size, csv_header, doubt)
        if found is not None:
            return found
    if kind.kind == "table":
        found = _table(body, kind.media, content_type, size, complete, csv_header, doubt)
        if found is not None:
            return found
    if kind.kind in ("text", "json"):
        found = _text(body, kind.media, size, doubt)
        if found is not None:
            return found
    return _binary(body, kind.media, size, doubt)


def _caption(kind: Kind, size: int, body: bytes) -> str:
    bits = [_name(kind.media)]
    dimensions = image_size(body, kind.media or "") if kind.kind == "image" else None
    if dimensions is not None:
        bits.append(f"{dimensions[0]}×{dimensions[1]}")
    seconds = wav_seconds(body) if kind.media == "audio/wav" else None
    if seconds is not None:
        bits.append(f"{seconds:.2f} s")
    bits.append(human_size(size))
    return " · ".join(bits)


def _media(body: bytes, kind: Kind, size: int, complete: bool, doubt: str, media_limit: int,
           withheld: str | None) -> Preview:
    assert kind.media is not None
    caption = _caption(kind, size, body)
    head = f'<div class="sm-async-caption">{esc(caption)}</div>'
    if complete and size <= media_limit:
        return Preview(kind.kind, caption, head + doubt, caption, Media(kind.kind, kind.media, body),
                       kind.media, size)
    why = withheld if withheld and size <= media_limit else (
        f"Larger than the {human_size(media_limit)} preview limit: not shown here; download() saves it "
        "(inv.download(folder), batch.download(folder)).")
    return Preview(kind.kind, caption, head + doubt + note(why), f"{caption}\n{why}", None, kind.media, size)


def _json(body: bytes, content_type: str | None, size: int, csv_header: bool, doubt: str) -> Preview | None:
    try:
        value = json.loads(body)
    except ValueError:
        return None
    pretty = json.dumps(value, indent=2, ensure_ascii=False)
    lines = pretty.count("\n") + 1
    shown = pretty if len(pretty) <= JSON_CHARS else pretty[:JSON_CHARS] + "\n…"
    caption = f"JSON · {lines:,} lines · {human_size(size)}"
    cut = f"; first {JSON_CHARS:,} characters" if len(pretty) > JSON_CHARS else ""
    document = fragments.json_html(shown, lines, f"{caption}{cut} (click to expand)")
    table = ""
    if isinstance(value, list) or (isinstance(value, dict) and any(isinstance(v, list) for v in value.values())):
        try:
            frame = decode(body, content_type or JSON, csv_header=csv_header)
        except Exception:  # a document that is no table: the document alone
            frame = None
        if frame is not None and frame.shape[1] and _flat(frame):
            table = fragments.table_html(frame, partial=False)
            document = fragments.json_html(shown, fragments.JSON_OPEN_LINES + 1, f"{caption}{cut} (click to expand)")
    return Preview("json", caption, doubt + table + document, shown[:TEXT_BYTES], media_type=JSON, size=size)


def _flat(frame: Any) -> bool:
    """Every shown cell is a scalar (records of numbers and strings, not nested documents)."""
    shown = frame.iloc[:fragments.ROWS, :fragments.COLUMNS]
    return not any(isinstance(v, (dict, list)) for column in shown.columns for v in shown[column])


def _table(body: bytes, media: str | None, content_type: str | None, size: int, complete: bool, csv_header: bool,
           doubt: str) -> Preview | None:
    if media in _WHOLE_TABLES and not complete:
        return None
    data = body if complete or media not in _LINES else body[:body.rfind(b"\n") + 1]
    if not data:
        return None
    try:
        frame = decode(data, media if media in _WHOLE_TABLES else content_type or media, csv_header=csv_header)
    except Exception as exc:  # not what its type says: shown as text or bytes instead
        log.debug("preview: %s output did not decode: %s", media, exc)
        return None
    caption = f"table · {human_size(size)}"
    return Preview("table", caption, doubt + fragments.table_html(frame, partial=not complete),
                   fragments.table_text(frame), media_type=media, size=size)


def _as_text(body: bytes, limit: int = TEXT_BYTES) -> str | None:
    """The first ``limit`` bytes as UTF-8 text, or None when they are not text."""
    start = body[:limit]
    if b"\x00" in start:
        return None
    for cut in range(4):  # the limit may split a multi-byte character
        try:
            return start[:len(start) - cut].decode("utf-8")
        except UnicodeDecodeError:
            continue
    return None


def _text(body: bytes, media: str | None, size: int, doubt: str) -> Preview | None:
    text = _as_text(body)
    if text is None:
        return None
    more = f"first {TEXT_BYTES:,} bytes of {human_size(size)}" if size > TEXT_BYTES else human_size(size)
    caption = f"text · {human_size(size)}"
    return Preview("text", caption, doubt + fragments.pre_html(text) + note(more), text, media_type=media, size=size)


def _binary(body: bytes, media: str | None, size: int, doubt: str) -> Preview:
    caption = f"binary, {size:,} bytes" + (f" ({media})" if media else "")
    dump = fragments.hex_dump(body[:fragments.HEX_BYTES])
    first = f"first {min(len(body), fragments.HEX_BYTES)} bytes"
    return Preview("binary", caption, doubt + note(caption) + fragments.pre_html(dump, "sm-async-hex") + note(first),
                   f"{caption}\n{dump}", media_type=media, size=size)
