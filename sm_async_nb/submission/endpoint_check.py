"""Whether the endpoint exists, asked once per client before anything is uploaded or journaled.

A routing target of an inference router (SPEC §20) is checked the same way with one
DescribeInferenceRouter: the router must exist (AWS's own error text when it does not), have the
target, and the target must be asynchronous (an AsyncInferenceConfig).

Without it, a request to an endpoint that does not exist is uploaded, refused by the invoke, its input
deleted again and an ERROR row journaled. One DescribeEndpoint per endpoint per client (an endpoint
seen once is not asked about again); an endpoint that does not exist is asked about again next time
(it may have been created meanwhile). Where DescribeEndpoint is not allowed (AccessDenied), the check
is skipped from then on, said once in the log; any other trouble leaves the answer to the invoke.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from typing import Any

from ..aws.clients import RESOURCE_NOT_FOUND_CODES, error_code, explain, is_missing_endpoint
from ..context import Context
from ..contract.routing import RoutingTarget, routing_target_of
from ..errors import ValidationError

log = logging.getLogger(__name__)


class EndpointCheck:
    """The endpoints this client has seen exist."""

    def __init__(self, ctx: Context):
        self.ctx = ctx
        self._seen: set[str] = set()
        self._denied = False
        self._lock = threading.Lock()

    def require(self, endpoint_names: Iterable[str]) -> None:
        """Check each endpoint not seen yet.

        Raises:
            ValidationError: an endpoint that does not exist (nothing was uploaded or journaled).
        """
        for name in sorted(set(endpoint_names)):
            with self._lock:
                if self._denied or name in self._seen:
                    continue
            if self._exists(name):
                with self._lock:
                    self._seen.add(name)

    def _exists(self, name: str) -> bool:
        target = routing_target_of(name)
        try:
            if target is not None:
                check_routing_target(self.ctx.aws.sagemaker.describe_inference_router(
                    InferenceRouterName=target.router), target)
                return True
            self.ctx.aws.get("sagemaker").describe_endpoint(EndpointName=name)
            return True
        except ValidationError:
            raise
        except Exception as exc:
            if target is not None and error_code(exc) in RESOURCE_NOT_FOUND_CODES:
                raise ValidationError(f"{explain(exc).message.rstrip('.')}: check the inference router's name and "
                                      "region (aws sagemaker list-inference-routers); nothing was uploaded or "
                                      "journaled.", parameter="InferenceRouterName") from None
            if is_missing_endpoint(exc):
                region = self.ctx.aws.region or "this region"
                raise ValidationError(f"Endpoint {name!r} does not exist in {region}: check the name and region "
                                      "(aws sagemaker list-endpoints); nothing was uploaded or journaled.",
                                      parameter="EndpointName") from None
            problem = explain(exc, endpoint_name=name)
            if problem.kind == "access_denied":
                with self._lock:
                    self._denied = True
                log.info("sagemaker:DescribeEndpoint is not allowed: endpoints are not checked before uploading "
                         "(a missing one is found by the invoke)")
            else:
                log.debug("could not check endpoint %s before uploading: %s", name, problem.message)
            return False


def check_routing_target(described: dict[str, Any], target: RoutingTarget) -> None:
    """The routing target is in the router DescribeInferenceRouter described, and asynchronous.

    Raises:
        ValidationError: it is not, naming the targets there are.
    """
    targets = {t.get("Name"): t for t in described.get("RoutingTargets") or ()}
    found = targets.get(target.target)
    if found is None:
        names = ", ".join(sorted(str(n) for n in targets)) or "none"
        raise ValidationError(f"Routing target {target.target!r} not found in inference router {target.router!r} "
                              f"(its routing targets: {names}); nothing was uploaded or journaled.",
                              parameter="RoutingTargetName")
    if not found.get("AsyncInferenceConfig"):
        raise ValidationError(f"Routing target {target.target!r} of inference router {target.router!r} is not "
                              "asynchronous (it has no AsyncInferenceConfig): only an asynchronous routing target "
                              "takes InvokeInferenceRouterAsync; nothing was uploaded or journaled.",
                              parameter="RoutingTargetName")
