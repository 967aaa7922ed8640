"""What the bad-input corpora (test_bad_inputs.py, test_second_map_corpus.py) share: the context a
case acts in, and the input objects the stack holds."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse

import sm_async_nb as sma


@dataclass
class Ctx:
    """What one corpus case acts on: the shared stack, a client with its own journal, a temp folder, the
    corpus's endpoints, ``stage`` (the stage_row fixture) to set a journal row as no verb would, and an
    IPython shell with the extension on that client."""

    stack: Any
    client: Any
    tmp: Path
    endpoints: dict[str, str]
    stage: Any
    make_shell: Any  # the magic_shell fixture
    _shell: Any = field(default=None)

    @property
    def ep(self) -> str:
        return self.stack.endpoint_name

    def shell(self):
        if self._shell is None:
            self._shell = self.make_shell(self.client)  # the same journal and stack as the other cases
        return self._shell

    def magic(self, line: str):
        return self.shell().run_line_magic("invoke_async", line)

    def refused(self, action, error: type, pattern: str) -> BaseException:
        """Run ``action(self)``: it must raise ``error`` from sm_async_nb, one line matching ``pattern``."""
        with pytest.raises(error) as caught:
            action(self)
        message = str(caught.value)
        assert "\n" not in message and len(message) < 600, message
        assert caught.match(pattern)
        assert isinstance(caught.value, sma.errors.SmAsyncError)
        return caught.value

    def deny(self, operation: str, code: str, status: int, message: str):
        """What S3 answers without the permission, or with expired credentials (the real shape)."""
        def answer(model, **_):
            return (AWSResponse("https://s3.amazonaws.com/", status, {}, None),
                    {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}})
        self.client.aws.s3.meta.events.register(f"before-call.s3.{operation}", answer)

    def deny_describe(self):
        """sagemaker:DescribeEndpoint not allowed (submissions then skip their endpoint check)."""
        def answer(**_):
            return (AWSResponse("https://api.sagemaker/", 400, {}, None),
                    {"Error": {"Code": "AccessDeniedException", "Message": "User is not authorized to perform: "
                               "sagemaker:DescribeEndpoint"}, "ResponseMetadata": {"HTTPStatusCode": 400}})
        self.client.aws.get("sagemaker").meta.events.register("before-call.sagemaker.DescribeEndpoint", answer)

    def completed(self, endpoint_key: str):
        return self.client.submit(self.endpoints[endpoint_key], "x").wait(timeout=30)


@pytest.fixture
def corpus_context(stack, tmp_path, stage_row, magic_shell):
    """``corpus_context(client, endpoints)``: the :class:`Ctx` a case acts in."""
    return lambda client, endpoints: Ctx(stack, client, tmp_path, endpoints, stage_row, magic_shell)


@pytest.fixture(scope="module")
def input_keys(stack):
    """Every key under the stack's ``inputs/`` prefix."""
    s3 = stack.boto3_client("s3")

    def keys() -> set[str]:
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=stack.input_bucket, Prefix="inputs/")
        return {o["Key"] for page in pages for o in page.get("Contents", [])}

    return keys
