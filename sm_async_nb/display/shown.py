"""``inv.show()`` and ``batch.show(limit=24)``: outputs shown in a cell by media type, as plain
objects with ``_repr_mimebundle_`` (HTML built from escaped strings and ``data:`` URIs, and a text
form for terminals). No widgets and no IPython here: the HTML is what a saved notebook, VS Code
and nbconvert keep.

A batch is a gallery: a grid of its first ``limit`` parts, each with its label, media as media and
other outputs in brief. What it inlines is bounded twice: each output by ``MEDIA_LIMIT`` (the
panel's limit) and the whole gallery by ``GALLERY_BYTES``; past that an item says so and points
to ``download()``. Outputs are read on the client's worker pool: first a small ranged GET each,
then whole only for the media that fit the budget, in the gallery's order.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..context import Context
from ..records import FINISHED, InvocationRecord, Status
from ..results.loading import head
from . import fragments
from .previews import MEDIA_LIMIT, Preview, build, load, rest_size
from .text import BORDER_COLOUR, MUTED_COLOUR, clip, esc, human_duration, human_size, short_id, status_badge

GALLERY_BYTES = 8 * 1024 * 1024   # media inlined by one batch.show() (8 MiB)
GALLERY_HEAD = 8192               # the first GET of each part: enough for a brief preview and media headers
REASON_CHARS = 600
BRIEF_CHARS = 300


def _name(record: InvocationRecord) -> str:
    """What a part is called: the name of the user's own input object (``submit_s3``: ``cat.png``),
    else its label, else its short id."""
    if record.user_input and record.input_location:
        name = os.path.basename(record.input_location.rstrip("/"))
        if name:
            return name
    return record.label or short_id(record.inference_id)


def _state(record: InvocationRecord, now: float) -> tuple[str, str]:
    """(HTML, text) of what a row without an output says: its status and why."""
    status = record.status
    if status is Status.COMPLETED:
        return "", ""
    if status in FINISHED:
        reason = clip((record.failure_reason or record.error or "").strip(), REASON_CHARS)
        return (f'<pre style="{fragments.PRE};max-height:8em">{esc(reason)}</pre>' if reason else "",
                reason)
    waited = human_duration(now - record.submitted_at) if record.submitted_at is not None else ""
    text = f"{status.value.lower()} for {waited}" if waited else status.value.lower()
    return f'<div style="color:{MUTED_COLOUR}">{esc(text)}</div>', text


class Shown:
    """One invocation's output (or why it has none), as ``inv.show()`` returns it."""

    def __init__(self, record: InvocationRecord, preview: Preview | None, now: float):
        self.record, self.preview = record, preview
        title = [f"<b>{esc(_name(record))}</b>", status_badge(record.status), esc(record.endpoint_name)]
        words = [_name(record), record.status.value, record.endpoint_name]
        if record.latency is not None:
            title.append(f"latency {esc(human_duration(record.latency))}")
            words.append(f"latency {human_duration(record.latency)}")
        state_html, state_text = _state(record, now)
        body = preview.to_html() if preview is not None else state_html
        self.html = (f'<div class="sm-async-show" style="line-height:1.4"><div>{" · ".join(title)}</div>'
                     f"{body}</div>")
        self.text = " · ".join(words) + "\n" + (preview.text if preview is not None else state_text)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        return {"text/html": self.html, "text/plain": self.text}

    def _repr_html_(self) -> str:
        return self.html

    def __repr__(self) -> str:
        return self.text


@dataclass(frozen=True)
class GalleryItem:
    record: InvocationRecord
    preview: Preview | None
    problem: str = ""   # the output could not be read (one line)


class Gallery:
    """A batch's parts in a grid, as ``batch.show()`` returns it."""

    def __init__(self, title: str, items: Sequence[GalleryItem], total: int, notes: Sequence[str], now: float):
        self.items = list(items)
        more = f"first {len(items)} of {total} parts" if total > len(items) else f"{total} part(s)"
        cells = "".join(self._cell(item, now) for item in items)
        foot = "".join(f'<div style="color:{MUTED_COLOUR};font-size:90%">{esc(n)}</div>' for n in notes)
        self.html = (f'<div class="sm-async-gallery"><div><b>{esc(title)}</b> · {esc(more)}</div>'
                     f'<div style="display:grid;grid-template-columns:repeat(auto-fill,minmax(180px,1fr));'
                     f'gap:10px;margin-top:6px">{cells}</div>{foot}</div>')
        lines = [f"{title} · {more}"]
        for item in items:
            brief = item.problem or (item.preview.caption if item.preview is not None else
                                     _state(item.record, now)[1])
            lines.append(f"#{item.record.batch_index} {_name(item.record)} {item.record.status.value}: "
                         f"{clip(brief.splitlines()[0] if brief else '', 120)}")
        self.text = "\n".join([*lines, *notes])

    @staticmethod
    def _cell(item: GalleryItem, now: float) -> str:
        record, preview = item.record, item.preview
        caption = ""
        if item.problem:
            body = f'<div style="color:{MUTED_COLOUR}">{esc(item.problem)}</div>'
        elif preview is None:
            body = _state(record, now)[0]
        elif preview.media is not None:
            body = preview.media.element(preview.caption, max_height="180px").replace(
                "<audio ", '<audio style="width:100%" ')
            caption = f'<br><span style="color:{MUTED_COLOUR}">{esc(preview.caption)}</span>'
        elif preview.kind in ("image", "audio", "video"):
            body = preview.html  # its caption and why it is not inlined
        else:
            body = (f'<pre style="{fragments.PRE};max-height:8em;font-size:85%">'
                    f"{esc(clip(preview.text, BRIEF_CHARS))}</pre>")
        return (f'<figure class="sm-async-gallery-item" style="margin:0;padding:4px;border:1px solid '
                f'{BORDER_COLOUR};border-radius:4px;overflow:hidden">{body}'
                f'<figcaption style="font-size:85%;overflow-wrap:anywhere">#{record.batch_index} · '
                f"<b>{esc(_name(record))}</b> · {status_badge(record.status)}{caption}</figcaption></figure>")

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        return {"text/html": self.html, "text/plain": self.text}

    def _repr_html_(self) -> str:
        return self.html

    def __repr__(self) -> str:
        return self.text


def show_invocation(ctx: Context, record: InvocationRecord, now: float) -> Shown:
    """An invocation's output read now (bounded by the preview limits), or its status.

    Raises:
        OutputMissing: the output was removed from S3. AwsError: S3 refused.
    """
    preview = None
    if record.status is Status.COMPLETED:
        preview = load(functools.partial(head, ctx, record), csv_header=ctx.settings.csv_output_header)
    return Shown(record, preview, now)


def show_batch(ctx: Context, title: str, parts: Sequence[InvocationRecord], limit: int, now: float) -> Gallery:
    """The gallery of the first ``limit`` parts (see the module docstring for the bounds)."""
    shown = list(parts[:limit])
    csv_header = ctx.settings.csv_output_header

    def first(record: InvocationRecord) -> tuple[bytes, str | None, int | None] | str | None:
        if record.status is not Status.COMPLETED:
            return None
        try:
            return head(ctx, record, GALLERY_HEAD)
        except Exception as exc:  # one unreadable output must not hide the others
            return f"Output not readable: {type(exc).__name__}: {clip(str(exc), 200)}"

    heads = list(ctx.pool.map(first, shown))
    spent, wanted, over = 0, {}, False
    for index, answer in enumerate(heads):
        if isinstance(answer, tuple):
            size = rest_size(*answer, media_limit=MEDIA_LIMIT)
            if size and spent + size <= GALLERY_BYTES:
                spent += size
                wanted[index] = size
            elif size:
                over = True

    def whole(index: int) -> tuple[int, tuple[bytes, str | None, int | None] | str]:
        try:
            return index, head(ctx, shown[index], wanted[index])
        except Exception as exc:
            return index, f"Output not readable: {type(exc).__name__}: {clip(str(exc), 200)}"

    for index, answer in ctx.pool.map(whole, list(wanted)):
        heads[index] = answer
    items = []
    for record, answer in zip(shown, heads, strict=True):
        if isinstance(answer, str):
            items.append(GalleryItem(record, None, answer))
        elif answer is None:
            items.append(GalleryItem(record, None))
        else:
            items.append(GalleryItem(record, build(*answer, csv_header=csv_header,
                                                   withheld=f"Not inlined: this gallery already holds "
                                                            f"{human_size(GALLERY_BYTES)} of media; "
                                                            "download() saves it.")))
    notes = [f"Media past {human_size(GALLERY_BYTES)} in one gallery are not inlined: "
             "batch.download(folder) saves every output."] if over else []
    return Gallery(title, items, len(parts), notes, now)
