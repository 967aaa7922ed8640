"""Where the local stack's engine runs, as a strategy (huey's ``WORKER_TO_ENVIRONMENT`` is the model).

* ``child`` (the default for ``sma.LocalStack`` and ``%sm_async local start --in-kernel``): a
  child process of this one, ending with it (it exits when its stdin closes, which also happens
  when this process dies). Why not this process: moto keeps its state in module globals, so moto
  in a kernel's or a test run's own process would share — and be reset by — any ``mock_aws`` run
  there; and the stack's threads would compete with the notebook for this process's GIL. A model
  given as a Python object (a callable, a module, an adapter) cannot cross into the child: it is
  served from this process on a loopback port with the container contract (``modelserver.py``)
  and the engine uses it as a container model.
* ``this-process``: the engine's threads in this process (the child and the detached server host
  it so; ``sm-async-nb local`` in the foreground too, since that process hosts nothing else).
* ``detached`` (``sm-async-nb local start``, ``%sm_async local start``): the per-user server of
  its own session that outlives kernels, found through its state file (``detached/handle.py``).

All three give the same :class:`~sm_async_nb.local.handle.StackHandle` and the same engine.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
from typing import Any

from .config import StackConfig, absolute_model
from .control import Control, DirectControl, HttpControl
from .detached.handle import Detached
from .info import StackInfo
from .settings import package_env

log = logging.getLogger(__name__)

THIS_PROCESS, CHILD, DETACHED = "this-process", "child", "detached"
START_TIMEOUT = 90.0
CHILD_MODULE = "sm_async_nb.local.child"
READY = "SM_ASYNC_NB_STACK_READY"


def is_python_object(model: Any) -> bool:
    """A model only this process can call (anything but None, a path or a URL)."""
    return model is not None and not isinstance(model, (str, os.PathLike))


class ThisProcess:
    """The engine's threads in this process."""

    name, outlives_owner = THIS_PROCESS, False

    def __init__(self) -> None:
        self.engine: Any = None
        self.started, self.differs = True, list[str]()

    def start(self, config: StackConfig) -> tuple[StackInfo, Control]:
        from .engine import Engine

        self.engine = Engine(config)
        info = self.engine.start()
        return info, DirectControl(self.engine)

    def export_model(self, model: Any) -> Any:
        return model

    def stop(self) -> None:
        if self.engine is not None:
            self.engine.stop()

    release = stop


class ChildProcess:
    """The engine in a child process of this one (see the module docstring)."""

    name, outlives_owner = CHILD, False

    def __init__(self) -> None:
        self.started, self.differs = True, list[str]()
        self.process: subprocess.Popen[bytes] | None = None
        self._models: Any = None  # the ModelServer for models given as Python objects, once there is one
        self._served: dict[int, str] = {}  # id(model) -> its URL there
        self._lock = threading.Lock()

    def start(self, config: StackConfig) -> tuple[StackInfo, Control]:
        """Start the child and wait for its handshake.

        Raises:
            ValueError: the model file does not exist.
            RuntimeError: the child did not start (what it said).
        """
        if config.model is not None:
            config = config.replace(model=self.export_model(config.model))
        try:
            self.process = subprocess.Popen([sys.executable, "-m", CHILD_MODULE], stdin=subprocess.PIPE,
                                            stdout=subprocess.PIPE, env=package_env())
            assert self.process.stdin is not None
            self.process.stdin.write(config.to_json().encode() + b"\n")
            self.process.stdin.flush()
            answer = self._handshake()
        except BaseException:
            self.stop()
            raise
        return StackInfo(**answer["info"]), HttpControl(StackInfo(**answer["info"]).runtime_url, answer["token"])

    def _handshake(self) -> dict[str, Any]:
        assert self.process is not None and self.process.stdout is not None
        stdout = self.process.stdout
        lines: list[bytes] = []
        reader = threading.Thread(target=lambda: lines.append(stdout.readline()), daemon=True)
        reader.start()
        reader.join(START_TIMEOUT)
        line = lines[0].decode(errors="replace").strip() if lines else ""
        if not line.startswith(READY):
            raise RuntimeError(f"the local stack did not start: {line or f'nothing within {START_TIMEOUT:g} s'}")
        answer = dict(json.loads(line[len(READY):]))
        if "error" in answer:
            raise RuntimeError(answer["error"])
        stdout.close()
        return answer

    def export_model(self, model: Any) -> Any:
        """A path made absolute, a URL as is, a Python object served from this process (its URL).

        Raises:
            ValueError: the model file does not exist.
        """
        if not is_python_object(model):
            return absolute_model(model)
        from .modelserver import ModelServer
        from .service.hosting import resolve_model

        with self._lock:
            if id(model) not in self._served:
                self._models = self._models or ModelServer()
                self._served[id(model)] = self._models.add(resolve_model(model))
            return self._served[id(model)]

    def stop(self) -> None:
        """Close the child's stdin (it stops its engine and exits) and wait; stop served models."""
        process, self.process = self.process, None
        if process is not None:
            try:
                if process.stdin:
                    process.stdin.close()
                process.wait(30)
            except (subprocess.TimeoutExpired, OSError):
                log.warning("the local stack child %s did not stop within 30 s; killing it", process.pid)
                process.kill()
                process.wait()
            finally:
                if process.stdout and not process.stdout.closed:
                    process.stdout.close()
        with self._lock:
            models, self._models, self._served = self._models, None, {}
        if models is not None:
            models.stop()

    release = stop


PLACEMENTS: dict[str, type[Any]] = {THIS_PROCESS: ThisProcess, CHILD: ChildProcess, DETACHED: Detached}


def placement(where: str) -> Any:
    """A new placement strategy by name.

    Raises:
        ValueError: an unknown name.
    """
    kind = PLACEMENTS.get(where)
    if kind is None:
        raise ValueError(f"where must be one of {', '.join(PLACEMENTS)}, not {where!r}")
    return kind()
