"""Journal rows as a DataFrame (one row per invocation), for `tracker.to_frame()` and `%sm_async list`."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..records import REQUEST_FIELDS, InvocationRecord

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

_TIMES = ("submitted_at", "invoked_at", "finished_at", "updated_at")
_ORDER = ("inference_id", "label", "endpoint_name", "status", "submitted_at", "finished_at", "latency_s",
          "output_size", "failure_reason", "error", "batch_id", "batch_index", "input_location",
          "output_location", "failure_location")
_INTERNAL = ("request", "owner_pid", "input_sha256", "submit_step", "origin")


def records_frame(records: Sequence[InvocationRecord]) -> pd.DataFrame:
    import pandas as pd

    rows = []
    for record in records:
        row = {k: v for k, v in dataclasses.asdict(record).items() if k not in _INTERNAL}
        row["status"] = record.status.value
        row["submit_step"] = record.submit_step.value
        row["latency_s"] = record.latency
        row.update({name: record.request.get(name) for name in REQUEST_FIELDS})
        rows.append(row)
    columns = list(_ORDER) + [c for c in (rows[0] if rows else {}) if c not in _ORDER]
    frame = pd.DataFrame(rows, columns=columns if rows else list(_ORDER))
    for name in _TIMES:
        if name in frame:
            frame[name] = pd.to_datetime(frame[name], unit="s", utc=True)
    return frame
