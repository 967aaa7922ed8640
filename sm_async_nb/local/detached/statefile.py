"""The detached stack's state file: where it is, how it is written, and when it can be trusted.

One stack per user: ``<cache dir>/sm-async-nb/local-stack.json`` (``$XDG_CACHE_HOME`` or
``~/.cache`` on Linux, ``~/Library/Caches`` on macOS). It holds the server's pid and process
start time, its ports, the environment lines and the control token, so it is written atomically
(temp file + ``os.replace``) with mode 0600 in a 0700 directory.

Every field read back is checked for the type it must have (a pid that is not a number, a host that
is not an IP address, a port out of range...): such a file is corrupt, and replaced like one.
A record is followed only when :func:`verify` says it describes a live stack server of ours: the
pid is alive, started when the record says, runs ``sm_async_nb.local.detached.daemon`` and itself listens
on both ports. Anything else (dead pid, reused pid, a port now held by another program) makes it
stale: it is replaced, never used. A corrupt file is replaced too; a file owned by another user,
a symlink or one others can write is refused with a one-line :class:`StateFileError`.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
import math
import os
import re
import stat
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from ...contract.validation import check_member
from ...errors import ValidationError
from ..info import StackInfo

log = logging.getLogger(__name__)

DAEMON_MODULE = "sm_async_nb.local.detached.daemon"
FILE_NAME = "local-stack.json"


class StateFileError(ValueError):
    """The state file cannot be trusted and must not be replaced silently (one-line message)."""


@dataclass
class StackRecord:
    """What the state file says about the running stack server."""

    info: StackInfo
    create_time: float
    token: str
    idle_timeout: float
    endpoints: list[str] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.info.pid


def cache_dir() -> Path:
    """The user's cache directory, by the platform's rule."""
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches"
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    return Path(xdg) if os.path.isabs(xdg) else Path.home() / ".cache"


def state_dir() -> Path:
    """``<cache dir>/sm-async-nb``, created with mode 0700 when missing."""
    path = cache_dir() / "sm-async-nb"
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def state_path() -> Path:
    return state_dir() / FILE_NAME


def write(record: StackRecord, path: Path) -> None:
    """Write ``record`` to ``path`` atomically, mode 0600."""
    handle, temp = tempfile.mkstemp(prefix=".local-stack-", dir=path.parent)  # mkstemp creates it 0600
    try:
        with os.fdopen(handle, "w") as out:
            json.dump(asdict(record), out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


def read(path: Path) -> StackRecord | None:
    """The record in ``path``; None when there is none or it is corrupt (it will be replaced).

    Raises:
        StateFileError: the file is a symlink, is owned by another user, or others may write it.
    """
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return None
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISREG(info.st_mode):
        raise StateFileError(f"{path} is not a regular file; remove it and start the local stack again")
    if hasattr(os, "getuid") and info.st_uid != os.getuid():
        raise StateFileError(f"{path} belongs to another user (uid {info.st_uid}), not you; "
                             "remove it and start the local stack again")
    if info.st_mode & 0o022:
        raise StateFileError(f"{path} can be written by others (mode {stat.S_IMODE(info.st_mode):04o}); "
                             "remove it and start the local stack again")
    try:
        return _checked(json.loads(path.read_text()))
    except (ValueError, TypeError, AttributeError, KeyError) as exc:
        log.warning("the local stack's state file %s is corrupt (%s); it will be replaced", path, exc)
        return None


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _port(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value < 65536


def _ip(value: Any) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _text(value: Any) -> bool:
    return isinstance(value, str) and bool(value) and value.isprintable()


def _endpoint_name(value: Any) -> bool:
    try:
        check_member("EndpointName", value)
    except ValidationError:
        return False
    return True


# Every field read back, with the type it must have: the file is never trusted (a pid as text would be
# handed to psutil, a host name would send the control token elsewhere).
_INFO_RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "pid": (lambda v: isinstance(v, int) and not isinstance(v, bool) and v > 0, "a process id"),
    "host": (_ip, "an IP address"),
    "moto_port": (_port, "a port number"), "runtime_port": (_port, "a port number"),
    "region": (lambda v: _text(v) and re.fullmatch(r"[a-z0-9-]{1,32}", v) is not None, "a region name"),
    "endpoint_name": (_endpoint_name, "an endpoint name"),
    "input_bucket": (_text, "a bucket name"),
    "output_path": (lambda v: _text(v) and v.startswith("s3://"), "an s3:// URI"),
    "failure_path": (lambda v: _text(v) and v.startswith("s3://"), "an s3:// URI"),
    "time_scale": (lambda v: _number(v) and v > 0, "a positive number"),
}
_RECORD_RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "create_time": (lambda v: _number(v) and v > 0, "a time"),
    "token": (_text, "a token"),
    "idle_timeout": (lambda v: _number(v) and v >= 0, "seconds"),
    "endpoints": (lambda v: isinstance(v, list) and all(_endpoint_name(e) for e in v), "a list of endpoint names"),
}

_OPTIONAL = frozenset({"endpoints", "time_scale"})  # files of earlier versions lack them


def _checked(data: Any) -> StackRecord:
    """The record in ``data``, every field of the type it must have.

    Raises:
        TypeError: naming the first field that is missing or not what it must be.
    """
    if not isinstance(data, dict) or not isinstance(data.get("info"), dict):
        raise TypeError("not a record with an info object")
    for source, rules, shown in ((data["info"], _INFO_RULES, "info."), (data, _RECORD_RULES, "")):
        for name, (valid, what) in rules.items():
            if name not in source and name in _OPTIONAL:
                continue
            if name not in source:
                raise TypeError(f"{shown}{name} is missing")
            if not valid(source[name]):
                raise TypeError(f"{shown}{name} is {source[name]!r}, not {what}")
    names = {f.name for f in fields(StackRecord)} - {"info"}
    return StackRecord(**{k: v for k, v in data.items() if k in names},
                       info=StackInfo(**{k: data["info"][k] for k in _INFO_RULES if k in data["info"]}))


def verify(record: StackRecord) -> str | None:
    """None when ``record`` describes a live stack server of ours, else why it is stale."""
    import psutil

    try:
        process = psutil.Process(record.pid)
        if abs(process.create_time() - record.create_time) > 1.0:
            return f"pid {record.pid} is another process now"
        if DAEMON_MODULE not in " ".join(process.cmdline()):
            return f"pid {record.pid} is not a local stack server"
        listening = {c.laddr.port for c in process.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN}
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return f"its server (pid {record.pid}) is gone"
    except psutil.AccessDenied:
        return f"pid {record.pid} is not yours"
    missing = {record.info.moto_port, record.info.runtime_port} - listening
    if missing:
        return f"its server no longer listens on port(s) {sorted(missing)}"
    return None


def remove(path: Path, pid: int | None = None) -> None:
    """Delete the state file (only if it still names ``pid``, when given)."""
    if pid is not None:
        try:
            current = read(path)
        except StateFileError:
            return
        if current is not None and current.pid != pid:
            return
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """An exclusive lock (next to the state file) so two kernels starting at once share one stack."""
    import fcntl

    fd = os.open(path.with_suffix(".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def to_json(record: StackRecord) -> dict[str, Any]:
    """The record without its token (for ``status`` output)."""
    data = asdict(record)
    data.pop("token")
    return data
