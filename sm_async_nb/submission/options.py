"""The options of every ``submit_*`` method: one typed, frozen object, its defaults defined once,
checked once and before any I/O (no S3 request, no journal write, no file read).

An option that does not exist is one line naming it, with the closest option as a hint; an option
that exists but does not apply to the method (``inline`` for ``submit_s3``) says why, unless it is
given its default (callers that forward every option, like the magics, may pass ``None``). Integer
options accept Python and numpy integers, never bools (``True`` seconds is a mistake, not 1).
"""

from __future__ import annotations

import dataclasses
import difflib
import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from ..contract import validation
from ..errors import ValidationError
from ..payloads import CSV
from ..payloads.encoding import check_json_format

Method = Literal["submit", "submit_many", "submit_dataframe", "submit_s3", "submit_dataset"]

# Defaults the SPEC fixes (§3, §12), defined here once; the methods' signatures use these names.
ROWS_PER_REQUEST_DATAFRAME = 100
ROWS_PER_REQUEST_DATASET = 1000
TABLE_CONTENT_TYPE = CSV  # how DataFrame and dataset slices are sent unless told otherwise
MAX_ROWS_PER_REQUEST = 10_000_000  # far beyond any 1 GB request, and within pyarrow's chunk sizes
AUTO = "auto"            # max_pending="auto": the window sized from the endpoint (submission/flow.py)
MAX_PENDING_LIMIT = 1_000_000
MAX_RETRIES = 10         # retries=N resends an expired part up to N times; more is a loop, not a retry

# The InvokeEndpointAsync members every method takes, as Python keyword -> API member.
REQUEST_MEMBERS: dict[str, str] = {
    "content_type": "ContentType",
    "accept": "Accept",
    "custom_attributes": "CustomAttributes",
    "request_ttl_seconds": "RequestTTLSeconds",
    "invocation_timeout_seconds": "InvocationTimeoutSeconds",
    "s3_output_path_extension": "S3OutputPathExtension",
}


@dataclass(frozen=True)
class SubmitOptions:
    """What a submission asks for, checked. ``None`` means not given (the service's default)."""

    content_type: str | None = None
    accept: str | None = None
    custom_attributes: str | None = None
    request_ttl_seconds: int | None = None
    invocation_timeout_seconds: int | None = None
    s3_output_path_extension: str | None = None
    label: str | None = None
    inline: bool = False
    json_format: str | None = None                # DataFrames sent as JSON; None: the json_format setting
    rows_per_request: int | None = None           # submit_dataframe, submit_dataset
    columns: tuple[str, ...] | None = None        # submit_dataset
    pattern: str | None = None                    # submit_s3 with a prefix
    max_pending: int | Literal["auto"] | None = None  # at most this many unfinished on the endpoint at once
    background: bool = False                      # return at once; read, upload and invoke in the background
    retries: int = 0                              # EXPIRED / service-failed parts sent again up to this often

    @property
    def is_job(self) -> bool:
        """Sent as a job (SPEC §16): held QUEUED once uploaded and invoked by the client's job thread."""
        return self.max_pending is not None or self.background or self.retries > 0

    def api_params(self) -> dict[str, Any]:
        """The botocore keyword arguments of the request members given (values as sent)."""
        return {member: getattr(self, name) for name, member in REQUEST_MEMBERS.items()
                if getattr(self, name) is not None}

    def request_fields(self) -> dict[str, Any]:
        """The request members given, by Python keyword (what the journal keeps of a request)."""
        return {name: getattr(self, name) for name in REQUEST_MEMBERS if getattr(self, name) is not None}


_COMMON = frozenset({*REQUEST_MEMBERS, "label"})
_JOBS = frozenset({"max_pending", "background", "retries"})
APPLIES: dict[Method, frozenset[str]] = {
    "submit": _COMMON | {"inline", "json_format"},
    "submit_many": _COMMON | _JOBS | {"inline", "json_format"},
    "submit_dataframe": _COMMON | _JOBS | {"inline", "json_format", "rows_per_request"},
    "submit_s3": _COMMON | _JOBS | {"pattern"},
    "submit_dataset": _COMMON | _JOBS | {"json_format", "rows_per_request", "columns"},
}
ROWS_PER_REQUEST: dict[Method, int] = {"submit_dataframe": ROWS_PER_REQUEST_DATAFRAME,
                                       "submit_dataset": ROWS_PER_REQUEST_DATASET}
# A keyword some methods take in their signature (one per request, owned by the plan).
_IDENTITY = ("filename",)
_WHY_NOT = {
    "inline": {"submit_s3": "it sends objects already in S3", "submit_dataset": "it sends its slices through S3"},
    "rows_per_request": "it applies to submit_dataframe and submit_dataset",
    "columns": "it applies to submit_dataset (choose a DataFrame's columns with df[[...]])",
    "pattern": "it applies to submit_s3 with a prefix",
    "json_format": "it sends objects already in S3 as they are",
    "filename": "each output is named by its inference id",
    "max_pending": "it applies to the batch methods (submit_many, submit_dataframe, submit_s3, submit_dataset)",
    "background": "it applies to the batch methods (submit_many, submit_dataframe, submit_s3, submit_dataset)",
    "retries": "it applies to the batch methods (submit_many, submit_dataframe, submit_s3, submit_dataset)",
}
_DEFAULTS = {f.name: f.default for f in dataclasses.fields(SubmitOptions)}


def _not_applicable(method: Method, name: str) -> ValidationError:
    why = _WHY_NOT[name]
    reason = why.get(method, "") if isinstance(why, dict) else why
    return ValidationError(f"{name} does not apply to {method}" + (f": {reason}." if reason else "."),
                           parameter=name)


def _integer(name: str, value: Any, low: int, high: int) -> int:
    if not isinstance(value, bool) and type(value).__name__ != "bool_":
        try:
            number = operator.index(value)
        except TypeError:
            number = None
        if number is not None and low <= number <= high:
            return number
    raise ValidationError(f"{name} must be an integer from {low} to {high:,}, not {value!r}.", parameter=name)


def _columns(value: Any) -> tuple[str, ...]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise ValidationError(f"columns must be a list of column names, not {value!r}.", parameter="columns")
    wanted = tuple(value)
    if not wanted or not all(isinstance(c, str) for c in wanted) or len(set(wanted)) != len(wanted):
        raise ValidationError(f"columns must be a non-empty list of distinct column names, not {list(wanted)!r}.",
                              parameter="columns")
    return wanted


def _max_pending(value: Any) -> int | Literal["auto"]:
    if isinstance(value, str):
        if value.strip().lower() == AUTO:
            return "auto"
        raise ValidationError(f"max_pending must be a positive integer, \"auto\" or None, not {value!r}.",
                              parameter="max_pending")
    if isinstance(value, float) or type(value).__name__.startswith("float"):
        raise ValidationError(f"max_pending must be a whole number of requests (or \"auto\"), not {value!r}.",
                              parameter="max_pending")
    return _integer("max_pending", value, 1, MAX_PENDING_LIMIT)


def _flag(name: str, value: Any) -> bool:
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        return bool(value)
    raise ValidationError(f"{name} must be True or False, not {value!r}.", parameter=name)


def check_label(value: Any) -> str:
    """A label as it is stored (submissions and ``attach``).

    Raises:
        ValidationError: not a str, or a lone surrogate in it (it could not be stored).
    """
    if not isinstance(value, str):
        raise ValidationError(f"label must be a string, not {type(value).__name__}.", parameter="label")
    if not value.isprintable() and any(0xD800 <= ord(c) <= 0xDFFF for c in value):
        raise ValidationError(f"label {value!r} has a lone surrogate, which is not valid Unicode and cannot be "
                              "stored: fix the text.", parameter="label")
    return value


def _check(name: str, value: Any) -> Any:
    """One option's value as it is used, or ValidationError naming it."""
    if name == "max_pending":
        return _max_pending(value)
    if name == "retries":
        return _integer(name, value, 0, MAX_RETRIES)
    if name == "background":
        return _flag(name, value)
    if name in REQUEST_MEMBERS:
        return validation.check_member(REQUEST_MEMBERS[name], value)
    if name == "label":
        return check_label(value)
    if name == "inline":
        return _flag(name, value)
    if name == "rows_per_request":
        return _integer(name, value, 1, MAX_ROWS_PER_REQUEST)
    if name == "columns":
        return _columns(value)
    if name == "json_format":
        return check_json_format(value)
    if not isinstance(value, str) or not value:  # pattern
        raise ValidationError(f"pattern must be a glob such as '*.wav', not {value!r}.", parameter="pattern")
    return value


def parse(method: Method, given: Mapping[str, Any]) -> SubmitOptions:
    """The options of one ``method`` call, checked; pure (no I/O).

    Args:
        method: which submit method they were given to (decides which options apply).
        given: keyword -> value; ``None`` means not given.

    Raises:
        ValidationError: an unknown option (with the closest one as a hint), an option that does not
            apply to ``method``, or a value that breaks its rule (naming the parameter).
    """
    allowed = APPLIES[method]
    for name, value in given.items():
        if name in allowed:
            continue
        if name in _DEFAULTS or name in _IDENTITY:
            if value is None or value is _DEFAULTS.get(name):  # given its default: nothing asked
                continue
            raise _not_applicable(method, name)
        close = difflib.get_close_matches(name, sorted(allowed), n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise ValidationError(f"Unknown option {name!r}{hint}; {method} takes: {', '.join(sorted(allowed))}.",
                              parameter=name)
    values = {name: _check(name, value) for name, value in given.items() if name in allowed and value is not None}
    if "json_format" in values and values.get("content_type") is not None:  # an inferred one: checked by encode
        check_json_format(values["json_format"], values["content_type"])
    if method in ROWS_PER_REQUEST:
        values.setdefault("rows_per_request", ROWS_PER_REQUEST[method])
    options = SubmitOptions(**values)
    if options.inline and options.is_job:
        raise ValidationError("inline does not combine with max_pending, background or retries: a request held "
                              "back (or sent again) needs its input in S3; leave inline out.", parameter="inline")
    return options
