"""pyarrow filesystems for the client's AWS target: local paths, or ``s3://`` through
``pyarrow.fs.S3FileSystem`` with the client's own credentials, region and endpoint (so a dataset on
the local stack or on real AWS is read and written the same way)."""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlparse

from .clients import AwsClients


def is_s3(location: str | os.PathLike[str]) -> bool:
    return isinstance(location, str) and location.startswith("s3://")


def s3_filesystem(aws: AwsClients) -> Any:
    """An S3FileSystem with the session's credentials and the configured S3 endpoint."""
    from pyarrow import fs

    options: dict[str, Any] = {"region": aws.region}
    credentials = aws.session.get_credentials()
    if credentials is not None:
        frozen = credentials.get_frozen_credentials()
        options.update(access_key=frozen.access_key, secret_key=frozen.secret_key, session_token=frozen.token)
    endpoint = aws.endpoint_urls.get("s3")
    if endpoint:
        parsed = urlparse(endpoint)
        options.update(endpoint_override=parsed.netloc, scheme=parsed.scheme or "https")
    return fs.S3FileSystem(**options)


def resolve(aws: AwsClients, location: str | os.PathLike[str]) -> tuple[Any, str]:
    """(filesystem, path within it) for a local path or an ``s3://bucket/key`` URI."""
    from pyarrow import fs

    if is_s3(location):
        return s3_filesystem(aws), str(location)[len("s3://"):]
    return fs.LocalFileSystem(), os.path.abspath(os.path.expanduser(os.fspath(location)))
