"""The panel's table: a header of sort buttons and a fixed number of row slots, made once and
reused for every page.

Widgets are created on the thread that builds the panel (the kernel's main thread); showing a
page only assigns simple traits (``value``, ``description``, ``tooltip``, ``children``). A slot
showing the same row as before assigns nothing, and traitlets ignores an assignment of the value a
trait already has, so only the cells whose text changed are sent. Text cells are ``Label``
widgets (rendered as text, never as HTML) and button captions are text too; the status cell is
the only HTML one and holds nothing but our own status names.
Shared styles are made from the widgets' own trait classes (no private ipywidgets imports).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import Any

import ipywidgets as W

from ...display.text import status_badge
from .rows import RowView

# One column each: (header, flex basis px, least px, sort key in journal.views.SORTABLE or None, the
# CSS class of its cells). Columns shrink from their basis to their least width (no less than the
# header's longest word: headers wrap onto a second line, values end in "…"), so the table fits the
# output area it is shown in (JupyterLab with the file browser open, Notebook 7, VS Code); narrower
# still, PANEL_CSS hides whole columns by priority. The first column is the selection checkbox;
# the inference id cell is the button that opens the row's details.
COLUMNS = (("", 28, 28, None, "select"), ("Label", 160, 64, "label", "label"),
           ("Endpoint", 120, 72, "endpoint", "endpoint"), ("Inference id", 120, 120, "id", "id"),
           ("Status", 96, 92, "status", "status"), ("Submitted", 104, 84, "submitted", "submitted"),
           ("Elapsed/\u200blatency", 128, 74, "elapsed", "elapsed"), ("Expires in", 92, 64, "expires", "expires"),
           ("Output", 72, 62, "output", "output"))
GAP_PX = 6  # right margin of each cell
# Columns hidden when the table is narrower than (px), the least needed first, so that what stays
# always fits at its least widths (tests/unit/test_panel.py checks each band). Container queries
# are CSS, not JavaScript, and every browser Jupyter runs in (JupyterLab, Notebook 7, VS Code) has them.
HIDE_BELOW = ((760, ("submitted",)), (640, ("endpoint", "expires")), (480, ("elapsed", "output")))
TABLE_BASIS_PX = 880  # the table's comfortable width: the activity view sits beside it only when both fit
PANEL_CSS = "".join(
    [".sm-async-panel{max-width:100%}.sm-async-panel .sm-async-table{container-type:inline-size}",
     ".sm-async-panel .sm-async-row>*,.sm-async-panel .sm-async-head>*{overflow:hidden}",
     ".sm-async-panel .sm-async-cell button,.sm-async-panel button.sm-async-cell{max-width:100%;"
     "overflow:hidden;text-overflow:ellipsis;white-space:nowrap;padding:0 4px}",
     ".sm-async-panel .sm-async-head button.sm-async-cell{white-space:normal;height:auto;min-height:28px;"
     "line-height:1.2}"]
    + [f"@container (max-width:{width}px){{" + ",".join(f".sm-async-panel .sm-async-col-{c}" for c in hidden)
       + "{display:none!important}}" for width, hidden in HIDE_BELOW])

Toggle = Callable[["RowSlot", bool], None]
Open = Callable[["RowSlot"], None]


def _style(widget_class: type[W.Widget]) -> Any:
    """A fresh style of the kind ``widget_class`` takes, found through its public trait."""
    return widget_class.class_traits()["style"].klass()


class _Shared:
    """Layouts and styles shared by every slot: a page of 20 rows needs one Layout model per
    column, not one per cell, so displaying the panel opens far fewer comms."""

    def __init__(self) -> None:
        grow = ("label", "endpoint")  # what takes the room a wide output leaves
        self.cells = [W.Layout(flex=f"{int(key in grow)} {int(basis > least)} {basis}px", width="auto",
                               min_width=f"{least}px", overflow="hidden", margin=f"0 {GAP_PX}px 0 0")
                      for _, basis, least, key, _ in COLUMNS]
        self.row = W.Layout(align_items="center", min_height="26px", width="100%")
        self.head_row = W.Layout(align_items="center", min_height="28px", width="100%",
                                 border_bottom="1px solid var(--jp-border-color2, #d0d7de)")
        self.label_style = _style(W.Label)
        self.html_style = _style(W.HTML)
        self.check_style = _style(W.Checkbox)
        self.button_style = _style(W.Button)  # the id cell: a link-like button that opens the details
        self.button_style.button_color = "transparent"
        self.button_style.text_color = "var(--jp-content-link-color, #0969da)"
        self.head_style = _style(W.Button)
        self.head_style.font_weight = "bold"
        self.head_style.button_color = "transparent"

    def widgets(self) -> list[W.Widget]:
        return [*self.cells, self.row, self.head_row, self.label_style, self.html_style, self.check_style,
                self.button_style, self.head_style]


class RowSlot:
    """One table row's widgets; ``inference_id`` says which invocation it currently shows."""

    def __init__(self, shared: _Shared, on_toggle: Toggle, on_open: Open):
        c = shared.cells
        self.inference_id: str | None = None
        self._shown: RowView | None = None
        col = [("sm-async-cell", f"sm-async-col-{css}") for *_, css in COLUMNS]
        self.check = W.Checkbox(value=False, indent=False, layout=c[0], style=shared.check_style, _dom_classes=col[0])
        self.label = W.Label(layout=c[1], style=shared.label_style, _dom_classes=col[1])
        self.endpoint = W.Label(layout=c[2], style=shared.label_style, _dom_classes=col[2])
        self.ident = W.Button(layout=c[3], style=shared.button_style, _dom_classes=("sm-async-open", *col[3]))
        self.status = W.HTML(layout=c[4], style=shared.html_style, _dom_classes=col[4])
        self.submitted = W.Label(layout=c[5], style=shared.label_style, _dom_classes=col[5])
        self.timing = W.Label(layout=c[6], style=shared.label_style, _dom_classes=col[6])
        self.expires = W.Label(layout=c[7], style=shared.label_style, _dom_classes=col[7])
        self.size = W.Label(layout=c[8], style=shared.label_style, _dom_classes=col[8])
        self.box = W.HBox([self.check, self.label, self.endpoint, self.ident, self.status,
                           self.submitted, self.timing, self.expires, self.size], layout=shared.row,
                          _dom_classes=("sm-async-row",))
        self.check.observe(lambda change: on_toggle(self, bool(change["new"])), names="value")
        self.ident.on_click(lambda _button: on_open(self))

    def show(self, row: RowView, selected: bool) -> None:
        """Assign this row's values; unchanged ones send nothing."""
        self.inference_id = row.inference_id
        self.check.value = selected  # always: the user may have ticked it since the last draw
        if self._shown == row:
            return
        self._shown = row
        with self.label.hold_sync():  # value and tooltip in one message
            self.label.value = row.label
            self.label.tooltip = row.label_full or None
        self.endpoint.value = row.endpoint
        with self.ident.hold_sync():
            self.ident.description = row.short_id
            self.ident.tooltip = row.inference_id
        self.status.value = status_badge(row.status)
        self.submitted.value = row.submitted
        self.timing.value = row.timing
        self.expires.value = row.expires
        self.size.value = row.size

    def widgets(self) -> list[W.Widget]:
        return list(self.box.children) + [self.box]


class PagedTable:
    """Header + ``page_size`` reusable slots; ``show`` puts one page of rows in them, and
    ``show_sort`` marks the sorted column. A header click calls ``on_sort(key)``."""

    def __init__(self, page_size: int, on_toggle: Toggle, on_open: Open, on_sort: Callable[[str], None]):
        self.shared = _Shared()
        s = self.shared
        self.heads: dict[str, W.Button] = {}
        cells: list[W.Widget] = []
        for i, (title, _, _, key, css) in enumerate(COLUMNS):
            classes = ("sm-async-cell", f"sm-async-col-{css}")
            if key is None:
                cells.append(W.HTML("", layout=s.cells[i], style=s.html_style, _dom_classes=classes))
                continue
            head = W.Button(description=title, layout=s.cells[i], style=s.head_style, tooltip=f"Sort by {title}",
                            _dom_classes=("sm-async-sort", f"sm-async-sort-{key}", *classes))
            head.on_click(lambda _button, k=key: on_sort(k))
            self.heads[key] = head
            cells.append(head)
        self.header = W.HBox(cells, layout=s.head_row, _dom_classes=("sm-async-head",))
        self.empty = W.Label("No tracked invocations match these filters.")
        self.slots = [RowSlot(s, on_toggle, on_open) for _ in range(page_size)]
        self.box = W.VBox([self.header, self.empty], layout=W.Layout(flex=f"1 1 {TABLE_BASIS_PX}px", min_width="0"),
                          _dom_classes=("sm-async-table",))

    def show_sort(self, key: str, descending: bool) -> None:
        for column, head in self.heads.items():
            title = next(t for t, _, _, k, _ in COLUMNS if k == column)
            head.description = f"{title} {'▼' if descending else '▲'}" if column == key else title

    def show(self, rows: Sequence[RowView], selected: Collection[str]) -> None:
        for slot, row in zip(self.slots, rows, strict=False):
            slot.show(row, row.inference_id in selected)
        for slot in self.slots[len(rows):]:
            slot.inference_id = None  # hidden: it keeps its values until it shows a row again
        visible = tuple(s.box for s in self.slots[:len(rows)]) or (self.empty,)
        children = (self.header, *visible)
        if tuple(self.box.children) != children:
            self.box.children = children  # assigned whole: one message with the new model list

    def widgets(self) -> list[W.Widget]:
        found: list[W.Widget] = [self.box, self.header, self.empty, *self.header.children, *self.shared.widgets()]
        for slot in self.slots:
            found += slot.widgets()
        return found
