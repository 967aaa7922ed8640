"""%%invoke_async, %invoke_async and %sm_async: parse, call the session, print short answers."""

from __future__ import annotations

import argparse
import keyword
from typing import Any

from IPython.core.magic import Magics, line_cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments

from ..config import SageMakerAsync
from ..contract.routing import RoutingTarget
from ..contract.serving import JSON_FORMATS
from ..errors import SubmissionError, SubmissionInterrupted, ValidationError
from ..handles import Invocation, InvocationBatch
from ..local.config import from_arguments
from ..records import FINISHED, UNFINISHED, Status
from . import live
from .commands import SM_ASYNC_PARSER, parse_line
from .completion import make_matcher, quote
from .progress import WaitProgress, register_upload_progress
from .session import NotebookSession

_COMPACT = ["inference_id", "label", "endpoint_name", "status", "submitted_at", "latency_s", "output_size",
            "failure_reason", "error"]


def _lookup(namespace: dict[str, Any], name: str) -> Any:
    """A notebook variable by name, or a dotted attribute path; never evaluated."""
    head, *attrs = name.split(".")
    if not head.isidentifier() or head not in namespace:
        raise ValidationError(f"No variable named {head!r} in this notebook: define it first, or use "
                              "the %%invoke_async cell form to send literal data.")
    value = namespace[head]
    for attr in attrs:
        if not attr.isidentifier():
            raise ValidationError(f"{name!r} is not a variable name or a dotted path of attributes.")
        try:
            value = getattr(value, attr)
        except AttributeError:
            raise ValidationError(f"{name!r}: {type(value).__name__} has no attribute {attr!r}.") from None
        except Exception as exc:  # a property that raises: say so, in one line
            raise ValidationError(f"{name!r}: reading .{attr} of the {type(value).__name__} raised "
                                  f"{type(exc).__name__}: {exc}") from None
    return value


def _check_one_source(args: argparse.Namespace, cell: str | None) -> None:
    """Exactly one thing to send: the cell body, a variable, or --s3 objects."""
    given = [what for what, present in (("the cell body", cell is not None), (f"variable {args.variable!r}",
                                        args.variable is not None), ("--s3", args.s3 is not None),
                                       ("--dataset", args.dataset is not None)) if present]
    if not given:
        raise ValidationError("Name what to send: %invoke_async ENDPOINT VAR, %invoke_async ENDPOINT --s3 "
                              "s3://bucket/prefix/, or the cell form %%invoke_async ENDPOINT with the data in "
                              "the cell.")
    if len(given) > 1:
        raise ValidationError(f"Send one thing at a time: {' and '.join(given)} were both given.")
    if args.pattern is not None and args.s3 is None:
        raise ValidationError("--pattern goes with an --s3 prefix.")
    if args.dataset is not None and (args.inline or args.filename):
        raise ValidationError("--dataset sends row slices through S3: --inline and --filename do not apply.")
    if args.s3 is not None and (args.inline or args.filename or args.rows_per_request):
        raise ValidationError("--s3 sends the objects as they are: --inline, --filename and --rows-per-request "
                              "do not apply.")


def _check_variable_name(name: str | None) -> None:
    """``-o VAR`` names a notebook variable: checked before anything is sent."""
    if name is not None and (not name.isidentifier() or keyword.iskeyword(name)):
        raise ValidationError(f"-o {name!r} is not a valid Python variable name: use one such as df or job.")


def _max_pending(text: str | None) -> int | float | str | None:
    """``--max-pending N|auto``: a number stays a number (options.parse checks it), anything else is passed on."""
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)  # refused there as not a whole number, with its own message
        except ValueError:
            return text


def _key(label: str | None, ident: str) -> str:
    """How a hint names a submission: its label, quoted so it can be pasted back, else its id."""
    return (quote(label) if label else None) or ident


@magics_class
class SageMakerAsyncMagics(Magics):
    def __init__(self, shell: Any, settings: SageMakerAsync):
        super().__init__(shell)
        self.session = NotebookSession(settings)
        self.completer: Any = None  # the tab-completion matcher load() registers

    @property
    def _user_ns(self) -> dict[str, Any]:
        """The notebook's variables (a registered magic always has a shell)."""
        assert self.shell is not None
        namespace: dict[str, Any] = self.shell.user_ns
        return namespace

    def _push(self, name: str, value: Any) -> None:
        """Bind a notebook variable the way IPython does (``shell.push``: namespace and who's)."""
        assert self.shell is not None
        self.shell.push({name: value})

    # --- %%invoke_async / %invoke_async ------------------------------------------------------

    @magic_arguments()
    @argument("endpoint", help="name of the async endpoint (of the inference router, with --routing-target)")
    @argument("--routing-target", metavar="T", help="send through inference router ENDPOINT's routing target T "
              "(InvokeInferenceRouterAsync; inputs go through S3)")
    @argument("variable", nargs="?", help="line form: the variable to send (DataFrame, dict, array, path...)")
    @argument("-o", dest="output", metavar="VAR",
              help="store the handle in VAR (with --wait: the result DataFrame)")
    @argument("--content-type", metavar="T", help="ContentType (inferred when omitted)")
    @argument("--accept", metavar="T", help="Accept: the output type to ask the model for")
    @argument("--custom-attributes", metavar="S", help="CustomAttributes, forwarded verbatim to the model")
    @argument("--inference-id", metavar="ID", help="InferenceId (also names the input object); a prefix for batches")
    @argument("--ttl", type=int, metavar="SECONDS", help="RequestTTLSeconds, 60..21600")
    @argument("--timeout", type=int, metavar="SECONDS", help="InvocationTimeoutSeconds, 1..3600")
    @argument("--output-path-extension", metavar="P", help="S3OutputPathExtension")
    @argument("--filename", metavar="F", help="Filename of the output object")
    @argument("--label", metavar="L", help="a name to find this submission by")
    @argument("--rows-per-request", type=int, metavar="N", help="split a DataFrame into requests of N rows")
    @argument("--s3", metavar="URI", help="send objects already in S3: s3://bucket/key, or a prefix ending in /")
    @argument("--dataset", metavar="PATH_OR_URI", help="stream a Parquet/CSV file, folder, glob or s3:// URI "
              "in requests of --rows-per-request rows (default 1000)")
    @argument("--pattern", metavar="GLOB", help="with an --s3 prefix: only keys matching GLOB (e.g. '*.wav')")
    @argument("--json-format", metavar="F", help="how a DataFrame sent as application/json is laid out: "
              + ", ".join(JSON_FORMATS) + " (default: the json_format setting)")
    @argument("--inline", action="store_true", help="send the payload in the request body (<= 128,000 bytes)")
    @argument("--max-pending", metavar="N|auto", help="a batch as a job: at most N requests unfinished on the "
              "endpoint at once, the rest QUEUED ('auto': sized from the endpoint)")
    @argument("--background", action="store_true", help="a batch as a job: return at once; read, upload and "
              "invoke in the background")
    @argument("--retries", type=int, metavar="N", help="a batch as a job: send EXPIRED (and service-failed) "
              "parts again up to N times")
    @argument("--wait", action="store_true", help="wait for the result and show it")
    @line_cell_magic
    def invoke_async(self, line: str, cell: str | None = None) -> Any:
        """Send data to a SageMaker async endpoint (or through an inference router: ROUTER --routing-target T).

        Cell form: the cell body is the payload, sent byte-for-byte as UTF-8 and never evaluated.
        Line form: `%invoke_async ENDPOINT VAR` sends a notebook variable and returns the handle,
        e.g. `job = %invoke_async my-endpoint df --rows-per-request 500`.
        Without --wait it returns at once and tracks in the background (%sm_async panel).
        """
        args = parse_line(self.invoke_async.parser, line)
        _check_variable_name(args.output)
        _check_one_source(args, cell)
        payload = cell if cell is not None else (_lookup(self._user_ns, args.variable) if args.variable else None)
        options = {"content_type": args.content_type, "accept": args.accept,
                   "custom_attributes": args.custom_attributes, "request_ttl_seconds": args.ttl,
                   "invocation_timeout_seconds": args.timeout,
                   "s3_output_path_extension": args.output_path_extension, "label": args.label,
                   "inline": args.inline, "json_format": args.json_format}
        job = {"max_pending": _max_pending(args.max_pending), "background": args.background or None,
               "retries": args.retries}
        try:
            handle = self._submit(args, payload, options, {k: v for k, v in job.items() if v is not None})
        except SubmissionInterrupted as exc:
            self.session.after_submit()  # what was sent is tracked
            if args.output:
                bound = exc.batch or (self.session.client.invocation(exc.inference_id) if exc.inference_id else None)
                if bound is not None:
                    self._push(args.output, bound)
            raise
        first = self.session.after_submit()
        if args.output:
            self._push(args.output, handle)
        if args.wait:
            return self._wait_and_load(handle, args.output)
        self._describe(handle)
        if first and self.session.settings.auto_panel:
            self._show_panel()
        return handle if cell is None else None

    def _submit(self, args: argparse.Namespace, payload: Any, options: dict[str, Any],
                job: dict[str, Any]) -> Invocation | InvocationBatch:
        client = self.session.client
        destination = args.endpoint if args.routing_target is None else RoutingTarget(args.endpoint,
                                                                                        args.routing_target)
        try:
            if args.dataset is not None:
                options.pop("inline")
                return client.submit_dataset(destination, args.dataset, args.rows_per_request,
                                             inference_id=args.inference_id,
                                             **{k: v for k, v in options.items() if v is not None}, **job)
            if args.s3 is not None:
                options.pop("inline")
                return client.submit_s3(destination, args.s3, pattern=args.pattern, inference_id=args.inference_id,
                                        **options, **job)
            if args.rows_per_request is not None:
                return client.submit_dataframe(destination, payload, args.rows_per_request,
                                               inference_id=args.inference_id,
                                               filename=[args.filename] if args.filename else None, **options, **job)
            if job:
                raise ValidationError("--max-pending, --background and --retries apply to batches: a DataFrame with "
                                      "--rows-per-request, --s3 or --dataset.")
            return client.submit(destination, payload, inference_id=args.inference_id,
                                 filename=args.filename, **options)
        except SubmissionError as exc:
            if args.output and not isinstance(exc, SubmissionInterrupted):
                bound = exc.batch or (client.invocation(exc.inference_id) if exc.inference_id else None)
                if bound is not None:
                    self._push(args.output, bound)
            raise

    def _describe(self, handle: Invocation | InvocationBatch) -> None:
        if isinstance(handle, InvocationBatch) and handle.job_state is not None:
            key = _key(handle.label, handle.batch_id)
            batch = handle.record
            counts = ", ".join(f"{n} {s.lower()}" for s, n in handle.status_counts().items()) or "reading"
            window = f"max_pending={batch.max_pending}" if batch.max_pending else "no window"
            print(f"Job {handle.batch_id} on {handle.endpoint_name!r} ({window}, retries={batch.retries}): {counts}. "
                  f"%sm_async pause|resume|cancel {key}")
        elif isinstance(handle, InvocationBatch):
            parts = handle.parts()
            sent = [p for p in parts if p.status is not Status.ERROR]
            where = sent[0].input_location.rsplit("/", 1)[0] + "/" if sent and sent[0].input_location else "inline"
            print(f"Submitted {len(sent)} of {len(parts)} requests to {handle.endpoint_name!r} as "
                  f"{handle.batch_id} (inputs: {where}).")
            failed = [p for p in parts if p.status is Status.ERROR]
            if failed:
                print(f"{len(failed)} could not be submitted: {failed[0].error}")
            key = _key(handle.label, handle.batch_id)
        else:
            assert isinstance(handle, Invocation)
            where = handle.input_location or "inline"
            print(f"Submitted {handle.inference_id} to {handle.endpoint_name!r} (input: {where}).")
            key = _key(handle.label, handle.inference_id)
        print(f"Tracking in the background: %sm_async panel | %sm_async wait {key} | "
              f"%sm_async result {key} -o df")

    def _wait_and_load(self, handle: Invocation | InvocationBatch, output: str | None) -> Any:
        ids = handle.inference_ids if isinstance(handle, InvocationBatch) else [handle.inference_id]
        try:
            self.session.client.tracker.wait_for(ids, progress=WaitProgress(f"{len(ids)} request(s)"))
        except KeyboardInterrupt:
            print(f"Stopped waiting; the invocation(s) keep running: %sm_async wait {_key(handle.label, ids[0])}")
            return None
        frame = handle.result()
        if output:
            self._push(output, frame)
            return None
        return frame

    # --- %sm_async ---------------------------------------------------------------------------

    @line_magic
    def sm_async(self, line: str) -> Any:
        args = parse_line(SM_ASYNC_PARSER, line)
        return getattr(self, f"_cmd_{args.command}")(args)

    sm_async.__doc__ = ("Follow up async invocations, and run the embedded local stack.\n\n"
                        + SM_ASYNC_PARSER.format_help()
                        + "\nSubcommand help: %sm_async COMMAND -h is not available; see the list above.")

    def _cmd_client(self, args: argparse.Namespace) -> Any:
        return self.session.client

    def _cmd_panel(self, args: argparse.Namespace) -> Any:
        return self._show_panel()

    def _show_panel(self) -> None:
        """Show this kernel's one panel (again): another view of the same widgets, not a copy."""
        from IPython.display import display

        display(self.session.panel())

    def _cmd_list(self, args: argparse.Namespace) -> Any:
        frame = self.session.client.tracker.to_frame(include_other_origins=args.all)
        return frame[_COMPACT]

    def _cmd_result(self, args: argparse.Namespace) -> Any:
        _check_variable_name(args.output)
        handle = self.session.resolve(args.key)
        if args.skip_errors and isinstance(handle, InvocationBatch):
            frame = handle.result(errors="skip")
        else:
            frame = handle.result()
        if args.output:
            self._push(args.output, frame)
            print(f"{args.output}: DataFrame with {len(frame)} rows x {len(frame.columns)} columns")
            return None
        return frame

    def _cmd_wait(self, args: argparse.Namespace) -> Any:
        client = self.session.client
        if args.keys:
            ids = self.session.ids_for(args.keys)
        else:
            ids = [r.inference_id for r in client.records(statuses=UNFINISHED)]
        if not ids:
            print("Nothing pending.")
            return None
        try:
            client.tracker.wait_for(ids, args.timeout, progress=WaitProgress(f"{len(ids)} request(s)"))
        except TimeoutError as exc:
            print(str(exc))
        except KeyboardInterrupt:
            print("Stopped waiting; the invocations keep running.")
        rows = client.journal.get_many(ids).values()
        counts: dict[str, int] = {}
        for row in rows:
            counts[row.status.value] = counts.get(row.status.value, 0) + 1
        print(", ".join(f"{n} {s.lower()}" for s, n in sorted(counts.items())))
        return None

    def _cmd_forget(self, args: argparse.Namespace) -> Any:
        client = self.session.client
        if args.finished == bool(args.key):
            raise ValidationError("Give either ID_OR_LABEL or --finished.")
        if args.finished and args.older_than is not None:
            forgotten = client.prune(args.older_than)
        elif args.finished:
            forgotten = client.forget([r.inference_id for r in client.records(statuses=FINISHED)])
        else:
            forgotten = client.forget(self.session.ids_for([args.key]))
        print(f"Forgot {forgotten} invocation(s); their S3 objects are untouched.")

    def _cmd_resubmit(self, args: argparse.Namespace) -> Any:
        handle = self.session.resolve(args.key)
        again = handle.resubmit() if isinstance(handle, InvocationBatch) else [handle.resubmit()]
        self.session.after_submit()
        print(f"Resubmitted {len(again)} invocation(s): " + ", ".join(i.inference_id for i in again[:5])
              + (" …" if len(again) > 5 else ""))

    def _job(self, key: str) -> InvocationBatch:
        handle = self.session.resolve(key)
        if not isinstance(handle, InvocationBatch):
            raise ValidationError(f"{key!r} names one invocation, not a batch: pause, resume and cancel act on jobs "
                                  "(batches sent with --max-pending, --background or --retries).")
        return handle

    def _cmd_pause(self, args: argparse.Namespace) -> Any:
        batch = self._job(args.key)
        paused = batch.pause()
        queued = batch.status_counts().get("QUEUED", 0)
        print(f"Paused {batch.label or batch.batch_id}: {queued} queued request(s) wait; what is on the endpoint runs "
              f"on. %sm_async resume {_key(batch.label, batch.batch_id)} continues." if paused else
              f"{batch.label or batch.batch_id} is not running ({(batch.job_state or 'sent at once')}).")

    def _cmd_resume(self, args: argparse.Namespace) -> Any:
        batch = self._job(args.key)
        resumed = batch.resume()
        self.session.after_submit()
        print(f"Resumed {batch.label or batch.batch_id}: {batch.status_counts().get('QUEUED', 0)} queued request(s) "
              "are sent as the window allows." if resumed else
              f"{batch.label or batch.batch_id} has nothing to resume ({batch.job_state or 'sent at once'}).")

    def _cmd_cancel(self, args: argparse.Namespace) -> Any:
        batch = self._job(args.key)
        cancelled = batch.cancel()
        print(f"Cancelled {cancelled} queued request(s) of {batch.label or batch.batch_id} (not sent; the inputs this "
              "client uploaded for them were removed). What is on the endpoint runs on.")

    def _cmd_attach(self, args: argparse.Namespace) -> Any:
        inv = self.session.client.attach(args.endpoint, args.inference_id, args.output_location,
                                         args.failure_location, label=args.label)
        self.session.after_submit()
        key = _key(inv.label, inv.inference_id)
        print(f"Attached {inv.inference_id} on {inv.endpoint_name!r} ({inv.status.value}): tracked like any other "
              f"(%sm_async wait {key} | %sm_async result {key} -o df). Its input is never touched.")
        return None

    def _cmd_events(self, args: argparse.Namespace) -> Any:
        tracker = self.session.client.tracker
        if args.action == "on":
            made = tracker.enable_events(args.endpoint)
            tracker.start()
            print(f"Listening to {len(made.topics)} SNS topic(s) of {args.endpoint!r} through {made.queue_url}; "
                  f"'%sm_async events off {args.endpoint}' removes the queue and subscriptions.")
            return None
        removed = tracker.disable_events(args.endpoint, remove=not args.keep)
        print("Stopped listening" + (f"; removed {removed.queue_url} and its subscriptions." if removed else "."))
        return None

    def _cmd_endpoint(self, args: argparse.Namespace) -> Any:
        options = {} if args.max_age is None else {"max_age": args.max_age}
        print("\n".join(self.session.client.endpoint_status(args.name, **options).lines()))
        return None

    def _cmd_router(self, args: argparse.Namespace) -> Any:
        options = {} if args.max_age is None else {"max_age": args.max_age}
        print("\n".join(self.session.client.router_status(args.name, **options).lines()))
        return None

    def _cmd_local(self, args: argparse.Namespace) -> Any:
        if args.action == "start":
            try:
                config = from_arguments(args)
            except ValueError as exc:
                raise ValidationError(f"%sm_async local start: {exc}") from None
            stack = self.session.start_local(config, in_kernel=args.in_kernel)
            how = f"detached, pid {stack.pid}; it outlives kernel restarts" + ("" if stack.started else ", reattached")
            if not stack.outlives_owner:
                how = f"owned by this kernel, pid {stack.pid}; it ends with the kernel"
            print(f"Local stack running ({how}): endpoint {stack.endpoint_name!r}, inputs under "
                  f"{self.session.client.input_prefix()}. This kernel's client now uses it "
                  "(%sm_async local stop stops it and restores the previous one).")
            if stack.differs:
                print(f"Note: the running stack keeps its own {', '.join(stack.differs)} for {stack.endpoint_name!r}; "
                      "use another --endpoint, or %sm_async local stop and start again.")
            return None
        if args.action == "stop":
            print("Local stack stopped." if self.session.stop_local() else "No local stack is running.")
            return None
        print(self.session.local_status())
        return None


def load(shell: Any) -> None:
    """Register the magics and the SageMakerAsync settings once per shell."""
    if "SageMakerAsyncMagics" in shell.magics_manager.registry:
        return
    settings = SageMakerAsync(parent=shell)
    shell.configurables.append(settings)
    register_upload_progress()
    magics = SageMakerAsyncMagics(shell, settings)
    shell.register_magics(magics)
    magics.completer = make_matcher(magics.session.journal_for_completion)
    if getattr(shell, "Completer", None) is not None:
        shell.Completer.custom_matchers.append(magics.completer)
    live.register(shell)


def unload(shell: Any) -> None:
    magics = shell.magics_manager.registry.pop("SageMakerAsyncMagics", None)
    if magics is None:
        return
    magics.session.close()
    completer = getattr(shell, "Completer", None)
    if completer is not None and magics.completer in completer.custom_matchers:
        completer.custom_matchers.remove(magics.completer)
    live.unregister(shell)
    for kind in ("line", "cell"):
        for name in ("invoke_async", "sm_async"):
            shell.magics_manager.magics[kind].pop(name, None)
    shell.configurables[:] = [c for c in shell.configurables if c is not magics.session.settings]
