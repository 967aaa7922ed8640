"""``inv.show()`` and ``batch.show()`` in a plain IPython shell (a terminal, no Jupyter): the text
form of each output, never its HTML. A real ``ipython`` process reads the lines from stdin, runs the
local stack in-process with the media demo model (notebooks/models/media.py) and shows an image, a
tone and a gallery."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
MODEL = REPO / "notebooks" / "models" / "media.py"


def test_show_in_a_terminal_ipython_is_text(tmp_path):
    lines = [
        "import sm_async_nb as sma",
        f"stack = sma.LocalStack(model={str(MODEL)!r}, endpoint_name='local-media').start()",
        f"client = stack.client(journal_path={str(tmp_path / 'journal.sqlite3')!r})",
        "picture = client.submit('local-media', {'kind': 'image', 'width': 40, 'height': 30}, label='pic').wait(60)",
        "picture.show()",
        "sound = client.submit('local-media', {'kind': 'audio', 'seconds': 0.5}, label='tone').wait(60)",
        "sound.show()",
        "batch = client.submit_many('local-media', [{'kind': 'image', 'seed': i} for i in range(3)], label='trio')",
        "batch.wait(60).show()",
        "client.close(); stack.stop(); print('SHOW-DONE')",
        "exit",
    ]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
           "IPYTHONDIR": str(tmp_path / "ipython")}
    done = subprocess.run([sys.executable, "-m", "IPython", "--simple-prompt", "--no-banner", "--colors=NoColor"],
                          input="\n".join(lines) + "\n", capture_output=True, text=True, env=env, timeout=240,
                          cwd=tmp_path)
    out = done.stdout
    assert "SHOW-DONE" in out, f"{out[-3000:]}\n{done.stderr[-3000:]}"
    assert "Out[5]: \npic · COMPLETED · local-media" in out and "PNG image · 40×30" in out  # multi-line: below Out
    assert "tone · COMPLETED · local-media" in out and "WAV audio · 0.50 s" in out
    assert "Batch trio · 3 part(s)" in out and out.count(" COMPLETED: PNG image · 96×96") == 3
    assert "<img" not in out and "data:image" not in out and "<div" not in out  # text, not HTML
