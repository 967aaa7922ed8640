"""The ``%sm_async`` command line (its subcommands and options), and how a magic's line is split."""

from __future__ import annotations

import argparse

from IPython.core.magic_arguments import MagicArgumentParser
from IPython.utils.process import arg_split

from ..errors import ValidationError
from ..local.config import add_arguments


def parse_line(parser: MagicArgumentParser, line: str) -> argparse.Namespace:
    """Split like a POSIX shell, so quotes group words and are removed ('a b' -> a b)."""
    try:
        argv = arg_split(line, posix=True, strict=True)
    except ValueError as exc:  # e.g. an unclosed quote
        raise ValidationError(f"Cannot read the options ({exc}): check the quotes.") from None
    return parser.parse_args(argv)


def _sm_async_parser() -> MagicArgumentParser:
    parser = MagicArgumentParser(prog="%sm_async")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    sub.add_parser("panel", help="show the live panel of tracked invocations")
    sub.add_parser("client", help="return this kernel's AsyncInferenceClient (client = %sm_async client)")
    p = sub.add_parser("list", help="a DataFrame of tracked invocations")
    p.add_argument("--all", action="store_true", help="include rows from other regions or earlier local stacks")
    p = sub.add_parser("result", help="completed output(s) as a DataFrame")
    p.add_argument("key", metavar="ID_OR_LABEL")
    p.add_argument("-o", dest="output", metavar="VAR", help="store the DataFrame in VAR")
    p.add_argument("--skip-errors", action="store_true", help="leave out failed parts of a batch")
    p = sub.add_parser("wait", help="block until invocations finish (all pending ones by default)")
    p.add_argument("keys", nargs="*", metavar="ID_OR_LABEL")
    p.add_argument("--timeout", type=float, metavar="S")
    p = sub.add_parser("forget", help="drop invocations from the journal (S3 objects stay)")
    p.add_argument("key", nargs="?", metavar="ID_OR_LABEL")
    p.add_argument("--finished", action="store_true", help="forget every finished invocation")
    p.add_argument("--older-than", type=float, metavar="DAYS",
                   help="with --finished: only those finished more than DAYS ago")
    p = sub.add_parser("resubmit", help="send ERROR/FAILED/EXPIRED invocations again")
    p.add_argument("key", metavar="ID_OR_LABEL")
    for action, what in (("pause", "stop invoking a job's queued requests (what is on the endpoint runs on)"),
                         ("resume", "continue a paused job (also one paused by a kernel restart)"),
                         ("cancel", "a job's queued requests become ERROR 'cancelled, not sent'")):
        p = sub.add_parser(action, help=what)
        p.add_argument("key", metavar="LABEL_OR_BATCH")
    p = sub.add_parser("attach", help="follow an invocation submitted elsewhere (the AWS CLI, an SDK, a Lambda)")
    p.add_argument("endpoint", metavar="ENDPOINT")
    p.add_argument("inference_id", metavar="ID")
    p.add_argument("output_location", metavar="OUTPUT_LOCATION")
    p.add_argument("failure_location", nargs="?", metavar="FAILURE_LOCATION")
    p.add_argument("--label", metavar="L", help="a name to find it by")
    p = sub.add_parser("events", help="learn completions from the endpoint's SNS topics (creates an SQS queue)")
    p.add_argument("action", choices=["on", "off"])
    p.add_argument("endpoint", metavar="ENDPOINT")
    p.add_argument("--keep", action="store_true", help="with off: stop listening but keep the queue")
    p = sub.add_parser("endpoint", help="an endpoint's status, instances, backlog and warnings")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--max-age", type=float, metavar="S", help="accept a cached status this young (default 60; 0: now)")
    p = sub.add_parser("router", help="an inference router's status, routing targets and destinations, and warnings")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--max-age", type=float, metavar="S", help="accept a cached status this young (default 60; 0: now)")
    p = sub.add_parser("local", help="the embedded local stack: start | stop | status")
    p.add_argument("action", choices=["start", "stop", "status"])
    p.add_argument("--in-kernel", action="store_true",
                   help="a stack owned by this kernel (a child process of it, ending with it) instead of the "
                        "shared detached one")
    add_arguments(p)
    return parser


SM_ASYNC_PARSER = _sm_async_parser()
