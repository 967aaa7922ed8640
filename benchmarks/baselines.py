"""The approaches sm_async_nb is compared with, written the way people write them with boto3."""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterable
from concurrent.futures import Executor
from typing import Any

from botocore.exceptions import ClientError

from sm_async_nb.aws.s3uri import S3Uri


class PutThenInvoke:
    """What the SageMaker SDK's ``predict_async`` does per payload: upload it to S3, then call
    InvokeEndpointAsync with its InputLocation, one after the other."""

    def __init__(self, s3: Any, runtime: Any, endpoint_name: str, bucket: str, prefix: str = "baseline/"):
        self.s3, self.runtime = s3, runtime
        self.endpoint_name, self.bucket, self.prefix = endpoint_name, bucket, prefix

    def one(self, payload: str) -> str:
        key = f"{self.prefix}{uuid.uuid4()}.csv"
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=payload.encode(), ContentType="text/csv")
        answer = self.runtime.invoke_endpoint_async(EndpointName=self.endpoint_name, ContentType="text/csv",
                                                    InputLocation=f"s3://{self.bucket}/{key}")
        return answer["OutputLocation"]

    def sequential(self, payloads: list[str]) -> list[str]:
        return [self.one(p) for p in payloads]

    def pooled(self, pool: Executor, payloads: list[str]) -> list[str]:
        """The practical limit: the same two calls from a raw thread pool."""
        return list(pool.map(self.one, payloads))


def exists(s3: Any, uri: str) -> bool:
    location = S3Uri.parse(uri)
    try:
        s3.head_object(Bucket=location.bucket, Key=location.key)
        return True
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return False
        raise


def head_per_id(s3: Any, locations: Iterable[tuple[str, str]]) -> dict[str, int]:
    """The SDK waiter's way to learn status: HEAD the output, then the failure object, per id."""
    counts = {"completed": 0, "failed": 0, "pending": 0}
    for output, failure in locations:
        if exists(s3, output):
            counts["completed"] += 1
        elif exists(s3, failure):
            counts["failed"] += 1
        else:
            counts["pending"] += 1
    return counts


def read_csv_object(s3: Any, uri: str) -> Any:
    """get_object + pd.read_csv (SageMaker CSV outputs have no header)."""
    import pandas as pd

    location = S3Uri.parse(uri)
    body = s3.get_object(Bucket=location.bucket, Key=location.key)["Body"].read()
    return pd.read_csv(io.BytesIO(body), header=None)


def load_sequential(s3: Any, output_locations: list[str]) -> Any:
    """One output after the other, then one concat."""
    import pandas as pd

    return pd.concat([read_csv_object(s3, uri) for uri in output_locations], ignore_index=True)


def load_pooled(pool: Executor, s3: Any, output_locations: list[str]) -> Any:
    """The practical limit: the same calls from a raw thread pool, then one concat."""
    import pandas as pd

    return pd.concat(list(pool.map(lambda uri: read_csv_object(s3, uri), output_locations)), ignore_index=True)


class RequestCount:
    """Counts the HTTP requests a boto3 client sends (retries included)."""

    def __init__(self, client: Any):
        self.value = 0
        client.meta.events.register("before-send", self._count)

    def _count(self, **_: Any) -> None:
        self.value += 1
