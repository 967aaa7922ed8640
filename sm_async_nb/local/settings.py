"""Settings and small helpers the local stack's parts share: ids, dummy credentials, the loopback
rule, the stack's lifecycle states and its emulated clock."""

from __future__ import annotations

import enum
import importlib.util
import ipaddress
import time
from typing import Any

ACCOUNT_ID = "123456789012"  # moto's default account
DUMMY_ACCESS_KEY_ID = "testing"
DUMMY_SECRET_ACCESS_KEY = "testing"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT_ID}:role/sm-async-nb-local"
INSTALL_HINT = 'pip install "sm_async_nb[local]"'


def require_local_extra() -> None:
    """Fail early, with the fix, when the ``local`` extra is not installed."""
    missing = [name for name in ("moto", "werkzeug", "flask", "psutil") if importlib.util.find_spec(name) is None]
    if missing:
        raise ImportError(f"LocalStack needs {', '.join(missing)}, which are not installed: run {INSTALL_HINT}")


DEFAULT_IDLE_TIMEOUT = 8 * 3600.0
DEFAULT_ENDPOINT = "local-async"  # the stack's first endpoint
CONTROL_PREFIX = "/_sm_async_nb/"  # the detached stack's control API, on the runtime port
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


SCALING_OPTIONS = ("min_instances", "max_instances", "scale_out_seconds", "scale_in_idle_seconds",
                   "metrics_period_seconds")


def add_scaling_arguments(parser: Any) -> None:
    """The scaling options of SPEC §10 on an argparse parser (the CLI and ``%sm_async local``);
    options not given are absent from the namespace."""
    import argparse

    unset = argparse.SUPPRESS
    parser.add_argument("--min-instances", type=int, default=unset,
                        help="instances the endpoint starts with and scales in to (0: scale from zero; default 1)")
    parser.add_argument("--max-instances", type=int, default=unset, help="most instances it scales out to (default 1)")
    parser.add_argument("--scale-out-seconds", type=optional_seconds, metavar="S|none", default=unset,
                        help="with a backlog and 0 instances, add one after S emulated seconds (default 0); "
                             "none: no scale-out policy, requests wait until their TTL")
    parser.add_argument("--scale-in-idle-seconds", type=optional_seconds, metavar="S|none", default=unset,
                        help="scale in to --min-instances after S idle seconds (default none: never)")
    parser.add_argument("--metrics-period-seconds", type=float, metavar="S", default=unset,
                        help="how often the backlog metrics go to CloudWatch (default 60)")


NONE = "none"  # an explicit None among options that drop None values


def scaling_options(args: Any) -> dict[str, Any]:
    """The scaling options given on a command line, an explicit ``none`` as :data:`NONE`."""
    return {k: NONE if getattr(args, k) is None else getattr(args, k) for k in SCALING_OPTIONS if hasattr(args, k)}


def stack_kwargs(options: dict[str, Any]) -> dict[str, Any]:
    """``options`` without unset (None) values, :data:`NONE` turned back into None."""
    return {k: None if v == NONE else v for k, v in options.items() if v is not None}


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
        if scale <= 0:
            raise ValueError(f"time_scale must be > 0, got {scale}")
        self.scale, self._origin = scale, time.monotonic()

    def __call__(self) -> float:
        return self._origin + (time.monotonic() - self._origin) * self.scale
