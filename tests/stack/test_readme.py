"""The README's Python example against a moto server runs as written (on a free port)."""

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def test_moto_server_example_runs(tmp_path, free_port):
    block = re.search(r"```python\n# README example: moto server\n(.*?)```", README.read_text(), re.S).group(1)
    code = block.replace("5000", str(free_port())).replace("/tmp/readme-journal.sqlite3",
                                                              str(tmp_path / "journal.sqlite3"))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "s3://my-bucket/inputs/" in done.stdout
    assert "COMPLETED" in done.stdout


def test_python_api_example_runs(tmp_path):
    block = re.search(r"```python\n# README example: Python API\n(.*?)```", README.read_text(), re.S).group(1)
    env = {**__import__("os").environ, "SM_ASYNC_NB_HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", block], capture_output=True, text=True, timeout=180, env=env)
    assert done.returncode == 0, done.stderr
    assert "setosa" in done.stdout
    assert re.search(r"\{'(PENDING|COMPLETED)': \d", done.stdout)
    assert "200 True" in done.stdout
