"""InvokeEndpointAsync parameter rules, read from botocore's service model.

The limits (lengths, ranges, patterns) come from the installed botocore so they follow AWS's
own model; only the human wording of each rule and the HTTP-header hygiene (no control
characters in header values) are ours. Everything is checked before anything is uploaded.
"""

from __future__ import annotations

import functools
import operator
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import ValidationError

OPERATION = "InvokeEndpointAsync"
INLINE_BODY_FALLBACK_LIMIT = 128_000

# Python keyword -> API member. The order is the order errors are reported in.
PARAMETER_NAMES: dict[str, str] = {
    "endpoint_name": "EndpointName",
    "input_location": "InputLocation",
    "content_type": "ContentType",
    "accept": "Accept",
    "custom_attributes": "CustomAttributes",
    "inference_id": "InferenceId",
    "request_ttl_seconds": "RequestTTLSeconds",
    "invocation_timeout_seconds": "InvocationTimeoutSeconds",
    "s3_output_path_extension": "S3OutputPathExtension",
    "filename": "Filename",
}

# What each pattern means, in words a user can act on.
_PATTERN_WORDS = {
    "EndpointName": "letters, digits and single or repeated hyphens between them, "
                    "starting and ending with a letter or digit",
    "InputLocation": "an s3:// or https:// URL with a bucket",
    "ContentType": "ASCII characters",
    "Accept": "ASCII characters",
    "CustomAttributes": "visible US-ASCII characters",
    "InferenceId": "printable ASCII characters, not starting with whitespace",
    "S3OutputPathExtension": "letters, digits and !_.*'()/- characters, not starting with s3: or https:",
    "Filename": "letters, digits, '-', '_' and at most one '.', starting with a letter or digit",
}

# Values travel in HTTP headers: only ASCII without control characters survives the trip.
_HEADER_UNSAFE = re.compile(r"[^\t\x20-\x7e]")


@dataclass(frozen=True)
class Rule:
    """One member's constraints, as botocore's model states them."""

    member: str
    kind: str  # "string" | "integer" | "blob"
    min: int | None
    max: int | None
    pattern: str | None  # the model's (Java-flavoured) pattern, for messages
    regex: re.Pattern[str] | None
    header: str | None

    def describe(self) -> str:
        parts = []
        if self.kind == "integer":
            parts.append(f"an integer from {self.min} to {self.max}")
        else:
            unit = "bytes" if self.kind == "blob" else "characters"
            if self.min and self.max is not None:
                parts.append(f"{self.min}..{self.max} {unit}")
            elif self.max is not None:
                parts.append(f"at most {self.max} {unit}")
            if self.member in _PATTERN_WORDS:
                parts.append(_PATTERN_WORDS[self.member])
        return ", ".join(parts)


def _java_regex_to_python(pattern: str) -> str:
    """Translate the few Java regex features AWS models use (\\p{ASCII}, \\p{Print}, \\z)."""
    classes = {r"\p{ASCII}": r"\x00-\x7f", r"\p{Print}": r"\x20-\x7e"}
    out, i, in_class = [], 0, False
    while i < len(pattern):
        for java, py in classes.items():
            if pattern.startswith(java, i):
                out.append(py if in_class else f"[{py}]")
                i += len(java)
                break
        else:
            ch = pattern[i]
            if ch == "\\" and i + 1 < len(pattern):
                pair = pattern[i:i + 2]
                out.append(r"\Z" if pair == r"\z" else pair)
                i += 2
                continue
            if ch == "[" and not in_class:
                in_class = True
            elif ch == "]" and in_class:
                in_class = False
            out.append(ch)
            i += 1
    return "".join(out)


@functools.lru_cache(maxsize=1)
def _operation_model() -> Any:
    import botocore.session

    session = botocore.session.get_session()
    return session.get_service_model("sagemaker-runtime").operation_model(OPERATION)


@functools.lru_cache(maxsize=1)
def rules() -> dict[str, Rule]:
    """The model's constraints for every InvokeEndpointAsync input member."""
    found = {}
    for name, shape in _operation_model().input_shape.members.items():
        meta = shape.metadata
        pattern = meta.get("pattern")
        found[name] = Rule(
            member=name,
            kind=shape.type_name,
            min=meta.get("min"),
            max=meta.get("max"),
            pattern=pattern,
            regex=re.compile(_java_regex_to_python(pattern)) if pattern else None,
            header=shape.serialization.get("name") if shape.serialization.get("location") == "header" else None,
        )
    return found


def supports_inline_body() -> bool:
    """True when the installed botocore can send InvokeEndpointAsync's Body member."""
    return "Body" in rules()


def inline_body_limit() -> int:
    rule = rules().get("Body")
    return rule.max if rule and rule.max else INLINE_BODY_FALLBACK_LIMIT


def shorten(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 5] + "…" + text[-4:]


def _fail(member: str, value: Any, rule_text: str) -> ValidationError:
    return ValidationError(f"{member} {shorten(value)} is invalid: it must be {rule_text}.", parameter=member)


def _integer(value: Any) -> int | None:
    """An int from anything that is exactly an integer (int, numpy integers); None otherwise.
    bool is refused: ``True`` seconds is a mistake, not 1."""
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        return None
    try:
        return operator.index(value)
    except TypeError:
        return None


def check_member(member: str, value: Any) -> Any:
    """Raise ValidationError unless ``value`` satisfies the model's rule for ``member``; return the
    value as it is sent (numpy integers become int)."""
    rule = rules().get(member)
    if rule is None:
        raise ValidationError(f"{member} is not a parameter of {OPERATION} in the installed botocore; "
                              "upgrade boto3/botocore.", parameter=member)
    if rule.kind == "integer":
        number = _integer(value)
        if number is None:
            raise _fail(member, value, rule.describe())
        if (rule.min is not None and number < rule.min) or (rule.max is not None and number > rule.max):
            raise _fail(member, value, rule.describe())
        return number
    if not isinstance(value, str):
        raise _fail(member, value, f"a string ({rule.describe()})")
    if (rule.min is not None and len(value) < rule.min) or (rule.max is not None and len(value) > rule.max):
        raise _fail(member, value, rule.describe())
    if rule.regex is not None and not rule.regex.fullmatch(value):
        raise _fail(member, value, rule.describe())
    if rule.header and _HEADER_UNSAFE.search(value):
        raise _fail(member, value,
                    rule.describe() + "; no control or non-ASCII characters (it is sent as an HTTP header)")
    return value


def validate_request(params: Mapping[str, Any]) -> dict[str, Any]:
    """Check every given parameter; return the botocore keyword arguments (None values dropped).

    ``params`` uses the Python keyword names of :data:`PARAMETER_NAMES`.
    """
    unknown = set(params) - set(PARAMETER_NAMES)
    if unknown:
        raise ValidationError(f"Unknown parameter(s): {', '.join(sorted(unknown))}; "
                              f"expected some of {', '.join(PARAMETER_NAMES)}.")
    api: dict[str, Any] = {}
    for keyword, member in PARAMETER_NAMES.items():
        value = params.get(keyword)
        if value is None:
            continue
        api[member] = check_member(member, value)
    if "EndpointName" not in api:
        raise ValidationError("EndpointName is required: name the async endpoint to invoke.",
                              parameter="EndpointName")
    return api


def check_inline_body(body_size: int) -> None:
    """Inline bodies need botocore support and must fit the service's limit."""
    if not supports_inline_body():
        import botocore

        raise ValidationError(
            f"inline=True needs a botocore whose {OPERATION} has a Body member; the installed "
            f"botocore {botocore.__version__} does not. Upgrade boto3/botocore or drop inline=True "
            "to send the payload through S3.", parameter="Body")
    limit = inline_body_limit()
    if body_size > limit:
        raise ValidationError(
            f"Body of {body_size:,} bytes is too large to send inline: it must be at most {limit:,} bytes. "
            "Drop inline=True to send it through S3 (up to 1 GB).", parameter="Body")
