"""What one kernel holds: the settings, the client built from them, and a local stack if started.

The magics only parse and print; this object does the wiring (and nothing AWS-specific itself).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from .. import lookup
from ..client import AsyncInferenceClient
from ..config import SageMakerAsync
from ..errors import ValidationError
from ..handles import Invocation, InvocationBatch
from ..journal import Journal

if TYPE_CHECKING:
    from ..local.config import StackConfig
    from ..local.handle import StackHandle
    from .panel.panel import Panel

log = logging.getLogger(__name__)

# Settings that change which AWS target or journal the client talks to: rebuild it when they change.
_CLIENT_SETTINGS = ("s3_input_path", "region", "profile", "journal_path", "max_workers")


class NotebookSession:
    def __init__(self, settings: SageMakerAsync):
        self.settings = settings
        self._client: AsyncInferenceClient | None = None
        self._aws_client: AsyncInferenceClient | None = None  # kept while a local stack is in use
        self.stack: StackHandle | None = None  # in this kernel, or the per-user detached one
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
        rows = lookup.find(self.client.journal, key, origin=self.client.origin)
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

    def start_local(self, config: StackConfig, *, in_kernel: bool = False) -> StackHandle:
        """Point this kernel's client at a local stack (stop_local() points it back).

        By default the per-user detached stack: started if none runs, else reattached to (adding the
        endpoint if new), so it outlives kernel restarts and is shared by kernels. ``in_kernel=True``
        starts a stack owned by this kernel instead (a child process of it, ending with it).

        Raises:
            ValidationError: a stack of this kernel is already in use, or the stack could not start (why).
        """
        from ..local.stack import LocalStack

        if self.stack is not None and (in_kernel or not self.stack.outlives_owner):
            raise ValidationError("A local stack is already in use by this kernel: %sm_async local stop first.")
        try:
            stack = LocalStack.from_config(config, where="child" if in_kernel else "detached").start()
        except (ValueError, RuntimeError, OSError) as exc:  # a bad model or option, an untrusted state file
            raise ValidationError(str(exc)) from None
        if self.stack is not None and self.stack.pid == stack.pid:
            self.stack = stack  # the same detached stack: keep the client (and its tracker)
            return stack
        if self.stack is None:
            if self._client is not None:
                self._client.tracker.stop()
            self._aws_client = self._client
        elif self._client is not None:
            self._client.close()
        self._client = None
        self.stack = stack
        return stack

    def stop_local(self) -> bool:
        """Stop the stack this kernel uses, or the running detached one; False when there was none."""
        from ..local.detached import handle as detached

        stack, self.stack = self.stack, None
        if stack is not None:
            if self._client is not None:
                self._client.close()
            self._client, self._aws_client = self._aws_client, None
            stack.stop()
            return True
        try:
            return detached.stop()
        except detached.StateFileError as exc:
            raise ValidationError(str(exc)) from None

    def local_status(self) -> str:
        """One line about the local stack in use (or the running detached one)."""
        from ..local.detached import handle as detached

        stack = self.stack
        if stack is None:
            try:
                stack = detached.find().stack
            except detached.StateFileError as exc:
                raise ValidationError(str(exc)) from None
            if stack is None:
                return "No local stack is running (%sm_async local start)."
        where = f"detached, pid {stack.pid}" if stack.outlives_owner else f"owned by this kernel, pid {stack.pid}"
        used = "" if stack is self.stack else " (not used by this kernel: %sm_async local start attaches)"
        return (f"Local stack running ({where}){used}: endpoint {stack.endpoint_name!r}; endpoints: "
                + ", ".join(f"{k}={v}" for k, v in stack.endpoint_urls.items()))

    def detach_local(self) -> None:
        """Stop using the local stack: one owned by this kernel stops, the detached one keeps running."""
        stack, self.stack = self.stack, None
        if stack is not None:
            if self._client is not None:
                self._client.close()
            self._client, self._aws_client = self._aws_client, None
            stack.release()

    def close(self) -> None:
        for panel in self.panels:
            panel.close()
        self.panels.clear()
        self.detach_local()
        if self._client is not None:
            self._client.close()
            self._client = None
        self.settings.unobserve(self._settings_changed, names=list(_CLIENT_SETTINGS))
