"""Settings and small helpers the local stack's parts share: ids, dummy credentials, the loopback
rule, duration parsing, the stack's lifecycle states, its emulated clock and the environment of
its processes. The options themselves are ``config.py``'s."""

from __future__ import annotations

import enum
import importlib.util
import ipaddress
import os
import time
from pathlib import Path

ACCOUNT_ID = "123456789012"  # moto's default account
DUMMY_ACCESS_KEY_ID = "testing"
DUMMY_SECRET_ACCESS_KEY = "testing"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT_ID}:role/sm-async-nb-local"
INSTALL_HINT = 'pip install "sm_async_nb[local]"'
MOTO_REQUIREMENT = "moto[server]>=5.1.22,<6"  # the range the local stack is tested with (pyproject's local extra)


def require_local_extra() -> None:
    """Fail early, with the fix, when the ``local`` extra is not installed."""
    missing = [name for name in ("moto", "werkzeug", "flask", "psutil") if importlib.util.find_spec(name) is None]
    if missing:
        raise ImportError(f"LocalStack needs {', '.join(missing)}, which are not installed: run {INSTALL_HINT}")


DEFAULT_IDLE_TIMEOUT = 8 * 3600.0
DEFAULT_ENDPOINT = "local-async"  # the stack's first endpoint
CONTROL_PREFIX = "/_sm_async_nb/"  # the stack's control namespace, on the runtime port (control.py)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str | float) -> float:
    """Seconds from ``90``, ``90s``, ``30m``, ``8h`` or ``1d``.

    Raises:
        ValueError: not a positive duration.
    """
    raw = str(text).strip().lower()
    scale = _UNITS.get(raw[-1:], None)
    try:
        value = float(raw[:-1] if scale else raw) * (scale or 1)
    except ValueError:
        raise ValueError(f"{text!r} is not a duration such as 90, 30m or 8h") from None
    if not value > 0:
        raise ValueError(f"a duration must be > 0, got {text!r}")
    return value


def optional_seconds(text: str) -> float | None:
    """A number of seconds, or ``none`` (for options where None means "never").

    Raises:
        ValueError: neither.
    """
    if text.strip().lower() in ("none", "never", "off"):
        return None
    value = float(text)
    if value < 0:
        raise ValueError(f"expected seconds >= 0 or 'none', got {text!r}")
    return value


def http_url(host: str, port: int) -> str:
    """``http://host:port``, with an IPv6 address in brackets."""
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def check_host(host: str, allow_non_loopback: bool) -> str:
    """The address to bind; anything but loopback needs ``allow_non_loopback=True``."""
    if host == "localhost":
        return "127.0.0.1"  # an IP keeps S3 path-style addressing in every client
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        raise ValueError(f"host must be an IP address such as 127.0.0.1, not {host!r}") from None
    if not loopback and not allow_non_loopback:
        raise ValueError(f"refusing to bind {host}: the local stack has no authentication and binds "
                         "loopback only; pass allow_non_loopback=True if you really mean it")
    return host


class StackState(str, enum.Enum):
    NEW = "new"
    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"

    def __str__(self) -> str:
        return self.value


class ScaledClock:
    """Monotonic clock running ``scale`` times faster than real time."""

    def __init__(self, scale: float = 1.0):
        self.scale, self._origin = scale, time.monotonic()

    def __call__(self) -> float:
        return self._origin + (time.monotonic() - self._origin) * self.scale


def package_env() -> dict[str, str]:
    """This environment for a process of the stack: this copy of the package first on its path,
    and no AWS_ENDPOINT_URL_* (the engine's own clients talk to itself, never to what the caller
    points at)."""
    root = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ, PYTHONUNBUFFERED="1",
               PYTHONPATH=os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p))
    for name in [k for k in env if k.startswith("AWS_ENDPOINT_URL")]:
        env.pop(name)
    return env


def input_bucket(region: str) -> str:
    """The bucket the stack makes for inputs and outputs (SageMaker's default bucket name)."""
    return f"sagemaker-{region}-{ACCOUNT_ID}"
