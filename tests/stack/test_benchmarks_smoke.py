"""`python -m benchmarks --quick` runs every scenario and writes both result files.

No timing assertions: the numbers depend on the machine; this only proves the harness works.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = "abcdefghijklmn"

pytest.importorskip("moto")
pytest.importorskip("jupyter_client")


@pytest.mark.timeout(300)
def test_quick_run_writes_every_scenario(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
           "SM_ASYNC_NB_SDK_PYTHON": str(tmp_path / "no-sdk-venv")}  # the SDK baseline takes minutes: not here
    done = subprocess.run([sys.executable, "-m", "benchmarks", "--quick", "--out", str(tmp_path)], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=290)
    assert done.returncode == 0, done.stderr[-3000:]

    results = json.loads((tmp_path / "results.json").read_text())
    assert {"cpu_count", "python", "versions", "date"} <= set(results["environment"])
    rows = results["scenarios"]
    assert {row["scenario"] for row in rows} == set(SCENARIOS)
    assert {row["latency_ms"] for row in rows if row["scenario"] in "abcde"} == {0, 20}
    assert all(row["data"] for row in rows)

    table = (tmp_path / "results.md").read_text()
    assert "| scenario | latency | ours | baseline(s) | ratio | target (at 20 ms) | met? |" in table
    for letter in SCENARIOS:
        assert f"| {letter}. " in table
