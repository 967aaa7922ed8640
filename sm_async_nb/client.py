"""AsyncInferenceClient: the one wiring point.

It builds the :class:`~sm_async_nb.context.Context` (AWS clients, journal, settings, worker pool,
origin) and the parts that receive it — preparer, submitter, tracker, handles — and is the only
module that does. The public methods validate, then delegate: validate → encode → journal →
upload → invoke (``submission``), follow up (``tracking``, ``handles``, ``results``).
"""

from __future__ import annotations

import numbers
import os
import time
import uuid
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import boto3

from . import progress
from .aws.clients import AwsClients
from .aws.s3uri import S3Uri
from .config import SageMakerAsync
from .context import Context
from .contract.validation import check_member
from .endpoints.monitor import DEFAULT_MAX_AGE_S, EndpointMonitor
from .endpoints.status import EndpointStatus
from .errors import AwsError, ConfigurationError, SubmissionError, SubmissionInterrupted, ValidationError
from .handles import HandleParts, Invocation, InvocationBatch
from .journal import Journal
from .payloads.indexes import encode_index
from .payloads.mediatypes import CSV, media_type
from .records import BatchKind, BatchRecord, InvocationRecord, Status
from .submission import batches, datasets, s3_sources
from .submission.inputs import InputPrefix
from .submission.owners import recover_interrupted
from .submission.prepare import PreparedRequest, Preparer, RequestOptions
from .submission.sender import Submitter
from .tracking.tracker import Tracker

if TYPE_CHECKING:
    import pandas as pd

    from .notebook.panel.panel import Panel


def _check_many(payloads: Any) -> None:
    """``submit_many`` iterates its argument: refuse the values whose iteration is never meant
    (a str would become one request per character, a DataFrame one per column name)."""
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


class AsyncInferenceClient:
    """Submit payloads to SageMaker async endpoints and follow them up from a notebook."""

    def __init__(self, s3_input_path: str | None = None, session: boto3.Session | None = None,
                 journal_path: str | os.PathLike[str] | None = None, max_workers: int | None = None, *,
                 settings: SageMakerAsync | None = None, endpoint_urls: dict[str, str] | None = None):
        """
        Args:
            s3_input_path: where payloads are uploaded (``s3://bucket/prefix/``); default from the
                settings, else ``s3://sagemaker-{region}-{account}/sm-async-nb/inputs/``.
            session: a boto3 Session; default: boto3's normal resolution (profile, env, role).
            journal_path: the SQLite journal; default under the user's home (settings).
            max_workers: concurrency for uploads, invokes and downloads (default 16).
            settings: a SageMakerAsync settings object (the notebook's, for ``%config``).
            endpoint_urls: endpoint_url per boto3 service name (a local stack or a moto server).

        Raises:
            ConfigurationError: no region, or an s3_input_path that is not an S3 URI.
            JournalError: the journal file cannot be used.
        """
        self.settings = settings if settings is not None else SageMakerAsync()
        path = s3_input_path if s3_input_path is not None else self.settings.s3_input_path
        try:
            configured = S3Uri.parse(S3Uri.parse(path).as_prefix()) if path else None
        except ValueError as exc:
            raise ConfigurationError(f"s3_input_path: {exc}") from None
        if session is None:
            session = boto3.Session(profile_name=self.settings.profile or None,
                                    region_name=self.settings.region or None)
        if session.region_name is None:
            raise ConfigurationError("No AWS region configured: set AWS_DEFAULT_REGION, a region in your "
                                     "profile, or %config SageMakerAsync.region = 'us-east-1'.")
        self.max_workers = max_workers or self.settings.max_workers
        aws = AwsClients(session, endpoint_urls, self.max_workers)
        journal = Journal(journal_path or self.settings.resolved_journal_path())
        self.pool = ThreadPoolExecutor(self.max_workers, thread_name_prefix="sm-async-nb")
        self.ctx = Context(aws=aws, journal=journal, settings=self.settings, pool=self.pool, origin=aws.origin())
        self.tracker = Tracker(self.ctx)
        self._inputs = InputPrefix(self.ctx, configured)
        self._preparer = Preparer(self.ctx, self._inputs)
        self._submitter = Submitter(self.ctx, self._preparer, on_submitted=self.tracker.poke)
        self.monitor = EndpointMonitor(self.ctx)
        self._parts = HandleParts(self.ctx, self.tracker, self._submitter, self.monitor)
        self.recovered = recover_interrupted(self.ctx)

    # The context's parts, for code that used to reach them through the client.
    aws = property(lambda self: self.ctx.aws)
    journal = property(lambda self: self.ctx.journal)
    origin = property(lambda self: self.ctx.origin)

    # --- submitting --------------------------------------------------------------------------

    def submit(self, endpoint_name: str, payload: Any, content_type: str | None = None,
               accept: str | None = None, custom_attributes: str | None = None,
               inference_id: str | None = None, request_ttl_seconds: int | None = None,
               invocation_timeout_seconds: int | None = None, s3_output_path_extension: str | None = None,
               filename: str | None = None, label: str | None = None, inline: bool = False) -> Invocation:
        """Send one payload.

        Raises:
            ValidationError: a parameter or the payload breaks a rule; nothing was sent.
            SubmissionError: the request could not be handed to SageMaker (journaled as ERROR; the
                exception carries the inference id). SubmissionInterrupted on Ctrl-C.
        """
        options = RequestOptions(content_type, accept, custom_attributes, request_ttl_seconds,
                                 invocation_timeout_seconds, s3_output_path_extension, label, inline)
        request = self._preparer.prepare(endpoint_name, payload, options, inference_id=inference_id,
                                         filename=filename)
        [record] = self._run([request])
        if record.status is Status.ERROR:
            raise SubmissionError(record.error or "submission failed", inference_id=record.inference_id)
        return self.invocation(record.inference_id)

    def submit_many(self, endpoint_name: str, payloads: Iterable[Any], *,
                    inference_id: str | Sequence[str] | None = None,
                    filename: Sequence[str] | None = None, **options: Any) -> InvocationBatch:
        """Send many payloads concurrently as one batch (same options as :meth:`submit`).

        ``inference_id`` may be one id per payload, or one str used as the batch's id prefix:
        re-running with the same id continues an interrupted batch instead of starting another.

        Raises:
            ValidationError: a payload or option breaks a rule (named); nothing was sent.
            SubmissionInterrupted: Ctrl-C; ``exc.batch`` is the batch, ``resubmit()`` sends the rest.
        """
        _check_many(payloads)
        parts = [(payload, None) for payload in payloads]
        return self._submit_batch(endpoint_name, parts, RequestOptions.of(**options), inference_id, filename,
                                  kind=BatchKind.PAYLOADS)

    def submit_dataframe(self, endpoint_name: str, df: pd.DataFrame, rows_per_request: int = 100,
                         content_type: str | None = "text/csv", *,
                         inference_id: str | Sequence[str] | None = None,
                         filename: Sequence[str] | None = None, **options: Any) -> InvocationBatch:
        """Split ``df`` into requests of ``rows_per_request`` rows; results come back in input order,
        aligned to ``df.index`` when each request returns one row per input row.

        Raises:
            ValidationError: not a DataFrame, empty, a bad option or payload; nothing was sent.
            SubmissionInterrupted: Ctrl-C; ``exc.batch`` is the batch, ``resubmit()`` sends the rest.
        """
        import pandas as pd

        if isinstance(df, pd.Series):
            df = df.to_frame()
        if not isinstance(df, pd.DataFrame):
            raise ValidationError(f"submit_dataframe needs a pandas DataFrame, not {type(df).__name__}.")
        datasets.check_rows_per_request(rows_per_request)
        if df.empty:
            raise ValidationError("The DataFrame is empty: there is nothing to send.")
        parts = [(df.iloc[start:start + rows_per_request], (start, min(rows_per_request, len(df) - start)))
                 for start in range(0, len(df), rows_per_request)]
        return self._submit_batch(endpoint_name, parts, RequestOptions.of(content_type=content_type, **options),
                                  inference_id, filename, kind=BatchKind.DATAFRAME,
                                  index_json=encode_index(df.index))

    def submit_s3(self, endpoint_name: str, source: Any, pattern: str | None = None, *,
                  inference_id: str | Sequence[str] | None = None, content_type: str | None = None,
                  **options: Any) -> InvocationBatch:
        """Send objects that are already in S3, as they are: InputLocation is the object itself (never
        copied, moved or deleted). One invocation per object, as one batch.

        Args:
            endpoint_name: the async endpoint.
            source: one ``s3://bucket/key``; a prefix ending in ``/`` (listed, every object under it);
                a list of URIs; or a pandas Series of URIs (results align to its index).
            pattern: with a prefix, an fnmatch pattern on the key below it (``"*.wav"``).
            inference_id: one id per object, or one str as the batch's id prefix (a re-run continues).
            content_type: for objects whose own Content-Type is generic and whose suffix says nothing.
            **options: accept, custom_attributes, request_ttl_seconds, invocation_timeout_seconds,
                s3_output_path_extension, label (as for :meth:`submit`).

        Raises:
            ValidationError: a bad URI, no match, a missing, empty or over-1-GB object, a bad option;
                nothing was invoked.
            AwsError: S3 refused to list or read the objects.
            SubmissionInterrupted: Ctrl-C; ``exc.batch`` is the batch.
        """
        request_options = RequestOptions.of(**options)
        if request_options.inline:
            raise ValidationError("submit_s3 sends objects already in S3: inline=True does not apply.",
                                  parameter="inline")
        objects, index = s3_sources.resolve(self.ctx, source, pattern, content_type)
        count = len(objects)
        ids, batch_id = batches.batch_ids(inference_id, count)
        index_json = encode_index(index) if index is not None else None
        batches.check_same_batch(self._preparer, batch_id, endpoint_name, count, BatchKind.S3, index_json)
        now = time.time()
        requests = [self._preparer.prepare_s3(endpoint_name, obj, request_options, inference_id=iid, now=now,
                                              batch_id=batch_id, batch_index=i)
                    for i, (obj, iid) in enumerate(zip(objects, ids, strict=True))]
        batch = BatchRecord(batch_id=batch_id, endpoint_name=endpoint_name, size=count, label=request_options.label,
                            created_at=now, kind=BatchKind.S3, index_json=index_json)
        self._run(requests, batch)
        return self.batch(batch_id)

    def submit_dataset(self, endpoint_name: str, source: str | os.PathLike[str], rows_per_request: int = 1000,
                       content_type: str | None = "text/csv", columns: Sequence[str] | None = None, *,
                       inference_id: str | None = None, **options: Any) -> InvocationBatch:
        """Stream a Parquet/CSV file, folder or glob (local or ``s3://``) to the endpoint in requests of
        ``rows_per_request`` rows, reading one record batch at a time: memory does not grow with the
        dataset. Results align to the dataset's row numbers; ``batch.write_results(dest)`` streams them.

        Args:
            endpoint_name: the async endpoint.
            source: ``data/big.parquet``, ``data/*.csv``, ``data/table/`` or ``s3://bucket/table/``.
            rows_per_request: rows per request (the last one may be shorter).
            content_type: how each slice is sent (text/csv without header by default).
            columns: send only these columns, in this order.
            inference_id: the batch's id prefix: re-running with the same prefix continues an
                interrupted submission (the default prefix is generated and named in the error).
            **options: accept, custom_attributes, request_ttl_seconds, invocation_timeout_seconds,
                s3_output_path_extension, label.

        Raises:
            ValidationError: a missing path, no match, an unsupported file type, a missing column, a
                ragged or unreadable row, a bad option; nothing was sent.
            SubmissionInterrupted: Ctrl-C; ``exc.batch`` is the batch, the message says how to continue.
        """
        datasets.check_rows_per_request(rows_per_request)
        request_options = RequestOptions.of(content_type=content_type, **options)
        if request_options.inline:
            raise ValidationError("submit_dataset sends its slices through S3: inline=True does not apply.",
                                  parameter="inline")
        opened = datasets.open_dataset(self.ctx, source, columns)
        if media_type(request_options.content_type or self.ctx.settings.default_content_type) == CSV:
            datasets.check_csv_columns(opened)
        count = -(-opened.rows // rows_per_request)
        prefix = inference_id if inference_id is not None else f"ds-{uuid.uuid4().hex[:12]}"
        if not isinstance(prefix, str):
            raise ValidationError("inference_id for a dataset is one prefix (a str).", parameter="inference_id")
        ids, batch_id = batches.batch_ids(prefix, count)
        batches.check_same_batch(self._preparer, batch_id, endpoint_name, count, BatchKind.DATASET, None)
        batch = BatchRecord(batch_id=batch_id, endpoint_name=endpoint_name, size=count, label=request_options.label,
                            created_at=time.time(), kind=BatchKind.DATASET)
        window = max(64, 4 * self.max_workers)  # slices encoded and in flight at once: bounds the memory
        shown = progress.make(f"submitting {opened.name}", opened.rows, unit="rows")
        sent = 0
        try:
            pending: list[PreparedRequest] = []
            for i, (start, table) in enumerate(datasets.chunks(opened, rows_per_request)):
                pending.append(self._preparer.prepare(
                    endpoint_name, table.to_pandas(), request_options, inference_id=ids[i], filename=None,
                    now=batch.created_at, batch_id=batch_id, batch_index=i, rows=(start, table.num_rows)))
                if len(pending) == window:
                    sent += self._send_window(pending, batch, shown)
                    pending = []
            if pending:
                sent += self._send_window(pending, batch, shown)
        except SubmissionInterrupted as exc:
            stopped = SubmissionInterrupted(sent=sent + exc.sent, not_sent=count - sent - exc.sent, total=count,
                                            batch_id=batch_id, continue_with=prefix)
            stopped.batch = self.batch(batch_id)
            raise stopped from None
        finally:
            if shown is not None:
                shown.close()
        return self.batch(batch_id)

    def _send_window(self, requests: list[PreparedRequest], batch: BatchRecord, shown: Any) -> int:
        self._run(requests, batch)
        if shown is not None:
            shown(sum(r.record.row_count or 0 for r in requests))
        return len(requests)

    def _submit_batch(self, endpoint_name: str, parts: Sequence[batches.Part], options: RequestOptions,
                      inference_id: str | Sequence[str] | None, filename: Sequence[str] | None, *,
                      kind: BatchKind, index_json: str | None = None) -> InvocationBatch:
        requests, batch = batches.plan(self._preparer, endpoint_name, parts, options, inference_id, filename,
                                       kind=kind, index_json=index_json)
        self._run(requests, batch)
        return self.batch(batch.batch_id)

    def _run(self, requests: list[PreparedRequest], batch: Any = None) -> list[InvocationRecord]:
        try:
            return self._submitter.run(requests, batch)
        except SubmissionInterrupted as exc:
            if exc.batch_id is not None:
                exc.batch = self.batch(exc.batch_id)
            raise

    def resubmit(self, inference_ids: Iterable[str]) -> list[Invocation]:
        """Send finished-but-unsuccessful invocations again, reusing their input object.

        ERROR rows (never reached SageMaker) keep their inference id; FAILED/EXPIRED rows get a new
        id (the old one already has a failure object) in the same batch slot.

        Raises:
            ValidationError: an id is unknown, still running, or has no input left to reuse.
        """
        if isinstance(inference_ids, str):
            inference_ids = [inference_ids]
        return [self.invocation(i) for i in self._submitter.resubmit(inference_ids)]

    def input_prefix(self) -> S3Uri:
        """The configured s3_input_path, else SageMaker's default bucket (created if missing)."""
        return self._inputs.get()

    # --- following up ------------------------------------------------------------------------

    def invocation(self, inference_id: str) -> Invocation:
        return self._parts.invocation(inference_id)

    def batch(self, batch_id: str) -> InvocationBatch:
        return self._parts.batch(batch_id)

    def endpoint_status(self, name: str, max_age: float = DEFAULT_MAX_AGE_S) -> EndpointStatus:
        """What the endpoint is doing to the requests waiting on it (SPEC §10): status, instances, autoscaling
        limits, backlog metrics, whether it scales out from zero, and warnings (one actionable line each).

        Served from a cache younger than ``max_age`` seconds (0: fetch now). A fetch costs one DescribeEndpoint,
        one GetMetricData, one DescribeScalableTargets (and, for MinCapacity 0, DescribeScalingPolicies and one
        DescribeAlarmsForMetric), plus DescribeEndpointConfig once per config: per endpoint, never per
        invocation. A missing permission leaves its fields None and adds a warning naming it.

        Args:
            name: the endpoint's name.
            max_age: the oldest cached snapshot to accept, in seconds.

        Raises:
            ValidationError: ``name`` is not a valid endpoint name, or ``max_age`` is negative.
            AwsError: there is no such endpoint (``kind="not_found"``).
        """
        check_member("EndpointName", name)
        if isinstance(max_age, bool) or not isinstance(max_age, (int, float)) or not max_age >= 0:
            raise ValidationError(f"max_age must be a number of seconds >= 0, not {max_age!r}.", parameter="max_age")
        snapshot = self.monitor.status(name, max_age)
        if snapshot.exists is False:
            raise AwsError(snapshot.warnings[0], code="NotFound", kind="not_found")
        return snapshot

    def panel(self) -> Panel:
        """The live ipywidgets panel of tracked invocations (starts background polling): one per
        client, so asking again shows the same panel; after ``panel.close()`` a new one."""
        from .notebook.panel.panel import Panel  # the one import up into the notebook layer

        current: Panel | None = getattr(self, "_panel", None)
        if current is None or current.closed:
            # The strip and the details read the endpoint monitor's cache (a fetch at most once a minute).
            current = self._panel = Panel(self._parts, row_logs=self.monitor.log_messages,
                                          endpoint_status=self.monitor.status)
        return current

    def forget(self, inference_ids: Iterable[str]) -> int:
        """Drop rows from the journal (their S3 objects stay)."""
        if isinstance(inference_ids, str):
            inference_ids = [inference_ids]
        return self.ctx.journal.delete(inference_ids)

    def prune(self, older_than_days: float = 30.0) -> int:
        """Forget finished invocations whose result was seen more than ``older_than_days`` ago.

        Raises:
            ValidationError: a negative age, or not a number (a bool, a string, NaN).
        """
        if isinstance(older_than_days, bool) or not isinstance(older_than_days, numbers.Real) \
                or not older_than_days >= 0:
            raise ValidationError(f"older_than_days must be a number of days >= 0, not {older_than_days!r}.",
                                  parameter="older_than_days")
        return self.ctx.journal.prune(finished_before=time.time() - older_than_days * 86400)

    def records(self, *, include_other_origins: bool = False,
                statuses: Iterable[Status] | None = None) -> list[InvocationRecord]:
        return self.ctx.records(statuses=statuses, include_other_origins=include_other_origins)

    def close(self) -> None:
        panel = getattr(self, "_panel", None)
        if panel is not None:  # its workers and subscription must not outlive the journal
            panel.close()
        self.tracker.stop()
        self.pool.shutdown(wait=True)
        self.ctx.journal.close()
        self.ctx.aws.close()

    def __enter__(self) -> AsyncInferenceClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        counts = self.ctx.journal.counts(self.origin)
        shown = ", ".join(f"{s.value.lower()}={n}" for s, n in counts.items()) or "nothing tracked"
        return f"<AsyncInferenceClient region={self.ctx.aws.region} ({shown})>"
