"""Media types shared by encoding and decoding: names, parsing, and lazy pandas."""

from __future__ import annotations

import re
from typing import Any

CSV, JSON, NPY, TEXT, OCTET = "text/csv", "application/json", "application/x-npy", "text/plain", \
    "application/octet-stream"
JSONL_TYPES = ("application/jsonlines", "application/x-jsonlines", "application/x-ndjson")
PARQUET_TYPES = ("application/x-parquet", "application/parquet", "application/vnd.apache.parquet")


def media_type(content_type: str | None) -> str | None:
    """The bare, lower-case media type: ``"Text/CSV; charset=utf-8"`` -> ``"text/csv"``."""
    bare = (content_type or "").split(";", 1)[0].strip().lower()
    return bare or None


def charset(content_type: str | None) -> str:
    match = re.search(r";\s*charset\s*=\s*\"?([\w.:-]+)", content_type or "", re.IGNORECASE)
    return match.group(1) if match else "utf-8"


def pandas_module() -> Any:
    import pandas  # lazily: importing this module must stay cheap

    return pandas
