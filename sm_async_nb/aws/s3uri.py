"""S3 locations as values: parse once, never rebuild by string slicing elsewhere."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote, urlparse

# Bucket names: 3-63 lowercase letters, digits, dots and hyphens (S3's own rule).
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]")


@dataclass(frozen=True)
class S3Uri:
    bucket: str
    key: str = ""

    @classmethod
    def parse(cls, uri: str) -> S3Uri:
        """Accept ``s3://bucket/key`` and the https forms SageMaker returns for locations."""
        if not isinstance(uri, str) or not uri:
            raise ValueError(f"{uri!r} is not an S3 URI; expected s3://bucket/prefix/")
        if uri.startswith("s3://"):
            rest = uri[5:]
            bucket, _, key = rest.partition("/")
        elif uri.startswith("https://"):
            parsed = urlparse(uri)
            host, path = parsed.netloc, unquote(parsed.path.lstrip("/"))
            if ".s3." in host or host.endswith(".s3.amazonaws.com"):
                bucket, key = host.split(".s3", 1)[0], path  # virtual-hosted style
            else:
                bucket, _, key = path.partition("/")  # path style
        else:
            raise ValueError(f"{uri!r} is not an S3 URI; expected s3://bucket/prefix/")
        if not _BUCKET.fullmatch(bucket):
            raise ValueError(f"{uri!r} does not name a valid bucket (3-63 lowercase letters, digits, '.', '-')")
        return cls(bucket, key)

    def as_prefix(self) -> str:
        """The URI as a folder-like prefix ending in '/' (or the bare bucket)."""
        key = self.key if not self.key or self.key.endswith("/") else self.key + "/"
        return f"s3://{self.bucket}/{key}"

    def join(self, name: str) -> S3Uri:
        base = self.key if not self.key or self.key.endswith("/") else self.key + "/"
        return S3Uri(self.bucket, base + name)

    @property
    def parent_prefix(self) -> str:
        """The key's folder, ending in '/', as ListObjectsV2 wants it."""
        return self.key.rsplit("/", 1)[0] + "/" if "/" in self.key else ""

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.key}"
