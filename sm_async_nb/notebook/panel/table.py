"""The panel's table: a fixed number of row slots, made once and reused for every page.

Widgets are created on the thread that builds the panel (the kernel's main thread); showing a
page only assigns simple traits (``value``, ``tooltip``, ``children``). traitlets ignores an
assignment of the value a trait already has, so only the cells whose text changed are sent.
Text cells are ``Label`` widgets (rendered as text, never as HTML); the status cell is the only
HTML one and holds nothing but our own status names.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Sequence

import ipywidgets as W
from ipywidgets.widgets.widget_bool import CheckboxStyle
from ipywidgets.widgets.widget_string import HTMLStyle, LabelStyle

from .rows import RowView, status_badge

log = logging.getLogger(__name__)

# (header, CSS width) per column; the first is the selection checkbox.
COLUMNS = (("", "30px"), ("Label", "180px"), ("Endpoint", "150px"), ("Inference id", "115px"),
           ("Status", "105px"), ("Submitted", "125px"), ("Elapsed/latency", "120px"), ("Output", "75px"))

Toggle = Callable[["RowSlot", bool], None]


class _Shared:
    """Layouts and styles shared by every slot: a page of 20 rows needs one Layout model per
    column, not one per cell, so displaying the panel opens far fewer comms."""

    def __init__(self) -> None:
        self.cells = [W.Layout(width=width, min_width=width, overflow="hidden", margin="0 8px 0 0")
                      for _, width in COLUMNS]
        self.row = W.Layout(align_items="center", min_height="26px")
        self.label_style = LabelStyle()
        self.html_style = HTMLStyle()
        self.check_style = CheckboxStyle()

    def widgets(self) -> list[W.Widget]:
        return [*self.cells, self.row, self.label_style, self.html_style, self.check_style]


class RowSlot:
    """One table row's widgets; ``inference_id`` says which invocation it currently shows."""

    def __init__(self, shared: _Shared, on_toggle: Toggle):
        c = shared.cells
        self.inference_id: str | None = None
        self.check = W.Checkbox(value=False, indent=False, layout=c[0], style=shared.check_style)
        self.label = W.Label(layout=c[1], style=shared.label_style)
        self.endpoint = W.Label(layout=c[2], style=shared.label_style)
        self.ident = W.Label(layout=c[3], style=shared.label_style)
        self.status = W.HTML(layout=c[4], style=shared.html_style)
        self.submitted = W.Label(layout=c[5], style=shared.label_style)
        self.timing = W.Label(layout=c[6], style=shared.label_style)
        self.size = W.Label(layout=c[7], style=shared.label_style)
        self.box = W.HBox([self.check, self.label, self.endpoint, self.ident, self.status,
                           self.submitted, self.timing, self.size], layout=shared.row,
                          _dom_classes=("sm-async-row",))
        self.check.observe(lambda change: on_toggle(self, bool(change["new"])), names="value")

    def show(self, row: RowView, selected: bool) -> None:
        """Assign this row's values; unchanged ones send nothing."""
        self.inference_id = row.inference_id
        self.check.value = selected
        with self.label.hold_sync():  # value and tooltip in one message
            self.label.value = row.label
            self.label.tooltip = row.label_full or None
        self.endpoint.value = row.endpoint
        with self.ident.hold_sync():
            self.ident.value = row.short_id
            self.ident.tooltip = row.inference_id
        self.status.value = status_badge(row.status)
        self.submitted.value = row.submitted
        self.timing.value = row.timing
        self.size.value = row.size

    def widgets(self) -> list[W.Widget]:
        return list(self.box.children) + [self.box]


class PagedTable:
    """Header + ``page_size`` reusable slots; ``show`` puts one page of rows in them."""

    def __init__(self, page_size: int, on_toggle: Toggle):
        self.shared = _Shared()
        self.header = W.HBox([W.HTML(f"<b>{title}</b>", layout=self.shared.cells[i], style=self.shared.html_style)
                              for i, (title, _) in enumerate(COLUMNS)], layout=self.shared.row)
        self.empty = W.Label("No tracked invocations match these filters.")
        self.slots = [RowSlot(self.shared, on_toggle) for _ in range(page_size)]
        self.box = W.VBox([self.header, self.empty])

    def show(self, rows: Sequence[RowView], selected: Collection[str]) -> None:
        for slot, row in zip(self.slots, rows, strict=False):
            slot.show(row, row.inference_id in selected)
        for slot in self.slots[len(rows):]:
            slot.inference_id = None
        visible = tuple(s.box for s in self.slots[:len(rows)]) or (self.empty,)
        children = (self.header, *visible)
        if tuple(self.box.children) != children:
            self.box.children = children  # assigned whole: one message with the new model list

    def widgets(self) -> list[W.Widget]:
        found: list[W.Widget] = [self.box, self.header, self.empty, *self.header.children, *self.shared.widgets()]
        for slot in self.slots:
            found += slot.widgets()
        return found
