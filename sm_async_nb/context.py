"""The small context every part receives instead of the client.

``client.py`` builds one :class:`Context` and hands it to the submitter, the tracker, the results
loader and the handles (as s3transfer hands its futures a coordinator, never the manager), so no
part can reach into the client and the import graph stays a tree.
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import Executor
from dataclasses import dataclass

from .aws.clients import AwsClients
from .config import SageMakerAsync
from .journal import Journal
from .records import InvocationRecord, Status


@dataclass(frozen=True)
class Context:
    """What the parts share: AWS clients, the journal, the settings, the worker pool, and the
    origin (which AWS target this client talks to; journal rows of other targets are not ours)."""

    aws: AwsClients
    journal: Journal
    settings: SageMakerAsync
    pool: Executor
    origin: str

    def records(self, *, statuses: Iterable[Status] | None = None,
                include_other_origins: bool = False) -> list[InvocationRecord]:
        """Journal rows of this origin (or of every origin), oldest submission first."""
        return self.journal.records(statuses=statuses, origin=None if include_other_origins else self.origin)
