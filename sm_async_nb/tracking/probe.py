"""Find which expected S3 objects exist, at a cost that grows with prefixes, not with ids.

For each folder (bucket + prefix) the prober either lists the key range holding the expected keys
(ListObjectsV2 from just before the smallest expected key up to the largest; our inference ids
are UUIDv7, so pending outputs sort after everything older) or HEADs each key, whichever the last
listing says is cheaper. Without s3:ListBucket, S3 answers 403 both to listing and to a HEAD of a
missing key: the prober says so once and falls back to HEAD, treating 403 as "not there yet".
"""

from __future__ import annotations

import math
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from ..aws.clients import ACCESS_DENIED_CODES, NOT_FOUND_CODES, error_code
from ..aws.s3uri import S3Uri

if TYPE_CHECKING:
    from types_boto3_s3 import S3Client


PAGE_SIZE = 1000
FAILURE_TEXT_LIMIT = 64 * 1024

NO_LIST_PERMISSION = (
    "Listing s3://{bucket} was denied, so status checks use one HEAD request per object instead "
    "(slower and costlier with many pending invocations). Grant s3:ListBucket on the output bucket "
    "to poll by prefix.")
HEAD_FORBIDDEN = (
    "S3 answered 403 to a HEAD in s3://{bucket}: without s3:ListBucket a missing object reads as "
    "403, so it is treated as not written yet. If results never arrive, check s3:GetObject.")


@dataclass(frozen=True)
class Seen:
    """An object that exists: its size and when it was written (epoch seconds)."""

    size: int
    last_modified: float


class S3Prober:
    """Which of the expected output/failure objects exist, at a cost per prefix."""

    def __init__(self, s3: S3Client, pool: Executor, notice: Callable[[str, str], None]):
        self.s3 = s3
        self.pool = pool
        self.notice = notice
        self._list_denied: set[str] = set()
        self._range_sizes: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()

    def find(self, locations: Iterable[S3Uri]) -> dict[S3Uri, Seen]:
        """The subset of ``locations`` that exist now."""
        groups: dict[tuple[str, str], set[str]] = defaultdict(set)
        for uri in locations:
            groups[(uri.bucket, uri.parent_prefix)].add(uri.key)
        found: dict[S3Uri, Seen] = {}
        to_head: list[S3Uri] = []
        for (bucket, prefix), keys in groups.items():
            listed = self._list_range(bucket, prefix, keys) if self._should_list(bucket, prefix, keys) else None
            if listed is None:
                to_head += [S3Uri(bucket, k) for k in keys]
            else:
                found.update((S3Uri(bucket, k), seen) for k, seen in listed.items())
        for uri, seen in zip(to_head, self.pool.map(self._head, to_head), strict=True):
            if seen is not None:
                found[uri] = seen
        return found

    def _should_list(self, bucket: str, prefix: str, keys: set[str]) -> bool:
        if bucket in self._list_denied:
            return False
        pages = max(1, math.ceil(self._range_sizes.get((bucket, prefix), 0) / PAGE_SIZE))
        return pages < len(keys)

    def _list_range(self, bucket: str, prefix: str, keys: set[str]) -> dict[str, Seen] | None:
        low, high = min(keys), max(keys)
        kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix, "MaxKeys": PAGE_SIZE, "StartAfter": low[:-1]}
        found: dict[str, Seen] = {}
        scanned = 0
        try:
            while True:
                page = self.s3.list_objects_v2(**kwargs)
                contents = page.get("Contents", [])
                scanned += len(contents)
                for item in contents:
                    if item["Key"] in keys:
                        found[item["Key"]] = Seen(item["Size"], item["LastModified"].timestamp())
                if not page.get("IsTruncated") or (contents and contents[-1]["Key"] >= high):
                    break
                kwargs = {"Bucket": bucket, "Prefix": prefix, "MaxKeys": PAGE_SIZE,
                          "ContinuationToken": page["NextContinuationToken"]}
        except ClientError as exc:
            if error_code(exc) in ACCESS_DENIED_CODES:
                with self._lock:
                    self._list_denied.add(bucket)
                self.notice(f"list-denied:{bucket}", NO_LIST_PERMISSION.format(bucket=bucket))
                return None
            raise
        with self._lock:
            self._range_sizes[(bucket, prefix)] = scanned
        return found

    def _head(self, uri: S3Uri) -> Seen | None:
        try:
            answer = self.s3.head_object(Bucket=uri.bucket, Key=uri.key)
        except ClientError as exc:
            code = error_code(exc)
            if code in NOT_FOUND_CODES:
                return None
            if code in ACCESS_DENIED_CODES:
                self.notice(f"head-forbidden:{uri.bucket}", HEAD_FORBIDDEN.format(bucket=uri.bucket))
                return None
            raise
        return Seen(answer["ContentLength"], answer["LastModified"].timestamp())

    def read_text(self, uri: S3Uri) -> str:
        """The start of a (failure) object as text."""
        body = self.s3.get_object(Bucket=uri.bucket, Key=uri.key,
                                  Range=f"bytes=0-{FAILURE_TEXT_LIMIT - 1}")["Body"].read()
        return body.decode("utf-8", errors="replace")

    def read_texts(self, uris: list[S3Uri]) -> list[str]:
        return list(self.pool.map(self.read_text, uris))
