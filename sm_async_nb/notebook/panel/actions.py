"""What the panel's action buttons do, as plain functions of the handle parts and the selection.

No widgets here: each function returns a value or a short message, or raises an error whose
text is shown in the panel's status line. AWS is reached only through handles and the submitter.
"""

from __future__ import annotations

import keyword
from collections import Counter
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ...aws.clients import explain
from ...display.text import STATUS_COLOURS, clip, esc, status_badge
from ...errors import SmAsyncError
from ...handles import HandleParts
from ...records import RESUBMITTABLE, InvocationRecord, Status
from ...results.loading import load_batch
from .rows import MAX_REASON_CHARS

if TYPE_CHECKING:
    import pandas as pd

MAX_DETAILS = 50


def describe_error(exc: BaseException) -> str:
    """One line for the status line: our errors say what to do next; AWS errors are explained."""
    if isinstance(exc, (SmAsyncError, ValueError, LookupError, TimeoutError)):
        return str(exc)
    return explain(exc).message


def status_summary(records: Sequence[InvocationRecord]) -> str:
    counts = Counter(r.status.value.lower() for r in records)
    return ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))


def check_variable_name(name: str) -> str:
    name = name.strip()
    if not name.isidentifier() or keyword.iskeyword(name):
        raise ValueError(f"{name!r} is not a valid Python variable name: type one such as df or results.")
    return name


def load_frame(parts: HandleParts, records: Sequence[InvocationRecord]) -> tuple[pd.DataFrame, str]:
    """The selection's completed outputs as one DataFrame, plus a note on what was skipped.

    One invocation: its result. Rows of one batch: the batch's result (input order, aligned to the
    input index; a partial selection loads just those parts). Anything else: the pieces
    concatenated, keyed by batch or inference id in an outer index level named "source"."""
    import pandas as pd

    done = [r for r in records if r.status is Status.COMPLETED]
    if not done:
        raise ValueError(f"None of the selected invocations has completed ({status_summary(records)}): "
                         "nothing to load yet.")
    rest = [r for r in records if r.status is not Status.COMPLETED]
    note = f"; skipped {len(rest)} not completed ({status_summary(rest)})" if rest else ""
    if len(records) == 1:
        return parts.invocation(done[0].inference_id).result(), note
    groups: dict[str, list[InvocationRecord]] = {}
    for record in sorted(records, key=lambda r: (r.submitted_at or 0.0, r.batch_index or 0)):
        groups.setdefault(record.batch_id or record.inference_id, []).append(record)
    keys, frames = [], []
    for key, rows in groups.items():
        completed = [r for r in rows if r.status is Status.COMPLETED]
        if not completed:
            continue
        if rows[0].batch_id is None:
            frames.append(parts.invocation(key).result())
        else:
            batch = parts.batch(key)
            if {r.inference_id for r in rows} >= set(batch.inference_ids):
                frames.append(batch.result(errors="skip"))
            else:
                frames.append(load_batch(parts.ctx, batch.record, sorted(completed, key=lambda r: r.batch_index or 0),
                                         errors="skip"))
        keys.append(key)
    if len(frames) == 1:
        return frames[0], note
    return pd.concat(frames, keys=keys, names=["source", None]), note


def resubmit(parts: HandleParts, records: Sequence[InvocationRecord]) -> tuple[list[str], str]:
    """Resubmit the unsuccessful rows of the selection; returns the new ids and a message."""
    eligible = [r for r in records if r.status in RESUBMITTABLE]
    if not eligible:
        raise ValueError(f"Only ERROR, FAILED or EXPIRED invocations can be resubmitted; the selection is "
                         f"{status_summary(records)}.")
    ids = parts.submitter.resubmit([r.inference_id for r in eligible])
    message = f"Resubmitted {len(ids)} invocation(s)"
    if len(records) > len(eligible):
        message += f"; left {len(records) - len(eligible)} pending or completed ones alone"
    return ids, message + "."


def control_jobs(parts: HandleParts, action: str, batch_ids: Sequence[str]) -> str:
    """Pause, resume or cancel the jobs of these batches; a message saying what happened."""
    done, skipped = [], []
    for batch_id in batch_ids:
        batch = parts.batch(batch_id)
        if batch.job_state is None:
            skipped.append(batch.label or batch_id)
            continue
        outcome = getattr(batch, action)()
        if action == "cancel":
            done.append(f"{batch.label or batch_id} ({outcome} queued not sent)")
        elif outcome:
            done.append(batch.label or batch_id)
        else:
            skipped.append(batch.label or batch_id)
    verb = {"pause": "Paused", "resume": "Resumed", "cancel": "Cancelled"}[action]
    message = f"{verb} {', '.join(done)}." if done else f"Nothing to {action}."
    if skipped:
        message += f" Left alone: {', '.join(skipped[:3])}{' …' if len(skipped) > 3 else ''}."
    return message


def failure_html(records: Sequence[InvocationRecord]) -> str:
    """Failure reasons (and submission errors) of the selection, every outside string escaped."""
    failed = [r for r in records if r.failure_reason or r.error]
    if not failed:
        return ""
    parts = []
    for record in failed[:MAX_DETAILS]:
        reason = clip(record.failure_reason or record.error or "", MAX_REASON_CHARS)
        attributes = record.request.get("custom_attributes")
        extra = f'<div>custom attributes: <code>{esc(attributes)}</code></div>' if attributes else ""
        where = f"<div>failure object: <code>{esc(record.failure_location)}</code></div>" \
            if record.failure_location and record.failure_reason else ""
        parts.append(
            f'<div style="margin:6px 0;border-left:3px solid {STATUS_COLOURS[Status.FAILED]};padding-left:8px">'
            f'<div>{status_badge(record.status)} <code>{esc(record.inference_id)}</code> '
            f'{esc(record.label or "")} · {esc(record.endpoint_name)}</div>{extra}{where}'
            f'<pre style="white-space:pre-wrap;margin:2px 0;max-height:14em;overflow:auto">{esc(reason)}</pre></div>')
    if len(failed) > MAX_DETAILS:
        parts.append(f"<div>… and {len(failed) - MAX_DETAILS} more.</div>")
    return "".join(parts)


def uris_text(records: Sequence[InvocationRecord]) -> str:
    """Plain text (for a Textarea, never HTML): each invocation's input/output/failure URIs."""
    lines = []
    for record in records:
        head = f"# {record.inference_id}" + (f"  {record.label}" if record.label else "")
        lines.append(head.replace("\n", " "))
        for kind, uri in (("input", record.input_location), ("output", record.output_location),
                          ("failure", record.failure_location)):
            if uri:
                lines.append(f"{kind:<8}{uri}")
    return "\n".join(lines)


def user_push() -> Callable[[dict[str, Any]], None] | None:
    """How to bind notebook variables (``shell.push``), looked up at click time so a test can
    provide its own; None outside IPython."""
    try:
        import IPython
    except ImportError:
        return None
    shell = IPython.get_ipython()
    return None if shell is None else shell.push
