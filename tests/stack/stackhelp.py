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


def wait_records(stack, predicate, timeout: float = 20.0, endpoint_name: str | None = None,
                 router_name: str | None = None) -> list[dict]:
    """Poll the runtime's records (of one endpoint, of one inference router's requests) until
    ``predicate(records)`` holds (real threads, real time)."""
    deadline = time.monotonic() + timeout
    while True:
        records = stack.records(endpoint_name, router_name) if router_name else stack.records(endpoint_name)
        if predicate(records):
            return records
        if time.monotonic() > deadline:
            raise AssertionError(f"records never satisfied the condition: {records}")
        time.sleep(0.02)


# -- models and containers for endpoints created through the control plane (SPEC §17) ------------------
def tar_gz(members: dict[str, bytes | str], links: dict[str, str] | None = None) -> bytes:
    """A tar.gz archive of ``members`` (name -> content) and symlinks (name -> target)."""
    import io
    import tarfile

    stream = io.BytesIO()
    with tarfile.open(fileobj=stream, mode="w:gz") as archive:
        for name, content in members.items():
            data = content.encode() if isinstance(content, str) else content
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            archive.addfile(info)
    return stream.getvalue()


# A handler file as AWS's walkthroughs write them: model_fn reads an artifact from the model directory.
SCALER_HANDLER = '''
import json, os, time

def model_fn(model_dir):
    with open(os.path.join(model_dir, "model.json")) as f:
        return json.load(f)

def input_fn(body, content_type):
    text = body.decode() if isinstance(body, (bytes, bytearray)) else body
    if text.startswith("sleep"):
        time.sleep(float(text.split()[1]))
        return [[0.0]]
    return [[float(x) for x in line.split(",")] for line in text.strip().splitlines()]

def predict_fn(rows, model):
    return [[model["scale"] * x for x in row] for row in rows]

def output_fn(prediction, accept):
    return "\\n".join(",".join(f"{x:g}" for x in row) for row in prediction) + "\\n", "text/csv"
'''

# A stdlib serving container: GET /ping (503 until READY_AFTER seconds, then PING_STATUS), POST
# /invocations echoing the headers it got, exiting (a crash) on the body "die".
CONTAINER = r'''
import http.server, json, os, sys, time
port, ready_after, ping_status = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
ready_at = time.time() + ready_after

class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _send(self, status, body=b"", content_type="text/plain"):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/ping":
            self._send(ping_status if time.time() >= ready_at else 503)
        else:
            self._send(404)

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if body.strip() == b"die":
            os._exit(3)
        if body.startswith(b"sleep"):
            time.sleep(float(body.split()[1]))
        echo = {"content_type": self.headers.get("Content-Type"), "accept": self.headers.get("Accept"),
                "custom_attributes": self.headers.get("X-Amzn-SageMaker-Custom-Attributes"), "body": body.decode()}
        self._send(200, json.dumps(echo).encode(), "application/vnd.echo+json")

server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
print("READY", server.server_address[1], flush=True)
server.serve_forever()
'''


def start_container(port: int = 0, ready_after: float = 0.0, ping_status: int = 200):
    """Start :data:`CONTAINER` in a process of its own; returns (process, its URL)."""
    process = subprocess.Popen([sys.executable, "-c", CONTAINER, str(port), str(ready_after), str(ping_status)],
                               stdout=subprocess.PIPE, text=True)
    line = process.stdout.readline()
    assert line.startswith("READY"), line
    return process, f"http://127.0.0.1:{line.split()[1]}"


def create_endpoint(sm, name: str, model: dict, *, output: str, concurrency: int = 1, instances: int = 1,
                    notification: dict | None = None, variant: dict | None = None, config_name: str | None = None,
                    wait: bool = True) -> dict:
    """CreateModel → CreateEndpointConfig (AsyncInferenceConfig) → CreateEndpoint with plain boto3;
    with ``wait``, the boto3 ``endpoint_in_service`` waiter (polling every 0.2 s) unless it fails.
    Returns the last DescribeEndpoint."""
    config_name = config_name or f"{name}-config"
    sm.create_model(ModelName=f"{name}-model", ExecutionRoleArn="arn:aws:iam::123456789012:role/sm", **model)
    output_config = {"S3OutputPath": output, **({"NotificationConfig": notification} if notification else {})}
    sm.create_endpoint_config(EndpointConfigName=config_name, ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": f"{name}-model", "InstanceType": "ml.m5.large",
        "InitialInstanceCount": instances, **(variant or {})}], AsyncInferenceConfig={
        "OutputConfig": output_config, "ClientConfig": {"MaxConcurrentInvocationsPerInstance": concurrency}})
    sm.create_endpoint(EndpointName=name, EndpointConfigName=config_name)
    if wait:
        from botocore.exceptions import WaiterError

        try:
            sm.get_waiter("endpoint_in_service").wait(EndpointName=name, WaiterConfig={"Delay": 0.2,
                                                                                     "MaxAttempts": 300})
        except WaiterError:
            pass  # Failed: the caller reads why
    return sm.describe_endpoint(EndpointName=name)


def wait_for(uri_reader, timeout: float = 30.0):
    """Call ``uri_reader()`` until it returns something other than None."""
    deadline = time.monotonic() + timeout
    while True:
        found = uri_reader()
        if found is not None:
            return found
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.05)


def s3_object(s3, uri: str):
    """(body, content_type) of an s3:// object, or None when it does not exist."""
    from botocore.exceptions import ClientError

    bucket, _, key = uri[len("s3://"):].partition("/")
    try:
        found = s3.get_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if exc.response["Error"]["Code"] in ("NoSuchKey", "404"):
            return None
        raise
    return found["Body"].read(), found["ContentType"]
