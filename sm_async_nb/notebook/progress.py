"""Progress while a cell waits: a widget in a Jupyter kernel, a text line elsewhere."""

from __future__ import annotations

import sys
import time
from typing import Any


def in_kernel() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover
        return False
    shell = get_ipython()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


class WaitProgress:
    """Call with (finished, total); updates at most every 0.2 s except for the final count."""

    def __init__(self, what: str):
        self.what = what
        self._bar: Any = None
        self._label: Any = None
        self._last = (-1, 0.0)
        if in_kernel():
            import ipywidgets as widgets
            from IPython.display import display

            self._bar = widgets.IntProgress(min=0, max=1, description="Waiting",
                                            layout=widgets.Layout(width="50%"))
            self._label = widgets.Label()
            display(widgets.HBox([self._bar, self._label]))

    def __call__(self, finished: int, total: int) -> None:
        now = time.monotonic()
        if finished == self._last[0] or (finished < total and now - self._last[1] < 0.2):
            return
        self._last = (finished, now)
        text = f"{finished}/{total} finished ({self.what})"
        if self._bar is not None:
            self._bar.max = max(1, total)
            self._bar.value = finished
            self._bar.bar_style = "success" if finished == total else ""
            self._label.value = text
        else:
            end = "\n" if finished == total else ""
            print(f"\r{text}", end=end, file=sys.stdout, flush=True)


class UploadProgress:
    """A byte progress bar for a large upload (registered with ``sm_async_nb.progress`` by the
    extension); called from the transfer threads, it only sets simple traits."""

    def __init__(self, what: str, total: int):
        import ipywidgets as widgets
        from IPython.display import display

        self.total, self.done = max(1, total), 0
        self._bar = widgets.IntProgress(min=0, max=self.total, description="Uploading",
                                        layout=widgets.Layout(width="50%"))
        self._label = widgets.Label(what)
        self._what = what
        self._last = 0.0
        display(widgets.HBox([self._bar, self._label]))

    def __call__(self, transferred: int) -> None:
        self.done += transferred
        now = time.monotonic()
        if now - self._last < 0.2 and self.done < self.total:
            return
        self._last = now
        self._bar.value = min(self.done, self.total)
        self._label.value = f"{self._what}: {self.done / 1e6:,.1f} of {self.total / 1e6:,.1f} MB"

    def close(self, ok: bool = True) -> None:
        self._bar.value = self.total if ok else self._bar.value
        self._bar.bar_style = "success" if ok else "danger"


def register_upload_progress() -> None:
    """In a Jupyter kernel, large uploads show a widget instead of a text line."""
    from .. import progress

    if in_kernel():
        progress.set_factory(UploadProgress)
