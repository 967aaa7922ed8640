"""The child process of the ``child`` placement: ``python -m sm_async_nb.local.child``.

It reads the stack's options (one JSON line) on stdin, runs the engine in this process, answers
``SM_ASYNC_NB_STACK_READY {"info": ..., "token": ...}`` on stdout (or ``{"error": ...}``), and
stops the engine and exits when its stdin reaches EOF — which also happens when its parent dies,
so it never outlives the process that started it — or when the control namespace's ``stop`` asks.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import signal
import sys
import threading

from .config import StackConfig
from .engine import Engine
from .placement import READY


def main() -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when we stop (Ctrl-C reaches both)
    logging.basicConfig(level=logging.WARNING, format="sm_async_nb local stack: %(levelname)s %(message)s")
    out = sys.stdout
    sys.stdout = sys.stderr  # moto and models may print; keep the handshake channel clean
    try:
        engine = Engine(StackConfig.from_json(sys.stdin.buffer.readline().decode()))
        info = engine.start()
    except Exception as exc:
        out.write(f"{READY} {json.dumps({'error': f'{type(exc).__name__}: {exc}'})}\n")
        out.flush()
        return 2
    out.write(f"{READY} {json.dumps({'info': dataclasses.asdict(info), 'token': engine.token})}\n")
    out.flush()
    def parent_gone() -> None:  # stdin reaches EOF when the parent closes it or dies
        sys.stdin.buffer.read()
        engine.request_stop()

    threading.Thread(target=parent_gone, name="sm-async-nb-parent", daemon=True).start()
    engine.stop_requested.wait()
    engine.stop()
    return 0


if __name__ == "__main__":
    code = main()
    sys.stderr.flush()
    os._exit(code)  # model threads a stop abandoned must not keep the process alive
