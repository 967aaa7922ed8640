"""What this installed distribution is: its name and version, read from the package metadata that
pyproject.toml's ``version`` became when it was built (the one source of truth)."""

from __future__ import annotations

import functools
from importlib import metadata

DISTRIBUTION = "sm_async_nb"
UNKNOWN_VERSION = "0+unknown"  # a source tree imported without being installed


@functools.cache
def version() -> str:
    """The installed version, e.g. ``"0.2.0"``."""
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return UNKNOWN_VERSION
