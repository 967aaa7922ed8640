"""Fixtures of the panel's unit tests: a recording comm (every widget message and its size), the
output bucket, a user namespace for "Load", and panels made on the client fixture."""

from __future__ import annotations

import json
from types import SimpleNamespace

import boto3
import comm
import pytest
from comm.base_comm import BaseComm
from panelkit import NOW


class Wire:
    """Every comm message: (comm id, msg type, data, JSON size of data); binary buffers (the bytes of
    Image/Audio/Video values) are counted apart, per message index."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, str, dict, int]] = []
        self.buffers: dict[int, int] = {}  # message index -> bytes in its binary buffers
        self.models: dict[str, str] = {}  # comm id -> _model_name

    def record(self, comm_id: str, msg_type: str, data: dict | None, buffers=None) -> None:
        data = data or {}
        state = data.get("state", {})
        if msg_type == "comm_open":
            self.models[comm_id] = state.get("_model_name", "")
        if buffers:
            self.buffers[len(self.messages)] = sum(len(memoryview(b).cast("B")) for b in buffers)
        self.messages.append((comm_id, msg_type, data, len(json.dumps(data, separators=(",", ":")))))

    def buffer_bytes_since(self, mark: int) -> int:
        return sum(n for index, n in self.buffers.items() if index >= mark)

    def total_bytes_since(self, mark: int) -> int:
        """JSON and binary buffers: what the browser receives."""
        return self.bytes_since(mark) + self.buffer_bytes_since(mark)

    def mark(self) -> int:
        return len(self.messages)

    def since(self, mark: int) -> list[tuple[str, str, dict, int]]:
        return self.messages[mark:]

    def bytes_since(self, mark: int) -> int:
        return sum(size for *_, size in self.since(mark))

    def html_values(self, mark: int = 0) -> list[str]:
        """Every value an HTML widget was opened with or updated to."""
        return [m[2]["state"]["value"] for m in self.since(mark)
                if self.models.get(m[0]) == "HTMLModel" and "value" in m[2].get("state", {})]

    def updated_ids(self, mark: int) -> set[str]:
        return {m[0] for m in self.since(mark) if m[1] == "comm_msg"}


@pytest.fixture
def wire(monkeypatch):
    recorder = Wire()

    class RecordingComm(BaseComm):
        def publish_msg(self, msg_type, data=None, metadata=None, buffers=None, **keys):
            recorder.record(self.comm_id, msg_type, data, buffers)

    monkeypatch.setattr(comm, "create_comm", lambda *a, **kw: RecordingComm(*a, **kw))
    from ipywidgets.widgets import widget

    legacy = getattr(widget, "Comm", None)  # ipywidgets before 8.0.5 opens ipykernel's Comm itself
    if legacy is not None:

        class LegacyRecordingComm(legacy):
            kernel = "none: recorded"  # those releases send updates only when the comm has a kernel

            def __init__(self, *args, **kwargs):
                super().__init__(*args, show_warning=False, **kwargs)

            publish_msg = RecordingComm.publish_msg

        monkeypatch.setattr(widget, "Comm", LegacyRecordingComm)
    return recorder


@pytest.fixture
def s3(moto_aws):
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="out")
    return s3


@pytest.fixture
def user_ns(monkeypatch):
    import IPython

    ns: dict = {}
    monkeypatch.setattr(IPython, "get_ipython", lambda: SimpleNamespace(user_ns=ns, push=ns.update))
    return ns


@pytest.fixture
def make_panel(client, wire, s3):
    """``make_panel(**options)``: a Panel on the client (no auto-refresh, a fixed clock unless
    given), closed at the end."""
    from sm_async_nb.notebook.panel.panel import Panel

    panels = []

    def make(**kwargs):
        kwargs.setdefault("auto_refresh", False)
        kwargs.setdefault("clock", lambda: NOW)
        panel = Panel(client._parts, **kwargs)
        panels.append(panel)
        return panel

    yield make
    for panel in panels:
        panel.close()
