"""Inputs that already sit in S3: what ``submit_s3`` was given, resolved to objects and checked
before the first invoke. The objects are the user's: they are never copied, moved or deleted;
InputLocation is the object itself.

Checked, with one ValidationError naming the culprit and nothing invoked: every URI is
``s3://bucket/key``; a prefix (ending in "/") matches at least one object (``pattern`` is a glob
on the key below the prefix, with the same meaning as ``submit_dataset``'s: ``*`` and ``?`` stay within
one ``/``-segment and ``**`` spans any number of them, e.g. ``*.wav``, ``**/*.wav`` or ``2026/*/*.json``); every object
exists, is not empty, and is at most 1 GB. Content type: the object's own, unless generic
(``binary/octet-stream``, ``application/octet-stream`` or none), else from the key's suffix, else
the ``content_type`` option, else ``application/octet-stream``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from ..aws.clients import NOT_FOUND_CODES, as_error, error_code
from ..aws.s3uri import S3Uri
from ..context import Context
from ..errors import ValidationError
from ..payloads import MAX_S3_PAYLOAD, OCTET, infer_content_type, media_type
from .dataset_files import segments_match

log = logging.getLogger(__name__)

GENERIC_TYPES = frozenset({None, "", "binary/octet-stream", OCTET})
SOURCE_HELP = ("give one s3://bucket/key, a prefix ending in '/', a list of s3:// URIs, or a pandas Series of "
               "them")


@dataclass(frozen=True)
class S3Object:
    """One input object, as HEAD saw it."""

    uri: S3Uri
    size: int
    content_type: str
    etag: str  # identifies the object's content: a re-run with the same objects continues a batch


def parse_object_uri(value: Any) -> S3Uri:
    if not isinstance(value, str) or not value.startswith("s3://"):
        raise ValidationError(f"{value!r} is not an S3 object URI: expected s3://bucket/key.", parameter="source")
    try:
        uri = S3Uri.parse(value)
    except ValueError as exc:
        raise ValidationError(f"{exc}: expected s3://bucket/key.", parameter="source") from None
    if not uri.key or uri.key.endswith("/"):
        raise ValidationError(f"{value!r} names no object (no key, or a folder): expected s3://bucket/key, or end "
                              "a prefix with '/' to send every object under it.", parameter="source")
    return uri


@dataclass(frozen=True)
class S3Source:
    """What ``submit_s3`` was given, checked without asking S3: a prefix to list (with its pattern),
    or object URIs in order (and the index results align to: a Series's index, else None)."""

    prefix: str | None = None
    pattern: str | None = None
    uris: tuple[S3Uri, ...] = ()
    index: Any = None


def parse_source(source: Any, pattern: str | None) -> S3Source:
    """Check the shape of ``source`` (pure: no S3 request).

    Raises:
        ValidationError: not a URI, a list, or a Series of them; an empty list; a pattern without a prefix.
    """
    index = None
    if type(source).__name__ == "Series" and hasattr(source, "index"):
        index, values = source.index, list(source.tolist())
    elif isinstance(source, str):
        if source.endswith("/"):
            _check_prefix(source)
            return S3Source(prefix=source, pattern=pattern)
        values = [source]
    elif isinstance(source, (list, tuple)):
        values = list(source)
    else:
        raise ValidationError(f"submit_s3 cannot read a {type(source).__name__} as its source: {SOURCE_HELP}.",
                              parameter="source")
    if pattern is not None:
        raise ValidationError("pattern= applies to a prefix (a source ending in '/'), not to a list of objects.",
                              parameter="pattern")
    if not values:
        raise ValidationError(f"The source is empty: {SOURCE_HELP}.", parameter="source")
    return S3Source(uris=tuple(parse_object_uri(v) for v in values), index=index)


def _check_prefix(source: str) -> S3Uri:
    if not source.startswith("s3://"):
        raise ValidationError(f"{source!r} is not an s3:// prefix.", parameter="source")
    try:
        return S3Uri.parse(source)
    except ValueError as exc:
        raise ValidationError(f"{exc}: expected s3://bucket/prefix/.", parameter="source") from None


def _list_prefix(ctx: Context, source: str, pattern: str | None) -> list[S3Uri]:
    prefix = _check_prefix(source)
    found: list[S3Uri] = []
    try:
        pages = ctx.aws.s3.get_paginator("list_objects_v2").paginate(Bucket=prefix.bucket, Prefix=prefix.key)
        for page in pages:
            for item in page.get("Contents", []):
                key = item["Key"]
                if key.endswith("/"):
                    continue  # a "folder" marker object
                if pattern is None or segments_match(pattern, key[len(prefix.key):]):
                    found.append(S3Uri(prefix.bucket, key))
    except Exception as exc:
        if error_code(exc) == "NoSuchBucket":
            raise ValidationError(f"Bucket {prefix.bucket!r} of {source} does not exist.", parameter="source") from None
        raise as_error(exc, bucket=prefix.bucket, doing=f"Listing {source}") from None
    if not found:
        what, check = (f"matching {pattern!r} ", "the prefix and the pattern") if pattern else ("", "the prefix")
        raise ValidationError(f"No object {what}under {source}: check {check}.", parameter="source")
    return found


def _content_type(head_type: str | None, key: str, fallback: str | None) -> str:
    if media_type(head_type) not in GENERIC_TYPES:
        return str(head_type)
    guessed = infer_content_type(PurePosixPath(key))
    if guessed != OCTET:
        return guessed
    return fallback or OCTET


def _head(ctx: Context, uri: S3Uri, fallback: str | None) -> S3Object:
    try:
        answer = ctx.aws.s3.head_object(Bucket=uri.bucket, Key=uri.key)
    except Exception as exc:
        if error_code(exc) in NOT_FOUND_CODES | {"NoSuchBucket"}:
            raise ValidationError(f"{uri} does not exist: check the URI (nothing was invoked).",
                                  parameter="source") from None
        raise as_error(exc, bucket=uri.bucket, doing=f"Reading {uri}") from None
    size = int(answer["ContentLength"])
    if size == 0:
        raise ValidationError(f"{uri} is empty (0 bytes): SageMaker rejects empty inputs.", parameter="source")
    if size > MAX_S3_PAYLOAD:
        raise ValidationError(f"{uri} is {size:,} bytes, over SageMaker's 1 GB limit for asynchronous inputs.",
                              parameter="source")
    return S3Object(uri, size, _content_type(answer.get("ContentType"), uri.key, fallback),
                    str(answer.get("ETag", "")).strip('"'))


def resolve(ctx: Context, source: S3Source, fallback_content_type: str | None) -> list[S3Object]:
    """Every input object, listed (a prefix) and checked (HEAD, concurrently), in order.

    Raises:
        ValidationError: a prefix with no match, a missing, empty or over-1-GB object; nothing has
            been invoked.
        AwsError: S3 refused to list or read (e.g. no s3:ListBucket / s3:GetObject).
    """
    uris = _list_prefix(ctx, source.prefix, source.pattern) if source.prefix is not None else list(source.uris)
    objects: Sequence[S3Object] = list(ctx.pool.map(lambda u: _head(ctx, u, fallback_content_type), uris))
    log.info("submit_s3: %d object(s) checked", len(objects))
    return list(objects)
