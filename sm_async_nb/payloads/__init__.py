"""Payloads in and outputs out: ``encode`` (payload -> bytes), ``decode`` (output bytes ->
DataFrame) and the media types they share. Pure functions, no network or S3 I/O."""

from .decoding import KNOWN_LIST_KEYS, decode
from .encoding import CONTENT_TYPE_RULES, MAX_S3_PAYLOAD, EncodedPayload, encode, infer_content_type, suffix_for
from .mediatypes import CSV, JSON, JSONL_TYPES, NPY, OCTET, PARQUET_TYPES, TEXT, media_type

__all__ = ["CONTENT_TYPE_RULES", "CSV", "JSON", "JSONL_TYPES", "KNOWN_LIST_KEYS", "MAX_S3_PAYLOAD", "NPY", "OCTET",
           "PARQUET_TYPES", "TEXT", "EncodedPayload", "decode", "encode", "infer_content_type", "media_type",
           "suffix_for"]
