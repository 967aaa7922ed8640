"""sm_async_nb: Amazon SageMaker asynchronous inference from Jupyter.

Public names are resolved lazily so ``import sm_async_nb`` stays cheap: it does not import
moto, ipywidgets, pandas or boto3 until a name that needs them is used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "AsyncInferenceClient": "sm_async_nb.client",
    "Invocation": "sm_async_nb.handles",
    "InvocationBatch": "sm_async_nb.handles",
    "Status": "sm_async_nb.records",
    "LocalStack": "sm_async_nb.local.stack",
    "SageMakerAsync": "sm_async_nb.config",
    "ValidationError": "sm_async_nb.errors",
    "InferenceFailed": "sm_async_nb.errors",
    "InferenceExpired": "sm_async_nb.errors",
    "ResultNotReady": "sm_async_nb.errors",
    "SubmissionError": "sm_async_nb.errors",
    "SubmissionInterrupted": "sm_async_nb.errors",
    "DecodeError": "sm_async_nb.errors",
    "JournalError": "sm_async_nb.errors",
    "OutputMissing": "sm_async_nb.errors",
    "NotTracked": "sm_async_nb.errors",
    "AwsError": "sm_async_nb.errors",
    "ConfigurationError": "sm_async_nb.errors",
    "EndpointStatus": "sm_async_nb.endpoints.status",
    "RoutingTarget": "sm_async_nb.contract.routing",
    "RouterStatus": "sm_async_nb.endpoints.router_status",
}

__all__ = [  # the names of _EXPORTS, spelled out for static tools
    "AsyncInferenceClient", "AwsError", "ConfigurationError", "DecodeError", "EndpointStatus", "InferenceExpired",
    "InferenceFailed", "Invocation", "InvocationBatch", "JournalError", "LocalStack", "NotTracked", "OutputMissing",
    "ResultNotReady", "RouterStatus", "RoutingTarget", "SageMakerAsync", "Status", "SubmissionError",
    "SubmissionInterrupted", "ValidationError",
]

if TYPE_CHECKING:  # pragma: no cover
    __version__: str
    from .client import AsyncInferenceClient
    from .config import SageMakerAsync
    from .contract.routing import RoutingTarget
    from .endpoints.router_status import RouterStatus
    from .endpoints.status import EndpointStatus
    from .errors import (
        AwsError,
        ConfigurationError,
        DecodeError,
        InferenceExpired,
        InferenceFailed,
        JournalError,
        NotTracked,
        OutputMissing,
        ResultNotReady,
        SubmissionError,
        SubmissionInterrupted,
        ValidationError,
    )
    from .handles import Invocation, InvocationBatch
    from .local.stack import LocalStack
    from .records import Status


def __getattr__(name: str) -> Any:
    if name == "__version__":  # from the installed metadata: the wheel's version, defined once in pyproject.toml
        from .distribution import version

        return version()
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'sm_async_nb' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS) | {"__version__"})


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext sm_async_nb``: register the magics (a second load is harmless)."""
    from .notebook.magics import load

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """``%unload_ext sm_async_nb``: stop background polling and remove the magics."""
    from .notebook.magics import unload

    unload(ipython)
