"""Helpers for the local-stack tests: drive a stack from another process, wait on records."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time

IRIS_CSV = "5.1,3.5,1.4,0.2\n6.7,3.0,5.2,2.3\n"

# Helpers available to every client script (they only use boto3 and the environment).
PRELUDE = '''
import json, os, sys, time, urllib.parse
import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

def s3_parts(uri):
    rest = uri[len("s3://"):]
    bucket, _, key = rest.partition("/")
    return bucket, key

def wait_for_object(s3, *uris, timeout=30):
    """The first of ``uris`` that exists, as (uri, body, content_type)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        for uri in uris:
            bucket, key = s3_parts(uri)
            try:
                obj = s3.get_object(Bucket=bucket, Key=key)
            except ClientError as exc:
                if exc.response["Error"]["Code"] in ("NoSuchKey", "404"):
                    continue
                raise
            return uri, obj["Body"].read().decode(), obj["ContentType"]
        time.sleep(0.05)
    raise TimeoutError(f"none of {uris} appeared")

def exists(s3, uri):
    bucket, key = s3_parts(uri)
    try:
        s3.head_object(Bucket=bucket, Key=key)
        return True
    except ClientError:
        return False

def emit(value):
    print("RESULT " + json.dumps(value, default=str))
'''


def clean_env() -> dict[str, str]:
    """The parent's environment without any AWS_* or SM_ASYNC_NB_* setting."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SM_ASYNC_NB_"))}


def client_env(stack) -> dict[str, str]:
    """:func:`clean_env` plus exactly ``stack.env``."""
    return {**clean_env(), **stack.env}


def run_client(stack, script: str, args: object = None, timeout: float = 60) -> object:
    """Run ``script`` in a fresh Python process configured only through ``stack.env``.

    The script sees ``ARGS`` (``args`` through JSON) and reports with ``emit(value)``.
    """
    return run_script(client_env(stack), script, args, timeout)


def run_script(env: dict[str, str], script: str, args: object = None, timeout: float = 60) -> object:
    """:func:`run_client` with an explicit environment."""
    code = PRELUDE + "ARGS = json.loads(sys.argv[1])\n" + textwrap.dedent(script)
    done = subprocess.run([sys.executable, "-c", code, json.dumps(args)], env=env, capture_output=True,
                          text=True, timeout=timeout)
    if done.returncode != 0:
        raise AssertionError(f"client process failed ({done.returncode}):\n{done.stderr[-4000:]}")
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, f"client process printed no RESULT:\n{done.stdout}\n{done.stderr[-2000:]}"
    return json.loads(lines[-1][len("RESULT "):])


def wait_records(stack, predicate, timeout: float = 20.0, endpoint_name: str | None = None) -> list[dict]:
    """Poll the runtime's records until ``predicate(records)`` holds (real threads, real time)."""
    deadline = time.monotonic() + timeout
    while True:
        records = stack.records(endpoint_name)
        if predicate(records):
            return records
        if time.monotonic() > deadline:
            raise AssertionError(f"records never satisfied the condition: {records}")
        time.sleep(0.02)
