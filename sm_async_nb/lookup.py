"""What a user typed, resolved to journal rows: the lookup rules of ``%sm_async result|wait|forget|
resubmit KEY`` (storage knows nothing of them).

A key is, in this order: a full inference id; a label, naming its **latest** submission (re-running
a cell reuses its label, and the user means the run they just made); a batch id; a unique prefix of
an inference id (case-sensitive, as ids are). With ``origin`` only rows of that AWS target count:
another region's or an earlier local stack's rows are not this client's.
"""

from __future__ import annotations

from .journal import Journal
from .records import InvocationRecord


def find(journal: Journal, key: str, origin: str | None = None) -> list[InvocationRecord]:
    """The rows ``key`` names, oldest submission first; [] when it names nothing (or an ambiguous prefix)."""
    record = journal.get(key)
    if record is not None and origin in (None, record.origin):
        return [record]
    labelled = journal.with_label(key, origin)
    if labelled:
        submissions: dict[str, list[InvocationRecord]] = {}
        for row in labelled:
            submissions.setdefault(row.batch_id or row.inference_id, []).append(row)
        return max(submissions.values(), key=lambda rows: max(r.submitted_at or 0.0 for r in rows))
    in_batch = journal.batch_rows(key, origin)
    if in_batch:
        return in_batch
    rows = journal.with_id_prefix(key, origin, limit=2)
    return rows if len(rows) == 1 else []
