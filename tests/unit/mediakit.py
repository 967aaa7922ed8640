"""Media for the preview tests: PNG and WAV from the demo model's own encoders (notebooks/models/
media.py, loaded by path as the local stack loads it), JPEG / GIF / WebP written by Pillow (a test
dependency through matplotlib), and the first bytes of containers previews only sniff."""

from __future__ import annotations

import importlib.util
import io
from pathlib import Path

import pytest

MODEL = Path(__file__).resolve().parents[2] / "notebooks" / "models" / "media.py"


def demo_model():
    spec = importlib.util.spec_from_file_location("media_demo_model", MODEL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def png(width=32, height=24, seed=0) -> bytes:
    return demo_model().rings(width, height, seed)


def wav(seconds=0.25, frequency=440.0) -> bytes:
    return demo_model().tone(frequency, seconds)


def pillow(fmt: str, width=20, height=10) -> bytes:
    image_module = pytest.importorskip("PIL.Image")
    out = io.BytesIO()
    image_module.new("RGB", (width, height), (200, 30, 90)).save(out, format=fmt)
    return out.getvalue()


def big_png(size: int) -> bytes:
    """A valid PNG header followed by filler: as large as asked, cheap to make."""
    head = png(64, 64)
    return head + b"\x00" * max(0, size - len(head))


# First bytes of containers (sniffed, never decoded by previews).
MP4 = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + b"\x00" * 64
M4A = b"\x00\x00\x00\x18ftypM4A \x00\x00\x02\x00M4A isom" + b"\x00" * 64
WEBM = b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01" + b"\x00" * 64
OGG = b"OggS\x00\x02" + b"\x00" * 64
MP3 = b"ID3\x04\x00\x00\x00\x00\x00\x00" + b"\xff\xfb\x90\x00" * 16
FLAC = b"fLaC\x00\x00\x00\x22" + b"\x00" * 64
SVG = (b'<?xml version="1.0"?>\n<!-- a comment -->\n<svg xmlns="http://www.w3.org/2000/svg" width="10" '
       b'height="10"><script>window.__svg_xss=1</script><rect width="10" height="10"/></svg>')
