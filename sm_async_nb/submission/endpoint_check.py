"""Whether the endpoint exists, asked once per client before anything is uploaded or journaled.

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

from ..aws.clients import explain, is_missing_endpoint
from ..context import Context
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
        try:
            self.ctx.aws.get("sagemaker").describe_endpoint(EndpointName=name)
            return True
        except Exception as exc:
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
