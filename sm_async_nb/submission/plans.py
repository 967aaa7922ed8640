"""What one ``submit_*`` call sends, as a *plan*: one kind per source (a payload, payloads, a
DataFrame's row slices, objects already in S3, a dataset read in a stream).

A plan owns what differs between the sources and nothing else: the ids (a str ``inference_id`` is
the batch's id prefix, ``ID-0000``, ``ID-0001``..., so re-running the same call continues the batch
instead of starting another), the batch row, the shape checks, and how many requests a run may hold
at once (its window). It yields :class:`~.prepare.PreparedRequest` s lazily, from any position, and
the one runner (``runner.Submitter.run``) sends them; s3transfer's ``_submit_transfer`` behind every
public method is the model.

Each plan is built in two steps, so that bad input costs no I/O: the constructor checks what can be
checked without reading anything (the source's shape, the ids); :meth:`Plan.open` then reads what it
must (the journal, S3, the dataset) and checks the rest before the first request is sent.
"""

from __future__ import annotations

import abc
import json
import os
import threading
import uuid
from collections.abc import Hashable, Iterable, Iterator, Sequence
from typing import Any, ClassVar

from .. import progress
from ..aws.clients import Problem
from ..contract import validation
from ..errors import ValidationError
from ..payloads import CSV, NPY, media_type
from ..payloads.indexes import encode_index
from ..records import BatchKind, BatchRecord, JobState
from . import datasets, s3_sources
from .options import REQUEST_MEMBERS, SubmitOptions
from .prepare import PreparedRequest, Preparer, Slot

# A streamed plan holds at most this many requests at once (read, encoded, journaled, queued or in
# flight on the pool), and at least this many per worker: what bounds a dataset's memory.
STREAM_WINDOW_MIN = 64
STREAM_WINDOW_PER_WORKER = 4
_MIN_ID_WIDTH = 4  # ``prefix-0000``


def stream_window(workers: int) -> int:
    """How many requests a streamed plan (a dataset, or any job's reading) holds at once."""
    return max(STREAM_WINDOW_MIN, STREAM_WINDOW_PER_WORKER * workers)


def per_item(name: str, value: Any, count: int) -> list[Any]:
    """A batch option that must differ per request (ids, file names): a sequence, or None."""
    if value is None:
        return [None] * count
    if isinstance(value, str):
        raise ValidationError(f"{name} {value!r} names one request but this batch has {count}: "
                              f"pass a list with one {name} per payload.", parameter=name)
    if isinstance(value, (bytes, bytearray)) or not isinstance(value, Iterable):
        raise ValidationError(f"{name} must be a list with one {name} per payload, not {type(value).__name__}.",
                              parameter=name)
    values = list(value)
    if len(values) != count:
        raise ValidationError(f"{name} has {len(values)} entries for {count} payloads; give one per payload.",
                              parameter=name)
    return values


def _no_repeats(what: str, values: list[Any]) -> None:
    seen: set[Any] = set()
    for value in values:
        if value is None or not isinstance(value, Hashable):
            continue  # not a str: refused with its rule when its request is prepared
        if value in seen:
            raise ValidationError(f"{what} {value!r} is given to more than one payload of this batch: each "
                                  f"request needs its own {what} (one output each).", parameter=what)
        seen.add(value)


class BatchIds:
    """The ids of a batch's requests and the batch id, decided before anything is read.

    ``inference_id`` is one str (the batch's id prefix: ``prefix-0000``...; batch id ``batch-prefix``),
    one id per request, or None (fresh ids, a fresh batch id)."""

    def __init__(self, inference_id: str | Sequence[str] | None, *, generated: bool = False):
        self.prefix: str | None = None
        self.given: list[str] | None = None
        self.generated = generated  # the prefix was made up here, not given: its ids name nothing earlier
        if isinstance(inference_id, str):
            validation.check_member("InferenceId", inference_id)
            validation.check_member("InferenceId", f"{inference_id}-{0:0{_MIN_ID_WIDTH}d}")
            self.prefix = inference_id
            self.batch_id = f"batch-{inference_id}"
        else:
            if inference_id is not None:
                if isinstance(inference_id, (bytes, bytearray)) or not isinstance(inference_id, Iterable):
                    raise ValidationError(f"inference_id must be a str (the batch's id prefix) or a list of ids, "
                                          f"not {type(inference_id).__name__}.", parameter="inference_id")
                self.given = list(inference_id)
                for given in self.given:  # checked before anything is read (submit_s3 lists S3 first)
                    if given is not None:
                        validation.check_member("InferenceId", given)
                _no_repeats("inference_id", self.given)
            self.batch_id = f"batch-{uuid.uuid4().hex[:12]}"

    def for_count(self, count: int) -> list[str | None]:
        """One id per request (None: generated when prepared)."""
        if self.prefix is not None:
            width = max(_MIN_ID_WIDTH, len(str(count - 1)))
            return [f"{self.prefix}-{i:0{width}d}" for i in range(count)]
        return per_item("inference_id", self.given, count)

    def at(self, index: int, count: int) -> str:
        """The id of request ``index`` of a prefixed batch of ``count`` (a stream needs no list)."""
        assert self.prefix is not None
        return f"{self.prefix}-{index:0{max(_MIN_ID_WIDTH, len(str(count - 1)))}d}"


class Plan(abc.ABC):
    """One submit call's requests. Subclasses set ``batch`` and ``total`` in :meth:`open`."""

    #: read from the source while the run sends: a stopped run leaves the rest unread (and unjournaled)
    streamed: ClassVar[bool] = False

    def __init__(self, preparer: Preparer, endpoint_name: str, options: SubmitOptions):
        self.preparer = preparer
        self.endpoint_name = endpoint_name
        self.options = options
        self.batch: BatchRecord | None = None   # journaled with the first requests (None: one request)
        self.total = 0                          # how many requests the plan has
        self.window: int | None = None          # requests a run may hold at once (None: all of them)
        self.continue_with: str | None = None   # the id prefix that continues a stopped streamed run
        self.created_at = preparer.ctx.clock()
        self.is_open = False
        # A job's (SPEC §16): requests are held QUEUED once their input is in place (``hold``), reading
        # starts at ``start``, stops while ``paused`` is set, and reports how far it got (``on_position``).
        self.hold = options.is_job
        self.start = 0
        self.paused: threading.Event | None = None
        self.on_position: Any = None  # Callable[[int], None] | None
        self.stopped_by: Problem | None = None  # what stopped its run, when a problem every request would hit did

    @property
    def target(self) -> str:
        """Where the requests go: the one place a plan names its destination (an endpoint's name)."""
        return self.endpoint_name

    def source_json(self) -> str | None:
        """How to read this plan's source again in another process (None: it lives in this one's memory)."""
        return None

    def open(self) -> None:  # noqa: B027 - a plan with nothing to read has nothing to do here
        """Read and check what must be read before the first request is sent (S3, the source, the
        journal); afterwards ``batch`` and ``total`` are known.

        Raises:
            ValidationError: nothing has been sent or journaled.
        """

    @abc.abstractmethod
    def requests(self, start: int = 0) -> Iterator[PreparedRequest]:
        """The prepared requests from position ``start`` on, made as they are asked for.

        Raises:
            ValidationError: a request that cannot be made (the ones before it were yielded).
        """

    def progress(self) -> progress.ByteProgress | None:
        """A display advanced by each request's rows as it is sent, or None."""
        return None

    @property
    def only_id(self) -> str | None:
        """The inference id of a plan of one request outside any batch (what an error names), else None."""
        return None

    def _batch(self, batch_id: str, kind: BatchKind, index_json: str | None = None) -> BatchRecord:
        """The batch row; re-running a batch id prefix continues that batch, but a different batch under
        the same prefix (other size, kind, endpoint or input index) would mix the two runs' rows."""
        earlier = self.preparer.ctx.journal.get_batch(batch_id)
        if earlier is not None and (earlier.endpoint_name, earlier.size, earlier.kind, earlier.index_json) != (
                self.target, self.total, kind, index_json):
            prefix = batch_id.removeprefix("batch-")
            raise ValidationError(
                f"inference_id prefix {prefix!r} already names a batch of {earlier.size} {earlier.kind.value} "
                f"part(s) on {earlier.endpoint_name!r}; this one has {self.total}: choose a new prefix (re-running "
                "the very same call continues the earlier batch), or forget the earlier batch first.",
                parameter="InferenceId")
        options = self.options
        job = options.is_job
        return BatchRecord(batch_id=batch_id, endpoint_name=self.target, size=self.total,
                           label=options.label, created_at=self.created_at, kind=kind, index_json=index_json,
                           max_pending=None if options.max_pending is None else str(options.max_pending),
                           retries=options.retries, job_state=JobState.RUNNING if job else None,
                           job_owner=os.getpid() if job else None, read_position=0 if job else None,
                           source_json=self.source_json() if job else None)


class PreparedPlan(Plan):
    """A plan whose requests are all made (validated, encoded) by :meth:`open`: one bad payload is named
    before anything is sent. What its source holds is in memory already."""

    def __init__(self, preparer: Preparer, endpoint_name: str, options: SubmitOptions):
        super().__init__(preparer, endpoint_name, options)
        self.prepared: list[PreparedRequest] = []

    def requests(self, start: int = 0) -> Iterator[PreparedRequest]:
        yield from self.prepared[start:]

    @property
    def only_id(self) -> str | None:
        return self.prepared[0].inference_id if self.batch is None and len(self.prepared) == 1 else None


class SinglePlan(PreparedPlan):
    """``submit``: one payload, no batch; ``inference_id`` is the request's own id."""

    def __init__(self, preparer: Preparer, endpoint_name: str, payload: Any, options: SubmitOptions,
                 inference_id: str | None, filename: str | None):
        super().__init__(preparer, endpoint_name, options)
        self.payload, self.slot = payload, Slot(inference_id, filename)
        self.total = 1

    def open(self) -> None:
        self.prepared = [self.preparer.prepare(self.target, self.payload, self.options, self.slot,
                                               self.created_at)]


def check_payload_list(payloads: Any) -> list[Any]:
    """``submit_many`` iterates its argument: refuse the values whose iteration is never meant (a str
    would become one request per character, a DataFrame one per column name)."""
    kind = type(payloads).__name__
    if isinstance(payloads, (str, bytes, bytearray, memoryview, os.PathLike)):
        raise ValidationError(f"submit_many takes a list of payloads, not one {kind}: use submit() for a single "
                              "payload, or pass [payload].", parameter="payloads")
    if isinstance(payloads, dict) or kind in ("DataFrame", "Series", "ndarray"):
        hint = "submit_dataframe(endpoint, df, rows_per_request=...)" if kind != "dict" else "submit()"
        raise ValidationError(f"submit_many takes a list of payloads, not a {kind} (iterating it would send its "
                              f"keys, columns or rows one by one): use {hint}, or pass a list.", parameter="payloads")
    if not isinstance(payloads, Iterable):
        raise ValidationError(f"submit_many takes a list of payloads, not a {kind}.", parameter="payloads")
    found = list(payloads)
    if not found:
        raise ValidationError("No payloads given: there is nothing to send.", parameter="payloads")
    return found


class PayloadsPlan(PreparedPlan):
    """``submit_many``: one request per payload, as one batch."""

    kind = BatchKind.PAYLOADS

    def __init__(self, preparer: Preparer, endpoint_name: str, payloads: Any, options: SubmitOptions,
                 inference_id: str | Sequence[str] | None, filename: Sequence[str] | None):
        super().__init__(preparer, endpoint_name, options)
        self.parts = self._parts(payloads)
        self.total = len(self.parts)
        ids = BatchIds(inference_id)
        self.ids = ids.for_count(self.total)
        self._batch_id = ids.batch_id
        self.names = per_item("filename", filename, self.total)
        _no_repeats("filename", self.names)
        self.index_json: str | None = None

    def _parts(self, payloads: Any) -> list[tuple[Any, tuple[int, int] | None]]:
        """(payload, rows it carries) per request."""
        return [(payload, None) for payload in check_payload_list(payloads)]

    def open(self) -> None:
        self.batch = self._batch(self._batch_id, self.kind, self.index_json)
        self.prepared = []
        for i, ((payload, rows), iid, name) in enumerate(zip(self.parts, self.ids, self.names, strict=True)):
            slot = Slot(iid, name, self._batch_id, i, rows)
            try:
                self.prepared.append(self.preparer.prepare(self.target, payload, self.options, slot,
                                                           self.created_at))
            except ValidationError as exc:
                raise ValidationError(f"payload {i}: {exc}", parameter=exc.parameter) from None


class DataFramePlan(PayloadsPlan):
    """``submit_dataframe``: slices of ``rows_per_request`` rows; results align to the DataFrame's index."""

    kind = BatchKind.DATAFRAME

    def __init__(self, preparer: Preparer, endpoint_name: str, df: Any, options: SubmitOptions,
                 inference_id: str | Sequence[str] | None, filename: Sequence[str] | None):
        import pandas as pd

        if isinstance(df, pd.Series):
            df = df.to_frame()
        if not isinstance(df, pd.DataFrame):
            raise ValidationError(f"submit_dataframe needs a pandas DataFrame, not {type(df).__name__}.",
                                  parameter="df")
        if df.empty:
            raise ValidationError("The DataFrame is empty: there is nothing to send.", parameter="df")
        self.df = df
        super().__init__(preparer, endpoint_name, df, options, inference_id, filename)
        self.index_json = encode_index(df.index)

    def _parts(self, payloads: Any) -> list[tuple[Any, tuple[int, int] | None]]:
        step = self.options.rows_per_request
        assert step is not None  # options.parse sets it for submit_dataframe
        n = len(self.df)
        return [(self.df.iloc[start:start + step], (start, min(step, n - start))) for start in range(0, n, step)]


class S3ObjectsPlan(PreparedPlan):
    """``submit_s3``: one request per object already in S3, the object itself as InputLocation."""

    def __init__(self, preparer: Preparer, endpoint_name: str, source: Any, options: SubmitOptions,
                 inference_id: str | Sequence[str] | None):
        super().__init__(preparer, endpoint_name, options)
        self.source = s3_sources.parse_source(source, options.pattern)
        self.ids = BatchIds(inference_id)

    def open(self) -> None:
        objects = s3_sources.resolve(self.preparer.ctx, self.source, self.options.content_type)
        self.total = len(objects)
        ids = self.ids.for_count(self.total)
        index = self.source.index
        self.batch = self._batch(self.ids.batch_id, BatchKind.S3, encode_index(index) if index is not None else None)
        self.prepared = [self.preparer.prepare(self.target, obj, self.options,
                                               Slot(iid, None, self.ids.batch_id, i), self.created_at)
                         for i, (obj, iid) in enumerate(zip(objects, ids, strict=True))]


class DatasetPlan(Plan):
    """``submit_dataset``: slices of ``rows_per_request`` rows read one record batch at a time, prepared as
    the run asks for them, a window at a time: memory does not grow with the dataset. Results align to
    the dataset's row numbers. Ids always follow a prefix (the default one is generated), so a stopped
    run continues by re-running with it."""

    streamed = True

    def __init__(self, preparer: Preparer, endpoint_name: str, source: Any, options: SubmitOptions,
                 inference_id: str | None, *, workers: int):
        super().__init__(preparer, endpoint_name, options)
        self.text = datasets.check_source(source)
        prefix = inference_id if inference_id is not None else f"ds-{uuid.uuid4().hex[:12]}"
        if not isinstance(prefix, str):
            raise ValidationError("inference_id for a dataset is one prefix (a str).", parameter="inference_id")
        self.ids = BatchIds(prefix, generated=inference_id is None)
        self.continue_with = prefix
        self.window = stream_window(workers)
        self.opened: datasets.OpenDataset | None = None

    def open(self) -> None:
        self.opened = datasets.open_dataset(self.preparer.ctx, self.text, self.options.columns)
        content_type = self.options.content_type or self.preparer.ctx.settings.default_content_type
        if media_type(content_type) == CSV:
            datasets.check_csv_columns(self.opened)
        step = self.options.rows_per_request
        assert step is not None  # options.parse sets it for submit_dataset
        self.total = -(-self.opened.rows // step)
        self.batch = self._batch(self.ids.batch_id, BatchKind.DATASET)

    def source_json(self) -> str | None:
        fields = {name: getattr(self.options, name) for name in (*REQUEST_MEMBERS, "label", "rows_per_request")
                  if getattr(self.options, name) is not None}
        if self.options.columns is not None:
            fields["columns"] = list(self.options.columns)
        return json.dumps({"method": "submit_dataset", "source": self.text, "prefix": self.ids.prefix,
                           "generated": self.ids.generated, "options": fields})

    def requests(self, start: int = 0) -> Iterator[PreparedRequest]:
        assert self.opened is not None and self.options.rows_per_request is not None, "open() first"
        step = self.options.rows_per_request
        content_type = self.options.content_type or self.preparer.ctx.settings.default_content_type
        exact = media_type(content_type) != NPY  # NPY has no nulls: integers with holes go as floats there
        for i, (first, table) in enumerate(datasets.chunks(self.opened, step, start), start):
            slot = Slot(self.ids.at(i, self.total), None, self.ids.batch_id, i, (first, table.num_rows),
                        fresh_id=self.ids.generated)
            try:
                yield self.preparer.prepare(self.target, datasets.to_frame(table, exact_integers=exact),
                                            self.options, slot, self.created_at)
            except ValidationError as exc:
                raise ValidationError(f"rows {first}-{first + table.num_rows - 1} of {self.text}: {exc}",
                                      parameter=exc.parameter) from None

    def progress(self) -> progress.ByteProgress | None:
        assert self.opened is not None
        return progress.make(f"submitting {self.opened.name}", self.opened.rows, unit="rows")
