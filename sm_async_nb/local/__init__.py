"""The embedded local stack (moto + an async runtime on loopback). Nothing is imported eagerly:
``import sm_async_nb.local`` never imports moto; ``LocalStack`` is resolved on first use."""

from __future__ import annotations

from typing import Any

__all__ = ["LocalStack"]


def __getattr__(name: str) -> Any:
    if name == "LocalStack":
        from .stack import LocalStack

        return LocalStack
    raise AttributeError(f"module 'sm_async_nb.local' has no attribute {name!r}")
