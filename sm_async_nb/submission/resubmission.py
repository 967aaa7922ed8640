"""``resubmit()`` as a plan: finished-but-unsuccessful invocations sent again through the one runner.

ERROR rows (never reached SageMaker) keep their inference id; FAILED and EXPIRED rows get a new id in
the same batch slot, and the old row points at it (``resubmitted_as``, claimed compare-and-set), so
resubmitting the same row twice, from two threads or two kernels, makes one new invocation.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping

from ..errors import ValidationError
from ..payloads import EncodedPayload
from ..records import RESUBMITTABLE, InvocationRecord
from .options import SubmitOptions
from .plans import PreparedPlan
from .prepare import Preparer

log = logging.getLogger(__name__)


class ResubmissionPlan(PreparedPlan):
    """The requests that send ``inference_ids`` again; ``carried`` maps each id asked for to the id
    carrying it afterwards.

    ``skip_impossible``: leave those that cannot be resubmitted (their payload never reached S3 and is
    not held any more) ERROR with the reason, and send the others. Default: skip when several ids are
    given, raise for one."""

    def __init__(self, preparer: Preparer, inference_ids: Iterable[str], held: Mapping[str, EncodedPayload],
                 skip_impossible: bool | None = None):
        super().__init__(preparer, "", SubmitOptions())  # each request keeps its row's endpoint and options
        self.ids = list(dict.fromkeys(inference_ids))
        self.held = held
        self.skip = len(self.ids) > 1 if skip_impossible is None else skip_impossible
        self.carried: dict[str, str] = {}

    def open(self) -> None:
        """Raises:
            ValidationError: an unknown id; one that cannot be resubmitted (unless skipped)."""
        journal = self.preparer.ctx.journal
        records = journal.get_many(self.ids)
        unknown = [i for i in self.ids if i not in records]
        if unknown:
            raise ValidationError(f"No tracked invocation {unknown[0]!r}" + (
                f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else "") + ".")
        skipped: dict[str, str] = {}
        for inference_id in self.ids:
            try:
                latest = self._latest(records[inference_id])
                if latest.origin != self.preparer.ctx.origin:
                    raise ValidationError(f"Invocation {inference_id} belongs to another AWS target: switch back to "
                                          "it (its region or local stack) to resubmit it.")
                if latest.inference_id != inference_id and latest.status not in RESUBMITTABLE:
                    self.carried[inference_id] = latest.inference_id  # resubmitted already: idempotent
                    continue
                request = self.preparer.resubmission(latest, self.held.get(latest.inference_id))
                if request.existing is None and not journal.claim_resubmission(latest.inference_id,
                                                                               request.inference_id):
                    self.carried[inference_id] = self._latest(latest).inference_id  # another caller won the race
                    continue
                self.prepared.append(request)
                self.carried[inference_id] = request.inference_id
            except ValidationError as exc:
                if not self.skip:
                    raise
                skipped[inference_id] = str(exc)
        if skipped:
            log.warning("%d invocation(s) could not be resubmitted, e.g. %s", len(skipped),
                        next(iter(skipped.values())))
            journal.restate_errors({i: f"Not resubmitted: {why}" for i, why in skipped.items()})
        self.total = len(self.prepared)

    def carrying(self) -> list[str]:
        """The ids now carrying what was asked for, in the order asked, once each."""
        return list(dict.fromkeys(self.carried[i] for i in self.ids if i in self.carried))

    def _latest(self, record: InvocationRecord) -> InvocationRecord:
        """Follow ``resubmitted_as`` to the attempt that carries the request now. A pointer to a row that
        is gone (forgotten, or a crash before it was journaled) is cleared."""
        journal = self.preparer.ctx.journal
        seen = {record.inference_id}
        while record.resubmitted_as is not None:
            nxt = journal.get(record.resubmitted_as)
            if nxt is None or nxt.inference_id in seen:
                journal.release_resubmission(record.inference_id, record.resubmitted_as)
                return record.replace(resubmitted_as=None)
            seen.add(nxt.inference_id)
            record = nxt
        return record
