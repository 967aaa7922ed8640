"""Model adapters: how the local runtime turns a request body into a response.

Three kinds, one interface (``load()``, ``invoke(...) -> (body, content_type)``, ``close()``):

* :class:`HandlerModel` — a Python file with SageMaker inference-toolkit handlers ``model_fn``,
  ``input_fn``, ``predict_fn``, ``output_fn`` (any subset). Missing ones get the toolkit's
  defaults: ``input_fn`` decodes JSON / CSV / NPY into a numpy array, ``predict_fn`` calls
  ``model.predict(data)`` (or ``model(data)``), ``output_fn`` encodes to the first supported
  type in Accept (JSON when Accept is absent or ``*/*``). ``output_fn`` may return the body or
  ``(body, content_type)``; a body alone is sent with the Accept type. A handler that declares
  a ``context`` parameter also receives a :class:`HandlerContext` (custom attributes, accept, type).
* :class:`CallableModel` — ``fn(body: bytes, content_type)``; ``accept`` and
  ``custom_attributes`` are passed too when ``fn`` declares them. It returns bytes, str,
  a JSON-able dict/list, or ``(body, content_type)``.
* :class:`ContainerModel` — the URL of a serving container implementing ``GET /ping`` and
  ``POST /invocations`` (CustomAttributes forwarded as ``X-Amzn-SageMaker-Custom-Attributes``).
  Lines a container sends back in :data:`LOG_HEADER` (the stack's own model server does, see
  ``local/modelserver.py``) are printed, so they reach the model's CloudWatch Logs stream.
  Loading it waits until ``/ping`` answers 200, as SageMaker waits before an instance takes
  requests; a container that goes away mid-request raises :class:`ContainerUnreachable`.

Every adapter answers :meth:`ping` (a container: one ``GET /ping``; a Python model: loaded).
Errors raised by a model are turned into failure objects by the worker; they never stop the
runtime.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import importlib.util
import inspect
import io
import json
import os
import sys
import threading
import time
import types
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

JSON, CSV, NPY = "application/json", "text/csv", "application/x-npy"

SHIPPED_IRIS = Path(__file__).resolve().parents[1] / "demo_models" / "iris.py"
LOG_HEADER = "X-SM-Async-NB-Model-Log"  # base64 of a JSON list of the lines a served model printed
NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # containers are local: never via a proxy


class ModelInvocationError(Exception):
    """The model answered with an HTTP error (container) or refused the content type."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


class ContainerUnreachable(Exception):
    """The serving container closed the connection or could not be reached during a request."""

    def __init__(self, url: str, error: BaseException):
        super().__init__(f"the model container at {url} went away while handling the request "
                         f"({type(error).__name__}: {error}); did it crash?")
        self.url = url


@dataclass(frozen=True)
class HandlerContext:
    custom_attributes: str | None
    accept: str | None
    content_type: str | None


class ModelAdapter(Protocol):
    name: str

    def load(self) -> None: ...

    def ping(self) -> bool: ...

    def invoke(self, body: bytes, content_type: str | None, accept: str | None,
               custom_attributes: str | None = None, timeout: float | None = None) -> tuple[bytes, str]: ...

    def close(self) -> None: ...


def media_type(value: str | None) -> str:
    return (value or "").split(";", 1)[0].strip().lower()


# -- the toolkit's default encoders / decoders -----------------------------------------------
def default_decode(data: bytes, content_type: str | None) -> Any:
    import numpy as np

    kind = media_type(content_type) or JSON
    if kind == JSON:
        return np.array(json.loads(data))
    if kind == CSV:
        return np.genfromtxt(io.StringIO(data.decode("utf-8")), delimiter=",")
    if kind == NPY:
        return np.load(io.BytesIO(data), allow_pickle=False)
    raise ModelInvocationError(415, f"Content type {content_type} is not supported by the default "
                                    f"input_fn; supported: {JSON}, {CSV}, {NPY}.")


def choose_accept(accept: str | None, supported: tuple[str, ...] = (JSON, CSV, NPY),
                  default: str = JSON) -> str:
    """The first type in Accept that ``supported`` has; ``default`` for absent or ``*/*``."""
    wanted = [media_type(part) for part in (accept or "").split(",") if part.strip()]
    if not wanted or "*/*" in wanted:
        return default
    for kind in wanted:
        if kind in supported:
            return kind
    raise ModelInvocationError(406, f"Accept {accept} is not supported; supported: {', '.join(supported)}.")


def default_encode(prediction: Any, accept: str) -> bytes:
    import numpy as np

    if accept == JSON:
        value = prediction.tolist() if hasattr(prediction, "tolist") else prediction
        return json.dumps(value).encode()
    if accept == CSV:
        stream = io.StringIO()
        np.savetxt(stream, np.asarray(prediction), delimiter=",", fmt="%s")
        return stream.getvalue().encode()
    stream_b = io.BytesIO()
    np.save(stream_b, np.asarray(prediction), allow_pickle=False)
    return stream_b.getvalue()


def default_predict(data: Any, model: Any) -> Any:
    if hasattr(model, "predict"):
        return model.predict(data)
    if callable(model):
        return model(data)
    raise NotImplementedError("the handler file has no predict_fn and its model has no predict(); "
                              "define predict_fn(data, model).")


def _as_bytes(body: Any) -> bytes:
    if isinstance(body, (bytes, bytearray, memoryview)):
        return bytes(body)
    if isinstance(body, str):
        return body.encode("utf-8")
    raise TypeError(f"a model must return bytes or str (or a (body, content_type) tuple), "
                    f"not {type(body).__name__}")


def _wants(fn: Callable, name: str) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


# -- adapters ----------------------------------------------------------------------------------
class HandlerModel:
    """Inference-toolkit handlers from a Python file (or an already imported module).

    ``model_dir`` is what ``model_fn`` receives (the extracted model.tar.gz, as SageMaker's
    framework containers pass /opt/ml/model); by default the handler file's folder.
    """

    def __init__(self, source: str | os.PathLike | types.ModuleType, model_dir: str | os.PathLike | None = None):
        self._module = source if isinstance(source, types.ModuleType) else None
        self.path = None if self._module else Path(source).resolve()
        self.name = self.path.name if self.path else getattr(source, "__name__", "module")
        self.model_dir = str(model_dir) if model_dir is not None else None
        self._model: Any = None
        self._loaded = False
        self._lock = threading.Lock()

    def _import(self) -> types.ModuleType:
        assert self.path is not None
        if not self.path.is_file():
            raise FileNotFoundError(f"model file {self.path} does not exist")
        digest = hashlib.sha1(str(self.path).encode()).hexdigest()[:10]
        spec = importlib.util.spec_from_file_location(f"sm_async_nb_model_{digest}", self.path)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    def load(self) -> None:
        """Import the file and call ``model_fn(model_dir)`` once (the file's directory)."""
        with self._lock:
            if self._loaded:
                return
            module = self._module or self._import()
            model_fn = getattr(module, "model_fn", None)
            model_dir = self.model_dir or (str(self.path.parent) if self.path else os.getcwd())
            self._model = model_fn(model_dir) if model_fn else None
            self._module, self._loaded = module, True

    def ping(self) -> bool:
        return self._loaded

    def _call(self, fn: Callable, *args: Any, context: HandlerContext) -> Any:
        return fn(*args, context=context) if _wants(fn, "context") else fn(*args)

    def invoke(self, body: bytes, content_type: str | None, accept: str | None,
               custom_attributes: str | None = None, timeout: float | None = None) -> tuple[bytes, str]:
        self.load()
        module = self._module
        context = HandlerContext(custom_attributes, accept, content_type)
        input_fn = getattr(module, "input_fn", None)
        predict_fn = getattr(module, "predict_fn", None)
        output_fn = getattr(module, "output_fn", None)
        data = (self._call(input_fn, body, content_type, context=context) if input_fn
                else default_decode(body, content_type))
        prediction = (self._call(predict_fn, data, self._model, context=context) if predict_fn
                      else default_predict(data, self._model))
        if output_fn:
            wanted = accept if accept and accept.strip() != "*/*" else JSON
            result = self._call(output_fn, prediction, wanted, context=context)
        else:
            wanted = choose_accept(accept)
            result = default_encode(prediction, wanted)
        if isinstance(result, tuple):
            out, out_type = result
            return _as_bytes(out), str(out_type)
        return _as_bytes(result), wanted

    def close(self) -> None:
        pass


class CallableModel:
    """A plain Python function as the model (see the module docstring for its signature)."""

    def __init__(self, fn: Callable[..., Any]):
        self.fn = fn
        self.name = getattr(fn, "__name__", type(fn).__name__)

    def load(self) -> None:
        pass

    def ping(self) -> bool:
        return True

    def invoke(self, body: bytes, content_type: str | None, accept: str | None,
               custom_attributes: str | None = None, timeout: float | None = None) -> tuple[bytes, str]:
        extra: dict[str, Any] = {}
        if _wants(self.fn, "accept"):
            extra["accept"] = accept
        if _wants(self.fn, "custom_attributes"):
            extra["custom_attributes"] = custom_attributes
        result = self.fn(body, content_type, **extra)
        if isinstance(result, tuple):
            out, out_type = result
            return _as_bytes(out), str(out_type)
        if isinstance(result, (dict, list)):
            return json.dumps(result).encode(), JSON
        if isinstance(result, str):
            return result.encode("utf-8"), accept if accept and "*" not in accept else "text/plain"
        fallback = content_type or "application/octet-stream"
        return _as_bytes(result), accept if accept and "*" not in accept else fallback

    def close(self) -> None:
        pass


PING_INTERVAL = 0.2


class ContainerModel:
    """A serving container (``GET /ping``, ``POST /invocations``) reachable at ``url``.

    ``ping_timeout``: how long :meth:`load` waits for ``/ping`` to answer 200 (a container may
    still be starting), in seconds of ``clock``.
    """

    def __init__(self, url: str, ping_timeout: float = 10.0, clock: Callable[[], float] | None = None):
        self.url = url.rstrip("/")
        self.name = self.url
        self.ping_timeout = ping_timeout
        self.clock = clock or time.monotonic

    def _ping_status(self) -> str | int:
        """The status of one ``GET /ping``, or why there was none."""
        try:
            with NO_PROXY.open(self.url + "/ping", timeout=min(5.0, max(0.5, self.ping_timeout))) as answer:
                return int(answer.status)
        except urllib.error.HTTPError as exc:
            return exc.code
        except (urllib.error.URLError, OSError) as exc:
            return str(getattr(exc, "reason", exc))

    def ping(self) -> bool:
        """Whether ``GET /ping`` answers 200 now."""
        return self._ping_status() == 200

    def load(self) -> None:
        """Wait until ``GET /ping`` answers 200.

        Raises:
            RuntimeError: it did not within ``ping_timeout`` (the last answer, or why none came).
        """
        deadline = self.clock() + self.ping_timeout
        while True:
            status = self._ping_status()
            if status == 200:
                return
            if self.clock() >= deadline:
                break
            time.sleep(PING_INTERVAL)
        said = (f"answered GET /ping with {status}" if isinstance(status, int)
                else f"did not answer GET /ping ({status})")
        raise RuntimeError(f"the model container at {self.url} {said} within {self.ping_timeout:g} s; start it "
                           "(it must answer GET /ping with 200) or map the image to a URL that serves")

    def invoke(self, body: bytes, content_type: str | None, accept: str | None,
               custom_attributes: str | None = None, timeout: float | None = None) -> tuple[bytes, str]:
        headers = {"Content-Type": content_type or "application/octet-stream"}
        if accept:
            headers["Accept"] = accept
        if custom_attributes:
            headers["X-Amzn-SageMaker-Custom-Attributes"] = custom_attributes
        request = urllib.request.Request(self.url + "/invocations", data=body, headers=headers, method="POST")
        try:
            with NO_PROXY.open(request, timeout=timeout) as answer:
                _print_lines(answer.headers.get(LOG_HEADER))
                return answer.read(), answer.headers.get("Content-Type") or "application/octet-stream"
        except urllib.error.HTTPError as exc:
            _print_lines(exc.headers.get(LOG_HEADER))
            text = exc.read().decode("utf-8", "replace")[:2000]
            raise ModelInvocationError(exc.code, text) from None
        except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            if isinstance(reason, TimeoutError):
                raise TimeoutError(f"the model container at {self.url} did not answer within {timeout:g} s") from None
            raise ContainerUnreachable(self.url, reason) from None

    def close(self) -> None:
        pass


def _print_lines(header: str | None) -> None:
    """Print the lines a container sent back (the worker collects what a model call prints)."""
    if not header:
        return
    try:
        lines = json.loads(base64.b64decode(header))
    except ValueError:
        return
    for line in lines if isinstance(lines, list) else []:
        sys.stdout.write(f"{line}\n")


def resolve_model(model: Any = None) -> Any:
    """Turn what the user passed as ``model`` into an adapter (None = the shipped iris model)."""
    if model is None:
        return HandlerModel(SHIPPED_IRIS)
    if all(hasattr(model, attr) for attr in ("load", "invoke", "close")) and not isinstance(model, types.ModuleType):
        return model
    if isinstance(model, types.ModuleType):
        return HandlerModel(model)
    if isinstance(model, str) and model.startswith(("http://", "https://")):
        return ContainerModel(model)
    if isinstance(model, (str, os.PathLike)):
        path = Path(model)
        if path.is_dir():
            if (path / "inference.py").is_file():
                return HandlerModel(path / "inference.py")
            if (path / "code" / "inference.py").is_file():  # a model directory, as in model.tar.gz
                return HandlerModel(path / "code" / "inference.py", model_dir=path)
            raise FileNotFoundError(f"{path} has no inference.py (or code/inference.py) with model handlers")
        if not path.is_file():
            raise FileNotFoundError(f"model file {path} does not exist; pass a .py file with "
                                    "model_fn/input_fn/predict_fn/output_fn, a callable or a container URL")
        return HandlerModel(path)
    if callable(model):
        return CallableModel(model)
    raise TypeError(f"cannot host {model!r}: pass a handler .py file, a callable or a container URL")


def describe(model: Any) -> str:
    """A short human label for logs and the model's Environment in the control plane."""
    if isinstance(model, HandlerModel):
        return str(model.path) if model.path else model.name
    return getattr(model, "name", type(model).__name__)
