"""The job thread's two plans, run by the one runner like every other:

* :class:`QueuedPlan` invokes QUEUED rows (their input is in S3 already): each is claimed
  compare-and-set from QUEUED (so two kernels resuming one batch invoke each row once), then the
  sender invokes it and journals the answer;
* :class:`RetryPlan` sends an EXPIRED part (or one the service failed) again with a new inference id
  and the same input object, linked by ``resubmitted_as``, held QUEUED so the window decides when it
  is invoked.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from ..contract import routing
from ..contract.service import service_caused
from ..errors import ValidationError
from ..records import InvocationRecord, Status
from .options import SubmitOptions
from .plans import PreparedPlan
from .prepare import PreparedRequest, Preparer

log = logging.getLogger(__name__)


def retryable(record: InvocationRecord) -> bool:
    """An attempt that ended because of time or the service, never the model: EXPIRED, or FAILED with a
    failure reason whose code is the service's (``contract.service.SERVICE_FAILURE_CODES``)."""
    return record.status is Status.EXPIRED or (record.status is Status.FAILED and service_caused(record.failure_reason))


def api_params(record: InvocationRecord) -> dict[str, object]:
    """The InvokeEndpointAsync (or, for a routing target, InvokeInferenceRouterAsync) arguments of a journaled
    request (InputLocation is added when it is sent)."""
    return routing.request_params({"endpoint_name": record.endpoint_name, **record.request,
                                        "inference_id": record.inference_id})


class QueuedPlan(PreparedPlan):
    """Invoke these QUEUED rows now (no upload: their input is in place)."""

    def __init__(self, preparer: Preparer, rows: Iterable[InvocationRecord]):
        super().__init__(preparer, "", SubmitOptions())  # each request keeps its row's endpoint and options
        self.rows = list(rows)
        self.hold = False

    def open(self) -> None:
        self.prepared = [PreparedRequest(row, api_params(row), None, existing=row) for row in self.rows]
        self.total = len(self.prepared)


class RetryPlan(PreparedPlan):
    """Send these finished attempts again as new QUEUED rows in the same slots (``resubmitted_as`` set
    compare-and-set: two kernels retrying one row make one new attempt)."""

    def __init__(self, preparer: Preparer, rows: Iterable[InvocationRecord]):
        super().__init__(preparer, "", SubmitOptions())
        self.rows = list(rows)
        self.hold = True

    def open(self) -> None:
        journal = self.preparer.ctx.journal
        for row in self.rows:
            try:
                request = self.preparer.resubmission(row)
            except ValidationError as exc:  # e.g. its input was removed from S3: it stays as it ended
                log.warning("not retrying %s: %s", row.inference_id, exc)
                continue
            if journal.claim_resubmission(row.inference_id, request.inference_id):
                self.prepared.append(request)
        self.total = len(self.prepared)
