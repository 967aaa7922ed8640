"""Local-stack tests share the session `stack` fixture of tests/conftest.py."""

import pytest

pytest.importorskip("moto")
pytest.importorskip("werkzeug")
