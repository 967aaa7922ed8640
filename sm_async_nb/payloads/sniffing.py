"""What an output's bytes are, read from the bytes themselves (magic numbers), and the few facts
their headers give away (an image's size, a WAV's duration). Pure functions of the first bytes;
nothing is decoded beyond a header, nothing is executed.

A declared content type says what a model *claims* to have written; ``sniff`` says what the bytes
are. Previews trust the bytes: a PNG declared as ``text/csv`` is an image, and "HTML" declared as
``image/png`` is not an image (``previews`` shows it as text).
"""

from __future__ import annotations

import struct

# Media types previews show as images, as audio, as video (what browsers play in <img>/<audio>/<video>).
IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp", "image/svg+xml"})
AUDIO_TYPES = frozenset({"audio/wav", "audio/mpeg", "audio/ogg", "audio/flac", "audio/mp4", "audio/aac"})
VIDEO_TYPES = frozenset({"video/mp4", "video/webm", "video/ogg", "video/quicktime"})
SVG = "image/svg+xml"
# Declared names of the same media (a declared type is compared with the sniffed one by these).
ALIASES = {"image/jpg": "image/jpeg", "image/pjpeg": "image/jpeg", "audio/x-wav": "audio/wav",
           "audio/wave": "audio/wav", "audio/vnd.wave": "audio/wav", "audio/mp3": "audio/mpeg",
           "audio/x-flac": "audio/flac", "audio/x-m4a": "audio/mp4", "audio/m4a": "audio/mp4",
           "application/ogg": "audio/ogg", "audio/x-aac": "audio/aac", "video/x-m4v": "video/mp4"}

# (offset, magic, media type): checked in order, the first match wins.
_MAGIC: tuple[tuple[int, bytes, str], ...] = (
    (0, b"\x89PNG\r\n\x1a\n", "image/png"),
    (0, b"\xff\xd8\xff", "image/jpeg"),
    (0, b"GIF87a", "image/gif"),
    (0, b"GIF89a", "image/gif"),
    (0, b"ID3", "audio/mpeg"),
    (0, b"OggS", "audio/ogg"),
    (0, b"fLaC", "audio/flac"),
    (0, b"\x1a\x45\xdf\xa3", "video/webm"),
    (0, b"%PDF-", "application/pdf"),
    (0, b"PK\x03\x04", "application/zip"),
    (0, b"\x1f\x8b", "application/gzip"),
    (0, b"PAR1", "application/x-parquet"),
    (0, b"\x93NUMPY", "application/x-npy"),
    (0, b"BM", "image/bmp"),
)
_MP4_AUDIO_BRANDS = (b"M4A ", b"M4B ", b"F4A ")


def canonical(media: str | None) -> str | None:
    """A declared media type under the name ``sniff`` uses for it (``image/jpg`` -> ``image/jpeg``)."""
    return None if media is None else ALIASES.get(media, media)


def sniff(head: bytes) -> str | None:
    """The media type the first bytes announce, or None when they announce none of those known.

    SVG is recognised as text that starts (after an XML declaration, comments or a doctype) with
    an ``<svg`` element; everything else by its magic number.
    """
    if head[:4] == b"RIFF" and len(head) >= 12:
        return {b"WAVE": "audio/wav", b"WEBP": "image/webp", b"AVI ": "video/x-msvideo"}.get(head[8:12])
    if head[4:8] == b"ftyp" and len(head) >= 12:
        brand = head[8:12]
        if brand in _MP4_AUDIO_BRANDS:
            return "audio/mp4"
        return "video/quicktime" if brand == b"qt  " else "video/mp4"
    for offset, magic, media in _MAGIC:
        if head[offset:offset + len(magic)] == magic:
            return media
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xF6 == 0xF0:
        return "audio/aac"  # an ADTS frame header
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0 and head[1] & 0x06:
        return "audio/mpeg"  # an MPEG audio frame header (layer bits set)
    if _is_svg(head):
        return SVG
    return None


def _is_svg(head: bytes) -> bool:
    text = head[:4096].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    while text.startswith((b"<?xml", b"<!--", b"<!doctype")):
        end = text.find(b"-->" if text.startswith(b"<!--") else b">")
        if end < 0:
            return False
        text = text[end + (3 if text.startswith(b"<!--") else 1):].lstrip()
    return text.startswith(b"<svg") and text[4:5] in (b" ", b">", b"\t", b"\n", b"\r", b"/")


def family(media: str | None) -> str | None:
    """"image", "audio" or "video" for the media previews show as such; else None."""
    if media in IMAGE_TYPES:
        return "image"
    if media in AUDIO_TYPES:
        return "audio"
    if media in VIDEO_TYPES:
        return "video"
    return None


def image_size(head: bytes, media: str) -> tuple[int, int] | None:
    """(width, height) from an image's header, when its first bytes hold it."""
    try:
        if media == "image/png" and head[12:16] == b"IHDR":
            width, height = struct.unpack(">II", head[16:24])
            return width, height
        if media == "image/gif":
            width, height = struct.unpack("<HH", head[6:10])
            return width, height
        if media == "image/webp":
            return _webp_size(head)
        if media == "image/jpeg":
            return _jpeg_size(head)
    except struct.error:
        return None
    return None


def _webp_size(head: bytes) -> tuple[int, int] | None:
    chunk = head[12:16]
    if chunk == b"VP8X":
        width = 1 + int.from_bytes(head[24:27], "little")
        height = 1 + int.from_bytes(head[27:30], "little")
        return width, height
    if chunk == b"VP8L" and head[20:21] == b"\x2f":
        bits = int.from_bytes(head[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8 " and head[23:26] == b"\x9d\x01\x2a":
        width, height = struct.unpack("<HH", head[26:30])
        return width & 0x3FFF, height & 0x3FFF
    return None


def _jpeg_size(head: bytes) -> tuple[int, int] | None:
    """The frame header (SOFn) gives the size; markers before it are skipped by their lengths."""
    at = 2
    while at + 9 <= len(head):
        if head[at] != 0xFF:
            return None
        marker = head[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height, width = struct.unpack(">HH", head[at + 5:at + 9])
            return width, height
        length = struct.unpack(">H", head[at + 2:at + 4])[0]
        at += 2 + length
    return None


def wav_seconds(head: bytes) -> float | None:
    """A WAV's duration from its ``fmt `` and ``data`` chunk headers (None when not in ``head``)."""
    if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None
    at, byte_rate = 12, 0
    while at + 8 <= len(head):
        chunk, size = head[at:at + 4], struct.unpack("<I", head[at + 4:at + 8])[0]
        if chunk == b"fmt " and at + 16 <= len(head):
            byte_rate = struct.unpack("<I", head[at + 16:at + 20])[0] if at + 20 <= len(head) else 0
        if chunk == b"data":
            return size / byte_rate if byte_rate else None
        at += 8 + size + (size & 1)
    return None
