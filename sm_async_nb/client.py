"""AsyncInferenceClient: the one wiring point.

It builds the :class:`~sm_async_nb.context.Context` (AWS clients, journal, settings, worker pool,
origin) and the parts that receive it — preparer, submitter, tracker, handles — and is the only
module that does. Every ``submit_*`` method is validate (the options, once, before any I/O) → a
plan for its kind of source (``submission.plans``) → the one runner (``submission.runner``):
journal → upload → invoke. Following up goes through ``tracking``, ``handles`` and ``results``.
"""

from __future__ import annotations

import numbers
import operator
import os
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import boto3

from .aws.clients import AwsClients
from .aws.s3uri import S3Uri
from .config import SageMakerAsync
from .context import Context
from .contract.routing import (
    ROUTER_MEMBER,
    Destination,
    RoutingTarget,
    check_destination,
    refuse_inline,
    routing_target_of,
)
from .contract.validation import INVOKE_ROUTER_ASYNC, check_member
from .endpoints.monitor import DEFAULT_MAX_AGE_S, EndpointMonitor
from .endpoints.router_status import RouterStatus
from .endpoints.routers import RouterMonitor
from .endpoints.status import EndpointStatus
from .errors import AwsError, ConfigurationError, SubmissionError, ValidationError
from .handles import HandleParts, Invocation, InvocationBatch
from .journal import Journal
from .records import InvocationRecord, Status, ids_of, statuses_of
from .submission import plans
from .submission.attach import attach as attach_invocation
from .submission.flow import Capacity, combined
from .submission.inputs import InputPrefix
from .submission.jobs import Jobs, recover_jobs
from .submission.options import (
    ROWS_PER_REQUEST_DATAFRAME,
    ROWS_PER_REQUEST_DATASET,
    TABLE_CONTENT_TYPE,
    Method,
    SubmitOptions,
)
from .submission.options import parse as parse_options
from .submission.owners import recover_interrupted
from .submission.prepare import Preparer
from .submission.runner import Submitter
from .tracking.tracker import Tracker

if TYPE_CHECKING:
    import pandas as pd

    from .notebook.panel.panel import Panel


AUTO_CAPACITY_MAX_AGE_S = 15.0  # "auto" re-reads the endpoint's instances at most this often
ZERO_CAPACITY_MAX_AGE_S = 2.0   # ...and this often while it reads 0 (scaling out from zero: the window grows with it)


def _check_max_age(max_age: Any) -> None:
    if isinstance(max_age, bool) or not isinstance(max_age, numbers.Real) or not float(max_age) >= 0:
        raise ValidationError(f"max_age must be a number of seconds >= 0, not {max_age!r}.", parameter="max_age")


class AsyncInferenceClient:
    """Submit payloads to SageMaker async endpoints and follow them up from a notebook."""

    def __init__(self, s3_input_path: str | None = None, session: boto3.Session | None = None,
                 journal_path: str | os.PathLike[str] | None = None, max_workers: int | None = None, *,
                 settings: SageMakerAsync | None = None, endpoint_urls: dict[str, str] | None = None,
                 clock: Callable[[], float] = time.time, time_scale: float = 1.0):
        """
        Args:
            s3_input_path: where payloads are uploaded (``s3://bucket/prefix/``); default from the
                settings, else ``s3://sagemaker-{region}-{account}/sm-async-nb/inputs/``.
            session: a boto3 Session; default: boto3's normal resolution (profile, env, role).
            journal_path: the SQLite journal; default under the user's home (settings).
            max_workers: concurrency for uploads, invokes and downloads (default 16).
            settings: a SageMakerAsync settings object (the notebook's, for ``%config``).
            endpoint_urls: endpoint_url per boto3 service name (a local stack or a moto server).
            clock: the notebook's clock (epoch seconds); S3's may differ from it, by hours even, and
                outputs are still matched (tests inject one that is off).
            time_scale: how many of the endpoint's seconds pass per real second: 1 on AWS; a local stack
                with ``time_scale`` hands its own (``stack.client()``). Used only where TTLs and drain rates
                are compared (``max_pending="auto"``).

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
        workers: Any = max_workers if max_workers is not None else self.settings.max_workers
        try:
            self.max_workers = -1 if isinstance(workers, bool) else operator.index(workers)
        except TypeError:
            self.max_workers = -1
        if self.max_workers < 1:
            raise ConfigurationError(f"max_workers must be a positive integer, not {workers!r}.")
        if isinstance(time_scale, bool) or not isinstance(time_scale, (int, float)) \
                or not 0 < time_scale < float("inf"):
            raise ConfigurationError(f"time_scale must be a number > 0, not {time_scale!r}.")
        if journal_path is not None and (not isinstance(journal_path, (str, os.PathLike))
                                         or not os.fspath(journal_path)):
            raise ConfigurationError(f"journal_path must be a file path, not {journal_path!r}.")
        if endpoint_urls is not None and not (isinstance(endpoint_urls, dict) and all(
                isinstance(k, str) and isinstance(v, str) and v for k, v in endpoint_urls.items())):
            raise ConfigurationError("endpoint_urls must map boto3 service names to URLs, e.g. "
                                     f"{{'s3': 'http://127.0.0.1:5000'}}, not {endpoint_urls!r}.")
        aws = AwsClients(session, endpoint_urls, self.max_workers, clock=clock)
        journal = Journal(journal_path or self.settings.resolved_journal_path(), clock=clock)
        self.pool = ThreadPoolExecutor(self.max_workers, thread_name_prefix="sm-async-nb")
        self.ctx = Context(aws=aws, journal=journal, settings=self.settings, pool=self.pool, origin=aws.origin(),
                           clock=clock, time_scale=float(time_scale))
        self.tracker = Tracker(self.ctx, clock=clock)
        self._inputs = InputPrefix(self.ctx, configured)
        self._preparer = Preparer(self.ctx, self._inputs)
        self._submitter = Submitter(self.ctx, self._preparer, on_submitted=self.tracker.poke)
        self.monitor = EndpointMonitor(self.ctx, clock=clock)
        self.routers = RouterMonitor(self.ctx, self.monitor, clock=clock)
        self.jobs = Jobs(self.ctx, self._submitter, capacity=self._capacity, lag=lambda: self.tracker.max_interval,
                         on_activity=self._jobs_moved, subscribe=self.tracker.subscribe)
        self._parts = HandleParts(self.ctx, self.tracker, self._submitter, self.monitor, self.jobs)
        self.recovered = recover_interrupted(self.ctx)
        self.paused_jobs = recover_jobs(self.ctx)

    # The context's parts, for code that used to reach them through the client.
    aws = property(lambda self: self.ctx.aws)
    journal = property(lambda self: self.ctx.journal)
    origin = property(lambda self: self.ctx.origin)

    # --- submitting: validate → plan → the one runner ---------------------------------------

    def submit(self, endpoint_name: Destination, payload: Any, content_type: str | None = None,
               accept: str | None = None, custom_attributes: str | None = None,
               inference_id: str | None = None, request_ttl_seconds: int | None = None,
               invocation_timeout_seconds: int | None = None, s3_output_path_extension: str | None = None,
               filename: str | None = None, label: str | None = None, inline: bool = False,
               json_format: str | None = None, **unknown: Any) -> Invocation:
        """Send one payload.

        Args:
            endpoint_name: the async endpoint, or an ``sma.RoutingTarget`` (an inference router's routing target).
            payload: str, bytes, dict/list, DataFrame/Series, numpy array or pathlib.Path
                (``sm_async_nb.payloads.CONTENT_TYPE_RULES`` says how each is sent).
            content_type, accept, custom_attributes, inference_id, request_ttl_seconds,
                invocation_timeout_seconds, s3_output_path_extension, filename: InvokeEndpointAsync's
                members (SPEC §2), checked before anything is sent.
            label: a name to find this submission by.
            inline: send the payload (<= 128,000 bytes) in the request body instead of through S3.
            json_format: how a DataFrame sent as application/json is laid out: ``"records"`` (a list of
                rows), ``"split"`` (MLflow), ``"instances"`` (TF Serving, TorchServe, built-ins) or
                ``"inputs"`` (Hugging Face); default: the ``json_format`` setting.

        Raises:
            ValidationError: a parameter or the payload breaks a rule, or an unknown option; nothing was sent.
            SubmissionError: the request could not be handed to SageMaker (journaled as ERROR; the
                exception carries the inference id). SubmissionInterrupted on Ctrl-C.
        """
        name, options = self._options("submit", endpoint_name, dict(
            content_type=content_type, accept=accept, custom_attributes=custom_attributes,
            request_ttl_seconds=request_ttl_seconds, invocation_timeout_seconds=invocation_timeout_seconds,
            s3_output_path_extension=s3_output_path_extension, label=label, inline=inline,
            json_format=json_format, **unknown))
        plan = plans.SinglePlan(self._preparer, name, payload, options, inference_id, filename)
        self._run(plan)
        record = self.ctx.journal.get(plan.prepared[0].inference_id)
        if record is not None and record.status is Status.ERROR:
            raise SubmissionError(record.error or "submission failed", inference_id=record.inference_id)
        return self.invocation(plan.prepared[0].inference_id)

    def submit_many(self, endpoint_name: Destination, payloads: Iterable[Any], *,
                    inference_id: str | Sequence[str] | None = None,
                    filename: Sequence[str] | None = None, **options: Any) -> InvocationBatch:
        """Send many payloads concurrently as one batch (same options as :meth:`submit`).

        ``inference_id`` may be one id per payload, or one str used as the batch's id prefix:
        re-running with the same id continues an interrupted batch instead of starting another.

        Raises:
            ValidationError: a payload or option breaks a rule (named); nothing was sent.
            SubmissionInterrupted: Ctrl-C; ``exc.batch`` is the batch, ``resubmit()`` sends the rest.
        """
        name, checked = self._options("submit_many", endpoint_name, options)
        return self._run_batch(plans.PayloadsPlan(self._preparer, name, payloads, checked, inference_id,
                                                  filename))

    def submit_dataframe(self, endpoint_name: Destination, df: pd.DataFrame,
                         rows_per_request: int = ROWS_PER_REQUEST_DATAFRAME,
                         content_type: str | None = TABLE_CONTENT_TYPE, *,
                         inference_id: str | Sequence[str] | None = None,
                         filename: Sequence[str] | None = None, **options: Any) -> InvocationBatch:
        """Split ``df`` into requests of ``rows_per_request`` rows; results come back in input order,
        aligned to ``df.index`` when each request returns one row per input row.

        Args:
            endpoint_name: the async endpoint, or an ``sma.RoutingTarget`` (an inference router's routing target).
            df: the DataFrame (a Series is sent as one column).
            rows_per_request: rows per request (the last one may be shorter).
            content_type: how each slice is sent (text/csv without header by default).
            inference_id: one id per request, or one str as the batch's id prefix (a re-run continues).
            filename: one output Filename per request.
            **options: as for :meth:`submit` (``json_format`` with ``content_type="application/json"``).

        Raises:
            ValidationError: not a DataFrame, empty, a bad option or payload; nothing was sent.
            SubmissionInterrupted: Ctrl-C; ``exc.batch`` is the batch, ``resubmit()`` sends the rest.
        """
        name, checked = self._options("submit_dataframe", endpoint_name,
                                dict(options, rows_per_request=rows_per_request, content_type=content_type))
        return self._run_batch(plans.DataFramePlan(self._preparer, name, df, checked, inference_id, filename))

    def submit_s3(self, endpoint_name: Destination, source: Any, pattern: str | None = None, *,
                  inference_id: str | Sequence[str] | None = None, content_type: str | None = None,
                  **options: Any) -> InvocationBatch:
        """Send objects that are already in S3, as they are: InputLocation is the object itself (never
        copied, moved or deleted). One invocation per object, as one batch.

        Args:
            endpoint_name: the async endpoint, or an ``sma.RoutingTarget`` (an inference router's routing target).
            source: one ``s3://bucket/key``; a prefix ending in ``/`` (listed, every object under it);
                a list of URIs; or a pandas Series of URIs (results align to its index).
            pattern: with a prefix, a glob on the key below it, as ``submit_dataset``'s: ``*`` and ``?`` stay
                within one ``/``-segment, ``**`` spans any number (``"*.wav"``, ``"**/*.wav"``).
            inference_id: one id per object, or one str as the batch's id prefix (a re-run continues).
            content_type: for objects whose own Content-Type is generic and whose suffix says nothing.
            **options: accept, custom_attributes, request_ttl_seconds, invocation_timeout_seconds,
                s3_output_path_extension, label (as for :meth:`submit`).

        Raises:
            ValidationError: a bad option (checked before S3 is asked anything), a bad URI, no match, a
                missing, empty or over-1-GB object; nothing was invoked.
            AwsError: S3 refused to list or read the objects.
            SubmissionInterrupted: Ctrl-C; ``exc.batch`` is the batch.
        """
        name, checked = self._options("submit_s3", endpoint_name,
                                      dict(options, pattern=pattern, content_type=content_type))
        return self._run_batch(plans.S3ObjectsPlan(self._preparer, name, source, checked, inference_id))

    def submit_dataset(self, endpoint_name: Destination, source: str | os.PathLike[str],
                       rows_per_request: int = ROWS_PER_REQUEST_DATASET,
                       content_type: str | None = TABLE_CONTENT_TYPE, columns: Sequence[str] | None = None, *,
                       inference_id: str | None = None, **options: Any) -> InvocationBatch:
        """Stream a Parquet/CSV file, folder or glob (local or ``s3://``) to the endpoint in requests of
        ``rows_per_request`` rows, reading one record batch at a time: memory does not grow with the
        dataset. Results align to the dataset's row numbers; ``batch.write_results(dest)`` streams them.

        Args:
            endpoint_name: the async endpoint, or an ``sma.RoutingTarget`` (an inference router's routing target).
            source: ``data/big.parquet``, ``data/*.csv``, ``data/table/`` or ``s3://bucket/table/``.
            rows_per_request: rows per request (the last one may be shorter).
            content_type: how each slice is sent (text/csv without header by default).
            columns: send only these columns, in this order.
            inference_id: the batch's id prefix: re-running with the same prefix continues an
                interrupted submission (the default prefix is generated and named in the error).
            **options: accept, custom_attributes, request_ttl_seconds, invocation_timeout_seconds,
                s3_output_path_extension, label, json_format (with ``content_type="application/json"``).

        Raises:
            ValidationError: a missing path, no match, an unsupported file type, a missing column, a
                ragged or unreadable row, a bad option; nothing was sent.
            SubmissionInterrupted: Ctrl-C; ``exc.batch`` is the batch, the message says how to continue.
            SubmissionError: a failure every request would meet (expired credentials...) stopped it part-way;
                ``exc.batch`` is the batch, the message says how to continue.
        """
        name, checked = self._options("submit_dataset", endpoint_name, dict(
            options, rows_per_request=rows_per_request, content_type=content_type, columns=columns))
        return self._run_batch(plans.DatasetPlan(self._preparer, name, source, checked, inference_id,
                                                 workers=self.max_workers))

    @staticmethod
    def _options(method: Method, destination: Destination, given: dict[str, Any]) -> tuple[str, SubmitOptions]:
        """The destination (an endpoint name or a RoutingTarget: its journaled name) and every option,
        checked by the rules of the operation that will send them, before any I/O."""
        name = check_destination(destination)
        options = parse_options(method, given)
        if options.inline:
            refuse_inline(name)
        return name, options

    def _run(self, plan: plans.Plan) -> None:
        """The one runner; a batch that stopped part-way is attached to the error (``exc.batch``)."""
        try:
            self._submitter.run(plan)
        except SubmissionError as exc:
            if exc.batch_id is not None and self.ctx.journal.get_batch(exc.batch_id) is not None:
                exc.batch = self.batch(exc.batch_id)
            raise

    def _run_batch(self, plan: plans.Plan) -> InvocationBatch:
        if plan.options.is_job:  # held QUEUED and invoked by the job thread, a window at a time
            if plan.window is None:  # read a window at a time too: the job's invokes share the pool with the uploads
                plan.window = plans.stream_window(self.max_workers)
            self.tracker.start()
            try:
                self.jobs.submit(plan)
            except SubmissionError as exc:
                if exc.batch_id is not None and self.ctx.journal.get_batch(exc.batch_id) is not None:
                    exc.batch = self.batch(exc.batch_id)
                raise
        else:
            self._run(plan)
        assert plan.batch is not None
        return self.batch(plan.batch.batch_id)

    def _capacity(self, endpoint_name: str) -> Capacity:
        """What ``max_pending="auto"`` sizes from: the endpoint's current instances and per-instance concurrency;
        for a routing target, its Routable destinations' combined capacity (SPEC §20)."""
        routed = routing_target_of(endpoint_name)
        if routed is not None:
            target = self.routers.status(routed.router, AUTO_CAPACITY_MAX_AGE_S).target(routed.target)
            return combined([Capacity(d.endpoint.current_instances, d.endpoint.max_concurrent_per_instance)
                             for d in (target.destinations if target else ()) if d.routable and d.endpoint])
        status = self.monitor.status(endpoint_name, AUTO_CAPACITY_MAX_AGE_S)
        if status.current_instances == 0:
            status = self.monitor.status(endpoint_name, ZERO_CAPACITY_MAX_AGE_S)
        return Capacity(status.current_instances, status.max_concurrent_per_instance)

    def _jobs_moved(self) -> None:
        """A job sent or changed something: poll soon, and wake whoever waits on the tracker."""
        self.tracker.start()
        self.tracker.poke()
        self.tracker.bus.publish([])

    def resubmit(self, inference_ids: Iterable[str]) -> list[Invocation]:
        """Send finished-but-unsuccessful invocations again, reusing their input object.

        ERROR rows (never reached SageMaker) keep their inference id; FAILED/EXPIRED rows get a new
        id (the old one already has a failure object) in the same batch slot.

        Raises:
            ValidationError: an id is unknown, still running, or has no input left to reuse.
        """
        return [self.invocation(i) for i in self._submitter.resubmit(ids_of(inference_ids))]

    def attach(self, endpoint_name: Destination, inference_id: str, output_location: str,
               failure_location: str | None = None, *, label: str | None = None) -> Invocation:
        """Follow an invocation submitted by anything else (the AWS CLI, an SDK, a Lambda, another kernel):
        it is journaled PENDING and appears in the panel, ``wait``, ``result`` and ``as_completed`` like any
        other. Nothing is sent; its input is the user's and is never deleted. Attaching an id already
        tracked for the same endpoint returns it.

        Args:
            endpoint_name: the endpoint it was sent to (an ``sma.RoutingTarget``: the router's routing target).
            inference_id: the InferenceId the invoke answered (or was given).
            output_location: the OutputLocation the invoke answered (``s3://.../ID.out``).
            failure_location: the FailureLocation it answered, if the endpoint has one.
            label: a label to find it by.

        Raises:
            ValidationError: a location that is not an S3 URI of an object, a bad name or id, or an id
                already tracked for another endpoint; nothing is journaled.
        """
        record = attach_invocation(self.ctx, endpoint_name, inference_id, output_location, failure_location, label)
        self.tracker.start()
        self.tracker.poke()
        return self.invocation(record.inference_id)

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
            ValidationError: ``name`` is not a valid endpoint name (a RoutingTarget: use :meth:`router_status`),
                or ``max_age`` is negative.
            AwsError: there is no such endpoint (``kind="not_found"``).
        """
        if isinstance(name, RoutingTarget):
            raise ValidationError(f"endpoint_status takes an endpoint name, not a routing target ({name}): "
                                  f"client.router_status({name.router!r}) shows the router, its targets and each "
                                  "destination endpoint's status.", parameter="EndpointName")
        check_member("EndpointName", name)
        _check_max_age(max_age)
        snapshot = self.monitor.status(name, max_age)
        if snapshot.exists is False:
            raise AwsError(snapshot.warnings[0], code="NotFound", kind="not_found")
        return snapshot

    def router_status(self, name: str, max_age: float = DEFAULT_MAX_AGE_S) -> RouterStatus:
        """What an inference router is doing (SPEC §20): its status, its routing targets, each destination's
        RoutingStatus and — for an endpoint readable with your credentials (this account and Region) — its
        :class:`EndpointStatus` (SPEC §10), and warnings (one actionable line each).

        Served from a cache younger than ``max_age`` seconds (0: fetch now). A fetch costs one
        DescribeInferenceRouter plus the endpoint monitor's (cached) fetches of the destination endpoints.

        Args:
            name: the inference router's name (or an ``sma.RoutingTarget``: its router).
            max_age: the oldest cached snapshot to accept, in seconds.

        Raises:
            ValidationError: ``name`` is not a valid router name, ``max_age`` is negative, or the installed botocore
                does not know inference routers.
            AwsError: there is no such router (``kind="not_found"``).
        """
        router = name.router if isinstance(name, RoutingTarget) else name
        check_member(ROUTER_MEMBER, router, INVOKE_ROUTER_ASYNC)
        _check_max_age(max_age)
        snapshot = self.routers.status(router, max_age)
        if snapshot.exists is False:
            raise AwsError(snapshot.warnings[0], code="ResourceNotFound", kind="not_found")
        return snapshot

    def panel(self) -> Panel:
        """The live ipywidgets panel of tracked invocations (starts background polling): one per
        client, so asking again shows the same panel; after ``panel.close()`` a new one."""
        from .notebook.panel.panel import Panel  # the one import up into the notebook layer

        current: Panel | None = getattr(self, "_panel", None)
        if current is None or current.closed:
            # The strip and the details read the endpoint monitor's cache (a fetch at most once a minute).
            current = self._panel = Panel(self._parts, row_logs=self.monitor.log_messages,
                                          endpoint_status=self.monitor.status, endpoint_history=self.monitor.history,
                                          router_status=self.routers.status)
        return current

    def forget(self, inference_ids: Iterable[str]) -> int:
        """Drop rows from the journal (their S3 objects stay); returns how many went.

        Raises:
            ValidationError: not an inference id or a list of them.
        """
        return self.ctx.journal.forget(ids_of(inference_ids))

    def prune(self, older_than_days: float = 30.0) -> int:
        """Forget finished invocations whose result was seen more than ``older_than_days`` ago.

        Raises:
            ValidationError: a negative age, or not a number (a bool, a string, NaN).
        """
        if isinstance(older_than_days, bool) or not isinstance(older_than_days, numbers.Real) \
                or not older_than_days >= 0:
            raise ValidationError(f"older_than_days must be a number of days >= 0, not {older_than_days!r}.",
                                  parameter="older_than_days")
        return self.ctx.journal.prune(finished_before=self.ctx.clock() - older_than_days * 86400)

    def records(self, *, include_other_origins: bool = False,
                statuses: Iterable[Status] | Status | str | None = None) -> list[InvocationRecord]:
        """The journal's rows of this client's AWS target (of every target with ``include_other_origins``), oldest
        submission first; only those in ``statuses`` when given (Status values or their names).

        Raises:
            ValidationError: ``statuses`` holds something that is not a status.
        """
        wanted = None if statuses is None else statuses_of(statuses)
        return self.ctx.records(statuses=wanted, include_other_origins=include_other_origins)

    def close(self) -> None:
        panel = getattr(self, "_panel", None)
        if panel is not None:  # its workers and subscription must not outlive the journal
            panel.close()
        self.jobs.close()
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
