"""The small context every part receives instead of the client.

``client.py`` builds one :class:`Context` and hands it to the submitter, the tracker, the results
loader and the handles (as s3transfer hands its futures a coordinator, never the manager), so no
part can reach into the client and the import graph stays a tree.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from concurrent.futures import Executor
from dataclasses import dataclass

from .aws.clients import AwsClients
from .config import SageMakerAsync
from .journal import Journal
from .records import InvocationRecord, Status


@dataclass(frozen=True)
class Context:
    """What the parts share: AWS clients, the journal, the settings, the worker pool, the origin
    (which AWS target this client talks to; journal rows of other targets are not ours), and the
    notebook's clock (every time the client journals is on it; S3's clock is ``aws.s3_clock``), and how
    fast the endpoint's clock runs (``time_scale``: 1 on AWS; a local stack's emulated time)."""

    aws: AwsClients
    journal: Journal
    settings: SageMakerAsync
    pool: Executor
    origin: str
    clock: Callable[[], float] = time.time
    time_scale: float = 1.0  # the endpoint's seconds per real second (an emulated stack's); TTL/drain arithmetic only

    def records(self, *, statuses: Iterable[Status] | None = None,
                include_other_origins: bool = False) -> list[InvocationRecord]:
        """Journal rows of this origin (or of every origin), oldest submission first."""
        return self.journal.records(statuses=statuses, origin=None if include_other_origins else self.origin)
