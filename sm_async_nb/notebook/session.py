"""What one kernel holds: the settings, the client built from them, and a local stack if started.

The magics only parse and print; this object does the wiring (and nothing AWS-specific itself).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from ..client import AsyncInferenceClient
from ..config import SageMakerAsync
from ..errors import ValidationError
from ..handles import Invocation, InvocationBatch
from ..journal import Journal

if TYPE_CHECKING:
    from ..local.stack import LocalStack
    from .panel.panel import Panel

log = logging.getLogger(__name__)

# Settings that change which AWS target or journal the client talks to: rebuild it when they change.
_CLIENT_SETTINGS = ("s3_input_path", "region", "profile", "journal_path", "max_workers")


class NotebookSession:
    def __init__(self, settings: SageMakerAsync):
        self.settings = settings
        self._client: AsyncInferenceClient | None = None
        self._aws_client: AsyncInferenceClient | None = None  # kept while a local stack is in use
        self.stack: LocalStack | None = None
        self.panels: list[Panel] = []  # every panel this kernel made (the last one is the live one)
        self.submitted_once = False
        settings.observe(self._settings_changed, names=list(_CLIENT_SETTINGS))

    # --- the client ----------------------------------------------------------------------------

    @property
    def client(self) -> AsyncInferenceClient:
        if self._client is None:
            if self.stack is not None:
                self._client = self.stack.client(settings=self.settings)
            else:
                self._client = AsyncInferenceClient(settings=self.settings)
        return self._client

    def _settings_changed(self, change: dict[str, Any]) -> None:
        if self._client is not None and self.stack is None:
            self._client.close()
            self._client = None

    def after_submit(self) -> bool:
        """Start background tracking; True when this was the kernel's first submission."""
        self.client.tracker.start()
        first = not self.submitted_once
        self.submitted_once = True
        return first

    # --- the panel: one per kernel ------------------------------------------------------------

    def panel(self) -> Panel:
        """This kernel's panel: the open one again, or a new one when there is none (or it was
        made for a client since replaced, e.g. by ``%sm_async local start``, then it is closed)."""
        client = self.client
        current = self.panels[-1] if self.panels else None
        if current is not None and current.ctx is not client.ctx:
            current.close()
        panel = client.panel()  # the client's open panel again, or a new one
        if panel is not current:
            self.panels.append(panel)
        return panel

    def journal_for_completion(self) -> tuple[Journal, str] | None:
        """The journal and origin tab completion reads (the client is made as any %sm_async
        command would, so completion works right after a restart); None when it cannot be made."""
        try:
            client = self.client
        except Exception:  # e.g. no region configured yet: nothing to complete
            log.debug("no client for completion", exc_info=True)
            return None
        return client.journal, client.origin

    # --- finding what the user named -----------------------------------------------------------

    def resolve(self, key: str) -> Invocation | InvocationBatch:
        """An inference id (or unique prefix), a label (its latest submission) or a batch id →
        a handle, among this client's AWS target."""
        rows = self.client.journal.find(key, origin=self.client.origin)
        if not rows:
            raise ValidationError(f"Nothing tracked matches {key!r}: give an inference id (or its first "
                                  "characters), a label or a batch id (see %sm_async list).")
        if rows[0].batch_id is not None:
            return self.client.batch(rows[0].batch_id)
        return self.client.invocation(rows[0].inference_id)

    def ids_for(self, keys: list[str]) -> list[str]:
        ids: list[str] = []
        for key in keys:
            handle = self.resolve(key)
            ids += handle.inference_ids if isinstance(handle, InvocationBatch) else [handle.inference_id]
        return ids

    # --- the local stack -----------------------------------------------------------------------

    def start_local(self, **options: Any) -> LocalStack:
        """Start a LocalStack and point this kernel's client at it (stop_local() points it back)."""
        if self.stack is not None:
            raise ValidationError("A local stack is already running in this kernel: "
                                  "%sm_async local stop first.")
        from ..local.stack import LocalStack

        stack = LocalStack(**{k: v for k, v in options.items() if v is not None})
        stack.start()
        if self._client is not None:
            self._client.tracker.stop()
        self._aws_client, self._client = self._client, None
        self.stack = stack
        return stack

    def stop_local(self) -> bool:
        if self.stack is None:
            return False
        if self._client is not None:
            self._client.close()
        self.stack.stop()
        self.stack = None
        self._client, self._aws_client = self._aws_client, None
        return True

    def close(self) -> None:
        for panel in self.panels:
            panel.close()
        self.panels.clear()
        self.stop_local()
        if self._client is not None:
            self._client.close()
            self._client = None
        self.settings.unobserve(self._settings_changed, names=list(_CLIENT_SETTINGS))
