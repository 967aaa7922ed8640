"""How an endpoint's model becomes something the runtime can call, the way SageMaker resolves it.

A SageMaker model is a container ``Image``, an optional ``ModelDataUrl`` and an ``Environment``
(DescribeModel's ``PrimaryContainer``). The stack serves it, in this order:

1. the stack's own pointer (``SM_ASYNC_NB_LOCAL_MODEL`` in the Environment: a handler file or
   folder, a container URL, or a Python object registered in this process) — how
   ``LocalStack(model=...)`` and ``add_endpoint`` point at a model without copying it;
2. the ``Image`` mapped to a local serving container (``image_map``: an exact image name, or the
   longest prefix that matches), called with the container contract (``/ping``, ``/invocations``);
3. the inference-toolkit convention of SageMaker's framework containers: ``ModelDataUrl``
   (model.tar.gz in the emulated S3) extracted into the model directory, the handlers loaded
   from ``code/<SAGEMAKER_PROGRAM>`` (default ``inference.py``; ``SAGEMAKER_SUBMIT_DIRECTORY``
   may name an ``s3://.../sourcedir.tar.gz`` extracted into ``code/``), and ``model_fn`` given
   the model directory.

Anything else raises :class:`Unresolvable`, whose message is the endpoint's FailureReason and
says what to do. Archives are extracted with tarfile's ``data`` filter, and members with an
absolute path are refused too: nothing lands outside the model directory, and a refused archive
leaves no directory behind.
"""

from __future__ import annotations

import io
import itertools
import logging
import shutil
import sys
import tarfile
import tempfile
import threading
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .hosting import ContainerModel, HandlerModel, resolve_model

log = logging.getLogger(__name__)

POINTER_ENV = "SM_ASYNC_NB_LOCAL_MODEL"  # the stack's own models: a path, a URL or OBJECT_SCHEME + key
DELAY_ENV = "SM_ASYNC_NB_DELAY"  # extra seconds per invocation (LocalStack(delay=...))
OBJECT_SCHEME = "python-object:"
PROGRAM_ENV, SUBMIT_DIR_ENV = "SAGEMAKER_PROGRAM", "SAGEMAKER_SUBMIT_DIRECTORY"
DEFAULT_PROGRAM = "inference.py"
MAX_REASON = 1024  # DescribeEndpoint's FailureReason is at most this long


class Unresolvable(Exception):
    """A model the stack cannot serve; the message says why and what to do (one line)."""

    def __init__(self, message: str):
        super().__init__(" ".join(message.split())[:MAX_REASON])


@dataclass(frozen=True)
class ModelSource:
    """What DescribeModel says about a model's (primary) container."""

    name: str
    image: str = ""
    model_data_url: str | None = None
    environment: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_description(cls, described: dict[str, Any]) -> ModelSource:
        container = described.get("PrimaryContainer") or (described.get("Containers") or [{}])[0]
        return cls(name=described.get("ModelName", "?"), image=container.get("Image") or "",
                   model_data_url=container.get("ModelDataUrl"), environment=dict(container.get("Environment") or {}))

    @property
    def delay(self) -> float:
        try:
            return max(0.0, float(self.environment.get(DELAY_ENV, 0)))
        except ValueError:
            return 0.0


@dataclass
class Resolved:
    """A model ready to load: its adapter, and the directory made for it (removed with :meth:`discard`)."""

    adapter: Any
    model_dir: Path | None = None

    def discard(self) -> None:
        if self.model_dir is not None:
            shutil.rmtree(self.model_dir, ignore_errors=True)


class Resolver:
    """Resolves models for one engine (see the module docstring).

    Args:
        read: the bytes of an ``s3://`` object (the worker's sink).
        image_map: (image or image prefix, container URL) pairs.
        work_dir: where model directories are made.
        clock: the emulated clock containers' startup timeouts are measured on.
    """

    def __init__(self, read: Callable[[str], bytes], image_map: tuple[tuple[str, str], ...], work_dir: Path,
                 clock: Callable[[], float]):
        self.read, self.work_dir, self.clock = read, work_dir, clock
        self.image_map = dict(image_map)
        self._shared: dict[str, Any] = {}  # pointer -> adapter, shared by every endpoint pointing at it
        self._objects: dict[str, Any] = {}
        self._count = itertools.count()
        self._lock = threading.Lock()

    # -- the stack's own models --------------------------------------------------------------------
    def pointer(self, model: Any) -> str:
        """The Environment value pointing at ``model`` (a path or URL as it is, a Python object
        registered here under a key)."""
        if isinstance(model, str):
            return model
        with self._lock:
            for key, known in self._objects.items():
                if known is model:
                    return key
            key = f"{OBJECT_SCHEME}{next(self._count)}"
            self._objects[key] = model
            return key

    def share(self, pointer: str, adapter: Any) -> None:
        """Use ``adapter`` for every endpoint pointing at ``pointer`` (e.g. one loaded in advance)."""
        with self._lock:
            self._shared[pointer] = adapter

    def map_images(self, pairs: tuple[tuple[str, str], ...]) -> None:
        """Add (or replace) image mappings."""
        with self._lock:
            self.image_map.update(dict(pairs))

    def _from_pointer(self, pointer: str, startup: float) -> Any:
        with self._lock:
            known = self._shared.get(pointer)
            obj = self._objects.get(pointer)
        if known is not None:
            return known
        if pointer.startswith(OBJECT_SCHEME):
            if obj is None:
                raise Unresolvable(f"{POINTER_ENV}={pointer} names no model of this stack's process")
            adapter = resolve_model(obj)
        elif pointer.startswith(("http://", "https://")):
            adapter = ContainerModel(pointer, ping_timeout=startup, clock=self.clock)
        else:
            try:
                adapter = resolve_model(pointer)
            except (OSError, TypeError) as exc:
                raise Unresolvable(f"{POINTER_ENV}={pointer}: {exc}") from None
        with self._lock:
            return self._shared.setdefault(pointer, adapter)

    def close(self) -> None:
        """Close the shared adapters (the stack stops)."""
        with self._lock:
            shared, self._shared = list(self._shared.values()), {}
        for adapter in shared:
            try:
                adapter.close()
            except Exception:
                log.warning("could not close model %s", getattr(adapter, "name", adapter), exc_info=True)

    # -- resolution ----------------------------------------------------------------------------------
    def mapped(self, image: str) -> str | None:
        """The container URL ``image`` is mapped to (exact name first, then the longest prefix)."""
        with self._lock:
            if image in self.image_map:
                return self.image_map[image]
            prefixes = [p for p in self.image_map if image.startswith(p)]
            return self.image_map[max(prefixes, key=len)] if prefixes else None

    def resolve(self, source: ModelSource, startup: float) -> Resolved:
        """The adapter for ``source`` (not loaded yet); ``startup``: how long a container may take to
        answer /ping, in emulated seconds.

        Raises:
            Unresolvable: why it cannot be served, and what to do.
        """
        pointer = source.environment.get(POINTER_ENV)
        if pointer:
            return Resolved(self._from_pointer(pointer, startup))
        url = self.mapped(source.image)
        if url is not None:
            return Resolved(ContainerModel(url, ping_timeout=startup, clock=self.clock))
        submit_dir = source.environment.get(SUBMIT_DIR_ENV, "")
        if not source.model_data_url and not submit_dir.startswith("s3://"):
            raise Unresolvable(
                f"Cannot serve model {source.name}: its image {source.image or '(none)'} is not mapped to a local "
                f"serving container and it has no ModelDataUrl. Start the local stack with "
                f"image_map={{'{source.image or 'IMAGE'}': 'http://127.0.0.1:PORT'}} (--image-map IMAGE=URL), or "
                f"give the model a ModelDataUrl: a model.tar.gz in S3 with your handlers in code/{DEFAULT_PROGRAM}.")
        model_dir = Path(tempfile.mkdtemp(prefix=f"{_safe(source.name)}-", dir=self.work_dir))
        try:
            return Resolved(self._handlers(source, model_dir, submit_dir), model_dir)
        except BaseException:
            shutil.rmtree(model_dir, ignore_errors=True)
            raise

    def _handlers(self, source: ModelSource, model_dir: Path, submit_dir: str) -> HandlerModel:
        what = f"model {source.name}"
        if source.model_data_url:
            extract(self._download(source.model_data_url, f"{what}: ModelDataUrl"), model_dir,
                    f"{what}: ModelDataUrl {source.model_data_url}")
        code_dir = model_dir / "code"
        if submit_dir.startswith("s3://"):
            extract(self._download(submit_dir, f"{what}: {SUBMIT_DIR_ENV}"), code_dir,
                    f"{what}: {SUBMIT_DIR_ENV} {submit_dir}")
        program = source.environment.get(PROGRAM_ENV) or DEFAULT_PROGRAM
        handler = (code_dir / program).resolve()
        if code_dir.resolve() not in handler.parents:
            raise Unresolvable(f"{what}: {PROGRAM_ENV}={program} must name a file inside code/")
        if not handler.is_file():
            where = submit_dir if submit_dir.startswith("s3://") else source.model_data_url
            raise Unresolvable(
                f"{what}: {where} has no code/{program}. Put your inference handlers (model_fn, input_fn, "
                f"predict_fn, output_fn) at code/{program} in model.tar.gz (or in the sourcedir.tar.gz that "
                f"{SUBMIT_DIR_ENV} names), set {PROGRAM_ENV} to the file that has them, or map the image "
                f"{source.image or '(none)'} to a serving container with image_map.")
        if str(code_dir) not in sys.path:
            sys.path.insert(0, str(code_dir))  # as the toolkit does: the handler may import its siblings
        return HandlerModel(handler, model_dir=model_dir)

    def _download(self, uri: str, what: str) -> bytes:
        if not uri.startswith("s3://"):
            raise Unresolvable(f"{what} {uri} is not an s3:// URI of a tar.gz archive")
        try:
            return self.read(uri)
        except Exception as exc:
            raise Unresolvable(f"{what} {uri} cannot be read ({type(exc).__name__}: {exc}); upload the archive "
                               "there first (e.g. aws s3 cp model.tar.gz ...)") from None


def _refuse_escapes(member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo | None:
    """tarfile's ``data`` filter, and no absolute names either (that filter would strip the slash)."""
    if member.name.startswith(("/", "\\")) or Path(member.name).is_absolute():
        raise tarfile.AbsolutePathError(member)
    return tarfile.data_filter(member, dest)


def extract(data: bytes, into: Path, what: str) -> None:
    """Extract a tar.gz archive into ``into`` (created if needed).

    Raises:
        Unresolvable: not a tar.gz archive, or a member that would land outside ``into`` (an
            absolute path, ``..``, a link pointing out, a device); ``into`` is left as it was made.
    """
    if not hasattr(tarfile, "data_filter"):  # pragma: no cover - every supported Python has it
        raise Unresolvable("this Python's tarfile has no extraction filters; upgrade Python to extract archives")
    into.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
            archive.extractall(into, filter=_refuse_escapes)
    except tarfile.FilterError as exc:
        shutil.rmtree(into, ignore_errors=True)
        raise Unresolvable(f"{what}: refused, member {exc.tarinfo.name!r} would land outside the model "
                           f"directory ({exc}); nothing was extracted") from None
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        shutil.rmtree(into, ignore_errors=True)
        raise Unresolvable(f"{what} is not a tar.gz archive ({type(exc).__name__}: {exc}); make one with "
                           "`tar -czf model.tar.gz -C model_dir .` (your handlers in code/inference.py)") from None


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in name)[:40] or "model"
