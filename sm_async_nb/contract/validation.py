"""Request rules read from botocore's service model: one mechanism for every operation we check.

The limits (lengths, ranges, patterns, enums, required members) come from the installed botocore so
they follow AWS's own model; only the human wording of each rule and the HTTP-header hygiene (no
control characters in header values) are ours. Two uses share the same :class:`Rule`:

* a request's top-level members, one by one (:func:`check_member`): InvokeEndpointAsync's
  (the default, checked by the client before anything is uploaded, and by the local runtime) and
  InvokeInferenceRouterAsync's (:data:`INVOKE_ROUTER_ASYNC`);
* a whole JSON request, structures and lists included (:func:`check_input`), worded as AWS's
  ValidationException words it (``Value '5' at 'routingTargets.1.member...' failed to satisfy
  constraint: ...``): the local stack's control plane checks the inference-router operations so.
"""

from __future__ import annotations

import functools
import operator
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import ValidationError


@dataclass(frozen=True)
class Operation:
    """An operation whose rules are read from botocore's model; ``since`` is the first botocore
    release that has it (None: every release this package supports)."""

    service: str
    name: str
    since: str | None = None


INVOKE_ENDPOINT_ASYNC = Operation("sagemaker-runtime", "InvokeEndpointAsync")
INVOKE_ROUTER_ASYNC = Operation("sagemaker-inference-router-runtime", "InvokeInferenceRouterAsync", "1.44")
OPERATION = INVOKE_ENDPOINT_ASYNC.name
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
_NAME_WORDS = "letters, digits and single or repeated hyphens between them, starting and ending with a letter or digit"
_PATTERN_WORDS = {
    "EndpointName": _NAME_WORDS,
    "InferenceRouterName": _NAME_WORDS,
    "RoutingTargetName": _NAME_WORDS,
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
    kind: str  # "string" | "integer" | "blob" | "structure" | "list" | ...
    min: int | None
    max: int | None
    pattern: str | None  # the model's (Java-flavoured) pattern, for messages
    regex: re.Pattern[str] | None
    header: str | None
    enum: tuple[str, ...] = ()

    @classmethod
    def of(cls, member: str, shape: Any) -> Rule:
        """The rule botocore's model states for ``shape`` (a member named ``member``)."""
        meta = shape.metadata
        pattern = meta.get("pattern")
        where = shape.serialization
        return cls(member=member, kind=shape.type_name, min=meta.get("min"), max=meta.get("max"), pattern=pattern,
                   regex=re.compile(_java_regex_to_python(pattern)) if pattern else None,
                   header=where.get("name") if where.get("location") == "header" else None,
                   enum=tuple(getattr(shape, "enum", None) or ()))

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


# Java's character classes AWS models use, as Python character-class contents. \w is letters,
# digits (Unicode) and "_": exactly what \p{L} and \p{N} stand next to where the models use them
# (TagKey: [\p{L}\p{Z}\p{N}_.:/=+\-@]*). \p{Z} is Unicode's separators.
_JAVA_CLASSES = {r"\p{ASCII}": r"\x00-\x7f", r"\p{Print}": r"\x20-\x7e", r"\p{L}": r"\w", r"\p{N}": r"\w",
                 r"\p{Z}": r"\u0020\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"}


def _java_regex_to_python(pattern: str) -> str:
    """Translate the few Java regex features AWS models use (\\p{...} classes, \\z)."""
    classes = _JAVA_CLASSES
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


@functools.cache
def operation_model(operation: Operation = INVOKE_ENDPOINT_ASYNC) -> Any:
    """botocore's model of ``operation``.

    Raises:
        ValidationError: the installed botocore does not have it (one line naming the release needed).
    """
    import botocore
    import botocore.session
    from botocore.exceptions import UnknownServiceError

    try:
        return botocore.session.get_session().get_service_model(operation.service).operation_model(operation.name)
    except UnknownServiceError:
        raise ValidationError(
            f"{operation.name} needs botocore {operation.since or 'with the ' + operation.service + ' service'} or "
            f"later; the installed botocore {botocore.__version__} does not know the {operation.service} service: "
            "pip install -U boto3 botocore", parameter=operation.name) from None


@functools.cache
def rules(operation: Operation = INVOKE_ENDPOINT_ASYNC) -> dict[str, Rule]:
    """The model's constraints for every input member of ``operation`` (InvokeEndpointAsync by default).

    Raises:
        ValidationError: the installed botocore does not have the operation.
    """
    return {name: Rule.of(name, shape) for name, shape in operation_model(operation).input_shape.members.items()}


def required(operation: Operation) -> tuple[str, ...]:
    """The members ``operation`` requires, as the model lists them."""
    return tuple(operation_model(operation).input_shape.metadata.get("required") or ())


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


def check_member(member: str, value: Any, operation: Operation = INVOKE_ENDPOINT_ASYNC) -> Any:
    """Raise ValidationError unless ``value`` satisfies the model's rule for ``member`` of ``operation``
    (InvokeEndpointAsync by default); return the value as it is sent (numpy integers become int)."""
    rule = rules(operation).get(member)
    if rule is None:
        raise ValidationError(f"{member} is not a parameter of {operation.name} in the installed botocore; "
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


# -- whole requests, worded as AWS's ValidationException words them ----------------------------------------
def check_input(operation: Operation, params: Mapping[str, Any]) -> None:
    """Check a whole request (structures and lists included) against ``operation``'s model: required
    members, types, lengths, ranges, patterns and enums.

    Raises:
        ValidationError: every violation in one line, as AWS words it (``2 validation errors detected:
            Value '5' at 'routingTargets.1.member.asyncInferenceConfig.clientConfig.maxTimeInBacklogSeconds'
            failed to satisfy constraint: Member must have value greater than or equal to 60; ...``),
            or the installed botocore does not have the operation.
    """
    errors: list[str] = []
    _walk(operation_model(operation).input_shape, params, "", errors)
    if errors:
        count = len(errors)
        raise ValidationError(f"{count} validation error{'s' if count > 1 else ''} detected: " + "; ".join(errors))


def _path(parent: str, member: str) -> str:
    name = member[:1].lower() + member[1:]
    return f"{parent}.{name}" if parent else name


def _violation(value: Any, path: str, constraint: str) -> str:
    shown = "null" if value is None else "'" + (value if isinstance(value, str) else repr(value))[:80] + "'"
    return f"Value {shown} at '{path}' failed to satisfy constraint: Member must {constraint}"


def _walk(shape: Any, value: Any, path: str, errors: list[str]) -> None:
    kind = shape.type_name
    if kind == "structure":
        if not isinstance(value, Mapping):
            errors.append(_violation(value, path, "be a structure"))
            return
        for name in shape.metadata.get("required") or ():
            if value.get(name) is None:
                errors.append(_violation(None, _path(path, name), "not be null"))
        for name, member in shape.members.items():
            if value.get(name) is not None:
                _walk(member, value[name], _path(path, name), errors)
        return
    rule = Rule.of(path, shape)
    if kind == "list":
        if not isinstance(value, list):
            errors.append(_violation(value, path, "be a list"))
            return
        _length(rule, value, path, errors)
        for index, item in enumerate(value, start=1):
            _walk(shape.member, item, f"{path}.{index}.member", errors)
    elif kind in ("integer", "long"):
        number = _integer(value)
        if number is None:
            errors.append(_violation(value, path, f"be of type {kind}"))
        elif rule.min is not None and number < rule.min:
            errors.append(_violation(value, path, f"have value greater than or equal to {rule.min}"))
        elif rule.max is not None and number > rule.max:
            errors.append(_violation(value, path, f"have value less than or equal to {rule.max}"))
    elif kind == "string":
        if not isinstance(value, str):
            errors.append(_violation(value, path, "be of type string"))
            return
        _length(rule, value, path, errors)
        if rule.regex is not None and not rule.regex.fullmatch(value):
            errors.append(_violation(value, path, f"satisfy regular expression pattern: {rule.pattern}"))
        if rule.enum and value not in rule.enum:
            errors.append(_violation(value, path, f"satisfy enum value set: [{', '.join(rule.enum)}]"))


def _length(rule: Rule, value: Any, path: str, errors: list[str]) -> None:
    if rule.min is not None and len(value) < rule.min:
        errors.append(_violation(value, path, f"have length greater than or equal to {rule.min}"))
    elif rule.max is not None and len(value) > rule.max:
        errors.append(_violation(value, path, f"have length less than or equal to {rule.max}"))


def validate_request(params: Mapping[str, Any], operation: Operation = INVOKE_ENDPOINT_ASYNC) -> dict[str, Any]:
    """Check every given parameter by ``operation``'s rules; return the botocore keyword arguments (None
    values dropped). ``params`` uses the Python keyword names of :data:`PARAMETER_NAMES`; EndpointName is
    required for InvokeEndpointAsync (``contract.routing.request_params`` names a routing target instead).
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
        api[member] = check_member(member, value, operation)
    if operation == INVOKE_ENDPOINT_ASYNC and "EndpointName" not in api:
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
