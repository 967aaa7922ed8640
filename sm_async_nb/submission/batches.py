"""Many payloads as one batch: ids, slots and the batch row, all decided before anything is sent.

``inference_id`` given as one string is the batch's id prefix (``ID-0000``, ``ID-0001``...), so
re-running the same call continues an interrupted batch instead of starting another.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from typing import Any

from ..contract import validation
from ..errors import ValidationError
from ..records import BatchKind, BatchRecord
from .prepare import PreparedRequest, Preparer, RequestOptions, per_item

# One part of a batch: the payload and, for DataFrame slices, (first row, row count).
Part = tuple[Any, "tuple[int, int] | None"]


def batch_ids(inference_id: str | Sequence[str] | None, count: int) -> tuple[list[str | None], str]:
    """One inference id per part (None: generated) and the batch id."""
    if isinstance(inference_id, str):
        validation.check_member("InferenceId", inference_id)
        width = max(4, len(str(count - 1)))
        return [f"{inference_id}-{i:0{width}d}" for i in range(count)], f"batch-{inference_id}"
    ids = per_item("inference_id", inference_id, count)
    _no_repeats("inference_id", ids)
    return ids, f"batch-{uuid.uuid4().hex[:12]}"


def _no_repeats(what: str, values: list[Any]) -> None:
    repeated = sorted({str(v) for v in values if v is not None and values.count(v) > 1})
    if repeated:
        raise ValidationError(f"{what} {repeated[0]!r} is given to more than one payload of this batch: each "
                              f"request needs its own {what} (one output each).", parameter=what)


def check_same_batch(preparer: Preparer, batch_id: str, endpoint_name: str, count: int, kind: BatchKind,
                      index_json: str | None) -> None:
    """Re-running a batch id prefix continues that batch; a different batch under the same prefix
    (other size, kind or input index) would mix the two runs' rows."""
    earlier = preparer.ctx.journal.get_batch(batch_id)
    if earlier is None:
        return
    same = (earlier.endpoint_name, earlier.size, earlier.kind, earlier.index_json) == (
        endpoint_name, count, kind, index_json)
    if not same:
        prefix = batch_id.removeprefix("batch-")
        raise ValidationError(
            f"inference_id prefix {prefix!r} already names a batch of {earlier.size} {earlier.kind.value} part(s) "
            f"on {earlier.endpoint_name!r}; this one has {count}: choose a new prefix (re-running the very same "
            "call continues the earlier batch), or forget the earlier batch first.", parameter="InferenceId")


def plan(preparer: Preparer, endpoint_name: str, parts: Sequence[Part], options: RequestOptions,
         inference_id: str | Sequence[str] | None, filename: Sequence[str] | None, *,
         kind: BatchKind, index_json: str | None = None) -> tuple[list[PreparedRequest], BatchRecord]:
    """Every part validated and encoded (a bad one is named: ``payload 3: ...``) and the batch row."""
    if not parts:
        raise ValidationError("No payloads given: there is nothing to send.")
    count = len(parts)
    ids, batch_id = batch_ids(inference_id, count)
    names = per_item("filename", filename, count)
    _no_repeats("filename", names)
    check_same_batch(preparer, batch_id, endpoint_name, count, kind, index_json)
    now = time.time()
    requests = []
    for i, ((payload, rows), iid, name) in enumerate(zip(parts, ids, names, strict=True)):
        try:
            requests.append(preparer.prepare(endpoint_name, payload, options, inference_id=iid, filename=name,
                                             now=now, batch_id=batch_id, batch_index=i, rows=rows))
        except ValidationError as exc:
            raise ValidationError(f"payload {i}: {exc}", parameter=exc.parameter) from None
    batch = BatchRecord(batch_id=batch_id, endpoint_name=endpoint_name, size=count, label=options.label,
                        created_at=now, kind=kind, index_json=index_json)
    return requests, batch
