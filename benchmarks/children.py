"""Scenarios that measure a fresh process (peak RSS, CPU) run it as ``python -m MODULE CONFIG_JSON``:
starting it, reading its one JSON line, and the client it makes on the phase's stack."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def run_child(module: str, config: dict[str, Any], env: dict[str, str], timeout: float) -> dict[str, Any]:
    """Run ``module`` with ``config``; its last stdout line is the JSON answer."""
    done = subprocess.run([sys.executable, "-m", module, json.dumps(config)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"{module} ({config.get('mode', '')}) failed:\n{done.stderr[-2000:]}")
    answer: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return answer


def child_client(config: dict[str, Any], **kwargs: Any) -> Any:
    """The child's AsyncInferenceClient on the phase's stack (``prefix``, ``urls``, ``region``, ``journal``)."""
    import boto3

    import sm_async_nb as sma

    session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                            region_name=config["region"])
    return sma.AsyncInferenceClient(config["prefix"], session=session, endpoint_urls=config["urls"],
                                    journal_path=config["journal"], **kwargs)
