"""Demo model for the local stack that answers with media: PNG images and WAV audio, made in code
(a small PNG encoder over zlib, the standard library's ``wave``), no downloads, no dependencies.

SageMaker inference-toolkit handlers. Input: JSON ``{"kind": "image", "width": 96, "height": 96,
"seed": 0}`` (a picture of rings whose colours depend on the seed), ``{"kind": "audio",
"frequency": 440, "seconds": 0.5}`` (a sine tone, 16-bit mono, 16 kHz) or ``{"kind": "caption",
"text": "..."}`` (a JSON document about the text); ``"delay": seconds`` (at most 10) makes any of
them take that long, for demos of the activity charts. Output: ``image/png``, ``audio/wav`` or
``application/json``. Bad input raises ValueError saying what is wrong.
"""

from __future__ import annotations

import io
import json
import math
import struct
import time
import wave
import zlib

MAX_SIDE = 2048
MAX_SECONDS = 30.0
MAX_DELAY = 10.0
RATE = 16_000


def model_fn(model_dir):
    return "media"


def input_fn(request_body, request_content_type):
    kind = (request_content_type or "application/json").split(";")[0].strip().lower()
    if kind != "application/json":
        raise ValueError(f"the media model reads application/json, not {request_content_type}")
    request = json.loads(request_body)
    if not isinstance(request, dict) or request.get("kind") not in ("image", "audio", "caption"):
        raise ValueError('send {"kind": "image" | "audio" | "caption", ...}')
    return request


def png(width, height, pixel):
    """A PNG of ``width`` x ``height`` RGB pixels, ``pixel(x, y) -> (r, g, b)``: the IHDR, one
    zlib-compressed IDAT (each row filtered with "None") and IEND chunks, each with its CRC."""
    if not (0 < width <= MAX_SIDE and 0 < height <= MAX_SIDE):
        raise ValueError(f"width and height must be 1..{MAX_SIDE}, not {width}x{height}")

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    raw = b"".join(b"\x00" + bytes(c for x in range(width) for c in pixel(x, y)) for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB, no interlace
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b"")


def rings(width, height, seed=0):
    """Concentric rings whose colours turn with ``seed``."""
    cx, cy, turn = width / 2, height / 2, seed * 0.7

    def pixel(x, y):
        d = math.hypot(x - cx, y - cy) / 6.0
        return tuple(int(127 + 127 * math.sin(d + turn + k * 2.1)) for k in range(3))

    return png(width, height, pixel)


def tone(frequency=440.0, seconds=0.5):
    """A sine tone as WAV bytes (16-bit mono, RATE Hz), through the standard library's ``wave``."""
    if not (0 < seconds <= MAX_SECONDS) or not (20 <= frequency <= RATE / 2):
        raise ValueError(f"seconds must be in (0, {MAX_SECONDS}] and frequency in [20, {RATE // 2}]")
    frames = int(RATE * seconds)
    samples = b"".join(struct.pack("<h", int(12000 * math.sin(2 * math.pi * frequency * n / RATE)))
                       for n in range(frames))
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(samples)
    return out.getvalue()


def predict_fn(request, model):
    kind = request["kind"]
    delay = float(request.get("delay", 0))
    if not 0 <= delay <= MAX_DELAY:
        raise ValueError(f"delay must be 0..{MAX_DELAY} seconds, not {delay}")
    time.sleep(delay)
    if kind == "image":
        return rings(int(request.get("width", 96)), int(request.get("height", 96)), int(request.get("seed", 0))), \
            "image/png"
    if kind == "audio":
        return tone(float(request.get("frequency", 440)), float(request.get("seconds", 0.5))), "audio/wav"
    text = str(request.get("text", ""))
    return json.dumps({"text": text, "words": len(text.split()), "characters": len(text)}), "application/json"


def output_fn(prediction, accept):
    return prediction
