"""``RouterStatus``: one inference router's state, its routing targets and each destination (SPEC §20)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..contract.names import ROUTABLE
from .status import EndpointStatus


@dataclass(frozen=True)
class DestinationStatus:
    """One destination of a routing target: what the router says of it (``routing_status``: Routable,
    Unroutable or Unknown) and, when it is an endpoint readable with the caller's credentials (this
    account and Region), that endpoint's :class:`EndpointStatus` (else None)."""

    arn: str
    routing_status: str | None = None
    endpoint_name: str | None = None               # the endpoint the ARN names (None: an inference component)
    endpoint: EndpointStatus | None = None

    @property
    def routable(self) -> bool:
        """The router sends requests there now."""
        return self.routing_status == ROUTABLE

    @property
    def capacity(self) -> int | None:
        """Requests it runs at once now (instances x MaxConcurrentInvocationsPerInstance); None: unknown."""
        st = self.endpoint
        if st is None or st.current_instances is None:
            return None
        return st.current_instances * max(1, st.max_concurrent_per_instance or 1)


@dataclass(frozen=True)
class RoutingTargetStatus:
    """One routing target of the router, as DescribeInferenceRouter describes it."""

    name: str
    destinations: tuple[DestinationStatus, ...] = ()
    is_async: bool = False                         # it has an AsyncInferenceConfig
    max_time_in_backlog_s: int | None = None       # ClientConfig.MaxTimeInBacklogSeconds (None: not set)
    output_path: str | None = None                 # AsyncInferenceConfig.OutputConfig.S3OutputPath
    failure_path: str | None = None
    routing_preference: str | None = None

    @property
    def capacity(self) -> int | None:
        """The destinations' combined capacity (what ``max_pending="auto"`` sizes its window from), counting
        the readable ones; None when none is readable."""
        known = [d.capacity for d in self.destinations if d.routable and d.capacity is not None]
        return sum(known) if known else None


@dataclass(frozen=True)
class RouterStatus:
    """A snapshot of one inference router, as ``client.router_status(name)`` returns it."""

    name: str
    status: str | None = None                      # DescribeInferenceRouter Status, e.g. "InService"
    arn: str | None = None
    status_reason: str | None = None
    targets: tuple[RoutingTargetStatus, ...] = ()
    warnings: list[str] = field(default_factory=list)
    fetched_at: float = 0.0
    exists: bool | None = True                     # False: DescribeInferenceRouter said there is no such router

    def target(self, name: str) -> RoutingTargetStatus | None:
        """The routing target called ``name`` (None: the router has none)."""
        return next((t for t in self.targets if t.name == name), None)

    def lines(self) -> list[str]:
        """The snapshot as short lines of text (what ``%sm_async router NAME`` prints)."""
        if self.exists is False:
            return [f"{self.name}: not found", *(f"  ! {w}" for w in self.warnings)]
        reason = f" ({self.status_reason})" if self.status_reason else ""
        out = [f"inference router {self.name}: {self.status or 'status unknown'}{reason}"]
        for target in self.targets:
            mode = "async" if target.is_async else "real-time"
            backlog = "" if target.max_time_in_backlog_s is None else \
                f", moves a request after {target.max_time_in_backlog_s} s in a backlog"
            capacity = "" if target.capacity is None else f", capacity {target.capacity}"
            out.append(f"  target {target.name} ({mode}{backlog}{capacity})")
            for dest in target.destinations:
                where = dest.endpoint_name or dest.arn
                line = f"    {where}: {dest.routing_status or '?'}"
                if dest.endpoint is not None:
                    st = dest.endpoint
                    line += f"; {st.status or 'status unknown'}, instances {st.instances_text}"
                    if st.backlog is not None:
                        line += f", backlog {st.backlog:g}"
                out.append(line)
        out += [f"  ! {w}" for w in self.warnings]
        return out
