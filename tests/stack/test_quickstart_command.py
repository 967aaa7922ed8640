"""The README's first command: the quickstart, end to end on the local stack, in a fresh process."""

import subprocess
import sys


def test_quickstart_command_runs_end_to_end():
    done = subprocess.run([sys.executable, "-m", "sm_async_nb.cli", "quickstart", "--delay", "0.1"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "setosa" in done.stdout and "virginica" in done.stdout
    assert "result aligned to the input index: True" in done.stdout
    assert "{'COMPLETED': 3}" in done.stdout
