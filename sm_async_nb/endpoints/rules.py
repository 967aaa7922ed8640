"""The rules that turn an endpoint snapshot into warnings: each one line that says what happens to the
requests and what to do. Pure functions of the snapshot and this client's queue; no I/O.

Rules (SPEC §10, in this order):

1. the endpoint is not InService (with its FailureReason when Failed);
2. it is not an async endpoint (its config has no AsyncInferenceConfig);
3. it has 0 instances, requests are waiting (CloudWatch backlog, HasBacklogWithoutCapacity, or
   pending invocations of this client) and nothing scales it out from zero;
4. it is scaling out from zero (desired > current = 0, or a scale-from-zero policy and waiting
   requests): the first results take minutes;
5. pending invocations that will expire before the backlog drains at the rate seen
   (:mod:`.backlog` says how the rate and the positions are estimated).

Missing permissions and failed reads add their own warnings where the reads are made (fetch.py).
"""

from __future__ import annotations

from .backlog import OwnQueue, forecast, minutes
from .status import EndpointStatus

IN_SERVICE = "InService"
# What a status other than InService means for the requests (DescribeEndpoint's EndpointStatus values).
NOT_IN_SERVICE = {
    "Creating": "requests are refused until it is InService (usually minutes)",
    "Updating": "it keeps serving on its previous configuration until the update finishes",
    "SystemUpdating": "SageMaker is updating it; requests may be slow until it is InService again",
    "RollingBack": "an update failed and is being rolled back; check the update's FailureReason",
    "UpdateRollbackFailed": "an update and its rollback failed: update the endpoint again",
    "OutOfService": "it serves no requests: pending ones wait until their TTL expires",
    "Deleting": "pending requests will not complete: submit them to another endpoint",
    "Failed": "requests to it fail: fix the model or the endpoint config and update the endpoint",
}
FROM_ZERO_HINT = ("requests wait until their TTL expires; add a step scaling policy on HasBacklogWithoutCapacity "
                  "(MinCapacity 0) or give the variant at least 1 instance")


def waiting(st: EndpointStatus) -> str | None:
    """What says requests are waiting, as a phrase; None when nothing does."""
    if st.backlog:
        return f"a backlog of {st.backlog:g} request(s)"
    if st.has_backlog_without_capacity:
        return "HasBacklogWithoutCapacity set"
    if st.pending:
        return f"{st.pending} pending invocation(s) of yours"
    return None


def rules(st: EndpointStatus, queue: OwnQueue, now: float) -> list[str]:
    """The warnings of ``st`` (whose ``pending`` is ``queue.pending``), one line each."""
    found: list[str] = []
    name = repr(st.name)
    if st.status is not None and st.status != IN_SERVICE:
        why = f" ({st.failure_reason.strip()})" if st.failure_reason else ""
        meaning = NOT_IN_SERVICE.get(st.status, "requests may wait or fail until it is InService")
        found.append(f"Endpoint {name} is {st.status}, not InService{why}: {meaning}.")
    if st.is_async is False:
        found.append(f"Endpoint {name} is not an async endpoint (its config has no AsyncInferenceConfig): "
                     "InvokeEndpointAsync is refused; use an endpoint config with AsyncInferenceConfig.")
    at_zero = st.current_instances == 0
    reason = waiting(st)
    scaling_out = at_zero and (bool(st.desired_instances) or (st.scales_from_zero is True and reason is not None))
    if at_zero and reason is not None and st.scales_from_zero is False and not st.desired_instances:
        found.append(f"Endpoint {name} has 0 instances and {reason}, but nothing scales it out from zero: "
                     f"{FROM_ZERO_HINT}.")
    elif scaling_out:
        found.append(f"Endpoint {name} is scaling out from 0 instances: the first results take minutes "
                     "(instance start and model load).")
    late = None if (at_zero and not scaling_out) else forecast(queue, st.backlog, now)
    if late is not None:
        rate = (queue.rate_per_s or 0.0) * 60
        found.append(f"{late.late} of your {queue.pending} pending invocation(s) on {name} will likely expire "
                     f"before their turn: at {rate:.3g}/min (completions seen) the backlog takes "
                     f"{minutes(late.drain_s)}, the first of them expires in {minutes(late.first_late_in_s)}; "
                     "add instances, or resubmit later with a larger request_ttl_seconds.")
    return found
