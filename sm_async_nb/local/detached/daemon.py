"""The detached stack server: the engine (``../engine.py``) in a process of its own session.

``python -m sm_async_nb.local.detached.daemon STATE_FILE CONFIG_JSON`` (started by
``handle.py``, in a session of its own so a kernel restart or Ctrl-C in a terminal does not reach
it) runs the engine, writes the state file once it serves, and exits — removing the state file —
when asked to stop (the control namespace's ``stop``, or SIGTERM), after ``idle_timeout``
seconds without a request and with nothing queued or running, or when the state file no longer
names it. Everything else goes through the engine's token-guarded control namespace.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path

from ..config import StackConfig
from ..engine import Engine
from . import statefile

log = logging.getLogger(__name__)

CHECK_INTERVAL = 0.5


def serve(path: Path, config: StackConfig) -> int:
    """Run the engine until told to stop; returns the exit code."""
    import psutil

    engine = Engine(config)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda *_: engine.request_stop())
    info = engine.start()
    lock = threading.Lock()
    try:
        record = statefile.StackRecord(info=info, create_time=psutil.Process().create_time(), token=engine.token,
                                       idle_timeout=config.idle_timeout, endpoints=list(engine.specs))

        def endpoints_changed(names: list[str]) -> None:  # keep the state file's endpoint list current
            with lock:
                record.endpoints = names
                statefile.write(record, path)

        engine.endpoints_changed = endpoints_changed
        statefile.write(record, path)
        log.info("local stack server %s serving; state in %s", os.getpid(), path)
        reason = _watch(engine, path, config.idle_timeout)
        log.info("local stack server %s stopping: %s", os.getpid(), reason)
    finally:
        engine.stop()
        statefile.remove(path, pid=os.getpid())
    return 0


def _watch(engine: Engine, path: Path, idle_timeout: float) -> str:
    """Block until a reason to stop; returns it."""
    while not engine.stop_requested.wait(CHECK_INTERVAL):
        if engine.busy():
            continue
        if time.monotonic() - engine.last_activity() >= idle_timeout:
            return f"no request for {idle_timeout:g} s"
        try:
            current = statefile.read(path)
        except statefile.StateFileError:
            current = None
        if current is None or current.pid != os.getpid():
            return "the state file no longer names this server"
    return "asked to stop"


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        return serve(Path(argv[0]), StackConfig.from_json(argv[1]))
    except Exception as exc:
        print(f"local stack server failed: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)  # noqa: T201
        return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
