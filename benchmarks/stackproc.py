"""The local stack in a process of its own, as AWS would be on other machines.

Hosting the stack in the benchmark process would make its runtime server and worker compete with
the client being measured for that process's GIL. Here the child (``python -m
benchmarks.stackproc CONFIG_JSON``) runs a :class:`~sm_async_nb.LocalStack` whose default endpoint
echoes its CSV input, and obeys one JSON command per stdin line (set latency, add a held endpoint,
release it, wait until idle); :class:`RemoteStack` is the parent's handle. The child exits when
its stdin closes, so it never outlives the run.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import boto3

from sm_async_nb import AsyncInferenceClient

ECHO = "bench-echo"
CSV = "text/csv"
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


# --- the parent's handle -------------------------------------------------------------------------

class RemoteStack:
    """Start the child stack; the attributes mirror the LocalStack ones the scenarios use."""

    def __init__(self, latency_ms: float, concurrency: int = 8, lean: bool = False):
        config = {"latency_ms": latency_ms, "concurrency": concurrency, "lean": lean}
        self._process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.stackproc", json.dumps(config)], cwd=Path(__file__).parents[1],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.info: dict[str, Any] = self._read()
        self.region: str = self.info["region"]
        self.input_bucket: str = self.info["input_bucket"]
        self.output_path: str = self.info["output_path"]
        self.failure_path: str = self.info["failure_path"]
        self.endpoint_urls: dict[str, str] = self.info["endpoint_urls"]
        self.env: dict[str, str] = self.info["env"]

    def _read(self) -> dict[str, Any]:
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line:
            raise RuntimeError(f"the stack process exited (code {self._process.wait()}); see its stderr above")
        answer = json.loads(line)
        if "error" in answer:
            raise RuntimeError(f"the stack process failed: {answer['error']}")
        return answer

    def _call(self, op: str, **args: Any) -> dict[str, Any]:
        assert self._process.stdin is not None
        self._process.stdin.write(json.dumps({"op": op, **args}) + "\n")
        self._process.stdin.flush()
        return self._read()

    @property
    def pid(self) -> int:
        """The stack process (its moto child, when there is one, is among its children)."""
        return self._process.pid

    def configure_faults(self, latency_ms: float) -> None:
        self._call("latency", latency_ms=latency_ms)

    def add_held_endpoint(self, name: str, concurrency: int) -> None:
        """An endpoint whose model waits until :meth:`release` (its requests stay pending)."""
        self._call("add_held", name=name, concurrency=concurrency)

    def release(self, name: str) -> None:
        self._call("release", name=name)

    def wait_until_idle(self, timeout: float) -> bool:
        return bool(self._call("wait_idle", timeout=timeout)["idle"])

    def session(self) -> boto3.Session:
        return boto3.Session(region_name=self.region, **CREDENTIALS)

    def boto3_client(self, service: str, **kwargs: Any) -> Any:
        return self.session().client(service, endpoint_url=self.endpoint_urls[service], **kwargs)

    def client(self, **kwargs: Any) -> AsyncInferenceClient:
        kwargs.setdefault("s3_input_path", f"s3://{self.input_bucket}/inputs/")
        return AsyncInferenceClient(session=self.session(), endpoint_urls=self.endpoint_urls, **kwargs)

    def stop(self) -> None:
        """Close the child's stdin (it stops its stack and exits) and wait for it."""
        if self._process.poll() is None:
            assert self._process.stdin is not None
            self._process.stdin.close()
            try:
                self._process.wait(60)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        if self._process.stdout is not None:
            self._process.stdout.close()

    def __enter__(self) -> RemoteStack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --- the child -----------------------------------------------------------------------------------

def echo_csv(body: bytes, content_type: str | None) -> tuple[bytes, str]:
    """The benchmark model: returns its CSV input (one row in, one row out)."""
    return body, CSV


class Gate:
    """A model that does not finish until :meth:`release` (keeps invocations pending)."""

    def __init__(self) -> None:
        self.__name__ = "held_echo"
        self._open = threading.Event()

    def __call__(self, body: bytes, content_type: str | None) -> tuple[bytes, str]:
        self._open.wait()
        return echo_csv(body, content_type)

    def release(self) -> None:
        self._open.set()


def serve(config: dict[str, Any]) -> None:
    from sm_async_nb import LocalStack

    gates: dict[str, Gate] = {}
    with LocalStack(model=echo_csv, endpoint_name=ECHO, concurrency=config["concurrency"],
                    latency_ms=config["latency_ms"], moto_in_process=config["lean"]) as stack:
        try:
            _answer({"region": stack.region, "input_bucket": stack.input_bucket, "output_path": stack.output_path,
                     "failure_path": stack.failure_path, "endpoint_urls": stack.endpoint_urls, "env": stack.env})
            for line in sys.stdin:
                command = json.loads(line)
                op = command.pop("op")
                if op == "latency":
                    stack.configure_faults(latency_ms=command["latency_ms"])
                elif op == "add_held":
                    gates[command["name"]] = Gate()
                    stack.add_endpoint(command["name"], model=gates[command["name"]],
                                       concurrency=command["concurrency"])
                elif op == "release":
                    gates[command["name"]].release()
                elif op == "wait_idle":
                    _answer({"idle": stack.wait_until_idle(command["timeout"])})
                    continue
                _answer({"ok": True})
        finally:
            for gate in gates.values():  # let held model threads end before the stack stops
                gate.release()


def _answer(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    try:
        serve(json.loads(sys.argv[1]))
    except Exception as exc:
        _answer({"error": f"{type(exc).__name__}: {exc}"})
        raise
