"""Fixtures for the local stack: one shared running stack for the whole session."""

from __future__ import annotations

import time

import pytest

pytest.importorskip("moto")
pytest.importorskip("werkzeug")


@pytest.fixture(scope="session")
def stack():
    """The shared stack: iris model, concurrency 2, SNS topics."""
    from sm_async_nb.local import LocalStack

    with LocalStack(concurrency=2, sns=True) as running:
        yield running


@pytest.fixture
def unique():
    """A fresh name prefix per test (endpoints and ids must not collide on the shared stack)."""
    return f"t{time.time_ns() % 10**12}"
