"""The ``sm-async-nb`` command (also ``python -m sm_async_nb.cli``).

Subcommands are registered in :data:`COMMANDS` (name -> (configure parser, run)); adding one is
two small functions and a line there.

``sm-async-nb local start`` starts the per-user detached local stack (or reuses the running
one, adding the endpoint if new), prints the ``export`` lines any AWS client needs and returns;
``local status`` and ``local stop`` inspect and end it. ``sm-async-nb local`` (or ``local run``)
runs a stack in the foreground instead and stops it on Ctrl-C / SIGTERM.
"""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .distribution import version
from .local.config import add_arguments, from_arguments


def _configure_local(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", nargs="?", choices=["run", "start", "stop", "status"], default="run",
                        help="run: in the foreground (default); start: detached, outliving this shell and "
                             "kernel restarts; stop / status: of the detached stack")
    add_arguments(parser)


def _wait_for_signal() -> None:
    """Block until SIGINT or SIGTERM (restoring the previous handlers afterwards)."""
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        while not stop.wait(0.5):
            pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _print_exports(env: dict[str, str], bucket: str, endpoint: str) -> None:
    for name, value in env.items():
        print(f"export {name}={shlex.quote(value)}")
    print(f"# then e.g.: aws s3 cp data.csv s3://{bucket}/inputs/data.csv && "
          f"aws sagemaker-runtime invoke-endpoint-async --endpoint-name {endpoint} "
          f"--input-location s3://{bucket}/inputs/data.csv --content-type text/csv")


def _run_local(args: argparse.Namespace) -> int:
    if args.action in ("stop", "status"):
        return _detached_stop_or_status(args.action)
    from .local.stack import LocalStack

    config = from_arguments(args)
    if args.action == "start":
        stack = LocalStack.from_config(config, where="detached").start()
        verb = "started" if stack.started else "already running; reusing"
        print(f"# sm_async_nb local stack {verb} (pid {stack.pid}, endpoint {stack.endpoint_name!r}). "
              "Run these lines in your shell (dummy credentials), or: eval \"$(sm-async-nb local start)\"")
        _print_exports(stack.env, stack.input_bucket, stack.endpoint_name)
        if stack.differs:
            print(f"# note: the running stack keeps its own {', '.join(stack.differs)}; "
                  "use another --endpoint, or `sm-async-nb local stop` first")
        return 0
    # In the foreground the engine runs in this process, which hosts nothing else.
    stack = LocalStack.from_config(config, where="this-process").start()
    try:
        print("# sm_async_nb local stack is running. In another shell, run these lines (dummy credentials):")
        _print_exports(stack.env, stack.input_bucket, stack.endpoint_name)
        print(f"# endpoint {stack.endpoint_name!r} is ready; press Ctrl-C to stop.", flush=True)
        _wait_for_signal()
    finally:
        stack.stop()
    print("# local stack stopped.", flush=True)
    return 0


def _detached_stop_or_status(action: str) -> int:
    from .local.detached import handle as detached

    if action == "stop":
        print("# local stack stopped." if detached.stop() else "# no local stack is running.")
        return 0
    found = detached.find()
    if found.stack is None or found.record is None:
        print("# no local stack is running" + (f" (stale state file: {found.stale})" if found.stale else "") + ".")
        return 1
    status = found.stack.status()
    print(f"# local stack running: pid {status['pid']}, endpoints {', '.join(status['endpoints'])}, "
          f"idle {status['idle_s']:.0f} s of {found.record.idle_timeout:g} s")
    _print_exports(found.stack.env, found.stack.input_bucket, found.stack.endpoint_name)
    return 0


def _configure_quickstart(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--delay", type=float, default=0.5, help="seconds each model invocation takes")


def _run_quickstart(args: argparse.Namespace) -> int:
    from .quickstart import main as quickstart

    return quickstart(delay=args.delay)


def _configure_examples(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("directory", metavar="DIR", help="a new or empty folder")
    parser.add_argument("--force", action="store_true",
                        help="write into a folder that is not empty, replacing files of the same names")


def _run_examples(args: argparse.Namespace) -> int:
    from .examples import write_examples

    written = write_examples(args.directory, force=args.force)
    folder = Path(args.directory).expanduser().resolve()
    notebooks = sorted(p.name for p in written if p.suffix == ".ipynb")
    print(f"# wrote {len(notebooks)} notebooks and {len(written) - len(notebooks)} models into {folder}: "
          + ", ".join(notebooks))
    print(f"# run them there (they start the local stack; pip install jupyterlab if you have no Jupyter): "
          f"cd {shlex.quote(str(folder))} && jupyter lab quickstart.ipynb")
    return 0


COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]] = {
    "local": ("the embedded local stack (no AWS account needed): run | start | stop | status",
              _configure_local, _run_local),
    "quickstart": ("submit, track and load results end to end on the local stack",
                   _configure_quickstart, _run_quickstart),
    "examples": ("write the example notebooks and the models they use into a folder",
                 _configure_examples, _run_examples),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sm-async-nb",
                                     description="SageMaker asynchronous inference from notebooks and shells.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, (help_text, configure, run) in COMMANDS.items():
        command = sub.add_parser(name, help=help_text, description=help_text)
        configure(command)
        command.set_defaults(run=run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args: Any = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (ValueError, ImportError, OSError, RuntimeError) as exc:
        print(f"sm-async-nb {args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
