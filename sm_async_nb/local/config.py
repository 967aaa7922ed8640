"""Every option of the local stack, defaults and checks defined once.

:class:`StackConfig` holds the options of a stack and of its first endpoint; :class:`EndpointSpec`
those of one endpoint (the first one's come from the config, ``add_endpoint`` makes others).
Both check themselves when made, so a bad value is refused before anything starts, whichever
door it came through (``sma.LocalStack``, ``sm-async-nb local``, ``%sm_async local start``).

The command lines are generated from the fields: :func:`add_arguments` adds one flag per field
(its name, help and parser live in the field's metadata), with nothing set unless given, and
:func:`from_arguments` turns what was given back into a checked config.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from ..contract.validation import check_member
from .settings import DEFAULT_ENDPOINT, DEFAULT_IDLE_TIMEOUT, check_host, optional_seconds, parse_duration

STACK, ENDPOINT = "stack", "endpoint"  # what an option belongs to: the whole stack, or one endpoint


def option(default: Any, help: str, *, parse: Callable[[str], Any] | None = None, metavar: str | None = None,
           flag: str | None = None, scope: str = STACK, repeat: bool = False) -> Any:
    """A config field with what its command-line flag needs (``parse`` None: a switch; ``repeat``: the
    flag may be given several times, each parsed value collected in a tuple)."""
    return field(default=default, metadata={"help": help, "parse": parse, "metavar": metavar, "flag": flag,
                                            "scope": scope, "repeat": repeat})


def _model(text: str) -> str:
    return text


def image_pair(text: str) -> tuple[str, str]:
    """``IMAGE=URL`` of ``--image-map``.

    Raises:
        argparse.ArgumentTypeError: no ``=`` in it (argparse shows its message).
    """
    image, sep, url = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"--image-map takes IMAGE=URL (e.g. my-image:latest=http://127.0.0.1:8080), "
                                         f"not {text!r}")
    return image.strip(), url.strip()


def _image_map(value: Any) -> tuple[tuple[str, str], ...]:
    """``image_map`` as sorted (image or prefix, URL) pairs, from a dict or pairs.

    Raises:
        ValueError: an empty image, or a URL that is not http(s)://.
    """
    pairs = value.items() if isinstance(value, dict) else value
    try:
        found = {str(image): str(url) for image, url in pairs}
    except (TypeError, ValueError):
        raise ValueError(f"image_map must map container images to URLs, e.g. {{'my-image': "
                         f"'http://127.0.0.1:8080'}}, not {value!r}") from None
    for image, url in found.items():
        if not image.strip():
            raise ValueError("image_map: an image (or image prefix) must not be empty")
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"image_map: {image} must map to an http:// or https:// URL of a serving container, "
                             f"not {url!r}")
    return tuple(sorted(found.items()))


@dataclass(frozen=True)
class StackConfig:
    """The local stack's options (SPEC §8, §10, §13; names fixed by the SPEC).

    Raises:
        ValueError: an option is out of range (the message names it and what is allowed).
    """

    model: Any = option(None, "model: a .py file with inference handlers, a folder with inference.py, or a serving "
                              "container URL (default: the shipped iris demo model)", parse=_model, scope=ENDPOINT)
    endpoint_name: str = option(DEFAULT_ENDPOINT, f"endpoint name (default {DEFAULT_ENDPOINT})", parse=str,
                                flag="--endpoint", metavar="NAME", scope=ENDPOINT)
    concurrency: int = option(2, "MaxConcurrentInvocationsPerInstance (default 2)", parse=int, metavar="N",
                              scope=ENDPOINT)
    latency_ms: float = option(0.0, "emulated network latency per request, ms (default 0)", parse=float,
                               metavar="MS")
    fault_rate: float = option(0.0, "fraction of S3/runtime data requests failing with a retryable error "
                                    "(default 0)", parse=float, metavar="P")
    region: str = option("us-east-1", "region (default us-east-1)", parse=str)
    delay: float = option(0.0, "extra seconds each model invocation takes (default 0)", parse=float, metavar="S",
                          scope=ENDPOINT)
    sns: bool = option(False, "give the endpoint SNS success/error topics", scope=ENDPOINT)
    time_scale: float = option(1.0, "emulated seconds per real second for TTL/timeout accounting (default 1)",
                               parse=float, metavar="X")
    instance_count: int = option(1, "the endpoint's initial instance count (default 1)", parse=int, metavar="N",
                                 scope=ENDPOINT)
    host: str = option("127.0.0.1", "address to bind (default 127.0.0.1; anything but loopback needs "
                                    "--allow-non-loopback)", parse=str)
    allow_non_loopback: bool = option(False, "bind an address other than loopback (the stack has no "
                                             "authentication: only on a network you trust)")
    moto_port: int = option(0, "port for S3/SageMaker/SNS/SQS/STS/CloudWatch/Logs (default: a free one)",
                            parse=int, metavar="PORT")
    runtime_port: int = option(0, "port for the async runtime (default: a free one)", parse=int, metavar="PORT")
    seed: int | None = option(None, "random seed for fault injection", parse=int, metavar="N")
    min_instances: int = option(1, "instances the endpoint starts with and scales in to (0: scale from zero; "
                                   "default 1)", parse=int, metavar="N")
    max_instances: int = option(1, "most instances it scales out to (default 1)", parse=int, metavar="N")
    scale_out_seconds: float | None = option(0.0, "with a backlog and 0 instances, add one after S emulated "
                                                  "seconds (default 0); none: no scale-out policy, requests wait "
                                                  "until their TTL", parse=optional_seconds, metavar="S|none")
    scale_in_idle_seconds: float | None = option(None, "scale in to --min-instances after S idle seconds "
                                                       "(default none: never)", parse=optional_seconds,
                                                 metavar="S|none")
    metrics_period_seconds: float = option(60.0, "how often the backlog metrics go to CloudWatch (default 60)",
                                           parse=float, metavar="S")
    image_map: Any = option((), "serve models whose container Image is IMAGE (or starts with it) by the serving "
                                "container at URL (/ping, /invocations); may be given several times",
                            parse=image_pair, metavar="IMAGE=URL", repeat=True)
    create_seconds: float = option(0.0, "emulated seconds CreateEndpoint/UpdateEndpoint take before InService "
                                        "(default 0)", parse=float, metavar="S")
    idle_timeout: float = option(DEFAULT_IDLE_TIMEOUT, "a detached stack stops by itself after this long without "
                                                       "a request (e.g. 30m, 8h; default 8h)", parse=parse_duration,
                                 metavar="DURATION")

    def __post_init__(self) -> None:
        object.__setattr__(self, "host", check_host(self.host, self.allow_non_loopback))
        object.__setattr__(self, "image_map", _image_map(self.image_map))
        _at_least("create_seconds", self.create_seconds, 0)
        self.endpoint()  # the first endpoint's options
        _at_least("latency_ms", self.latency_ms, 0)
        if not 0.0 <= self.fault_rate <= 1.0:
            raise ValueError(f"fault_rate must be between 0 and 1, got {self.fault_rate}")
        if not self.time_scale > 0:
            raise ValueError(f"time_scale must be > 0, got {self.time_scale}")
        for name in ("moto_port", "runtime_port"):
            if not 0 <= getattr(self, name) <= 65535:
                raise ValueError(f"{name} must be a port number (0: a free one), got {getattr(self, name)}")
        if self.min_instances < 0 or self.max_instances < max(1, self.min_instances):
            raise ValueError(f"need 0 <= min_instances <= max_instances and max_instances >= 1, got "
                             f"{self.min_instances} and {self.max_instances}")
        for name in ("scale_out_seconds", "scale_in_idle_seconds"):
            value = getattr(self, name)
            if value is not None:
                _at_least(name, value, 0)
        if not self.metrics_period_seconds > 0:
            raise ValueError(f"metrics_period_seconds must be > 0, got {self.metrics_period_seconds}")
        if not self.idle_timeout > 0:
            raise ValueError(f"idle_timeout must be > 0 seconds, got {self.idle_timeout}")

    def endpoint(self) -> EndpointSpec:
        """The first endpoint's options."""
        return EndpointSpec(self.endpoint_name, self.model, concurrency=self.concurrency, delay=self.delay,
                            sns=self.sns, instance_count=self.instance_count)

    def changed(self) -> dict[str, Any]:
        """The options that differ from their defaults."""
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) != f.default}

    def shared(self) -> dict[str, Any]:
        """The options of the whole stack (not of its first endpoint), as JSON-able values."""
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self) if f.metadata["scope"] == STACK}

    def differs(self, running: dict[str, Any]) -> list[str]:
        """The stack-wide options set here (not default) that a running stack (its :meth:`shared`)
        has other values of; ``idle_timeout`` is the running stack's own."""
        return [name for name, value in self.changed().items()
                if name in running and name not in ("idle_timeout", "image_map") and running[name] != _plain(value)]

    def replace(self, **changes: Any) -> StackConfig:
        return dataclasses.replace(self, **changes)

    def to_json(self) -> str:
        """The options as JSON for another process (the model must be a path or a URL by then).

        Raises:
            ValueError: the model is a Python object, which cannot leave this process.
        """
        if self.model is not None and not isinstance(self.model, str):
            raise ValueError("only a model given as a file path or a container URL can go to another process")
        return json.dumps({name: _plain(value) for name, value in self.changed().items()})

    @classmethod
    def from_json(cls, text: str) -> StackConfig:
        return cls(**json.loads(text))


@dataclass(frozen=True)
class EndpointSpec:
    """One endpoint's options (``add_endpoint``). ``concurrency``/``instance_count`` None: the stack's."""

    name: str
    model: Any = None
    concurrency: int | None = None
    delay: float = 0.0
    sns: bool = False
    instance_count: int | None = None
    asynchronous: bool = True  # False: an endpoint config without AsyncInferenceConfig
    output_path: str | None = None
    failure_path: str | None = None
    include_response: bool = False  # embed the response in the success notification

    def __post_init__(self) -> None:
        check_member("EndpointName", self.name)
        for name in ("concurrency", "instance_count"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError(f"{name} must be at least 1, got {value}")
        _at_least("delay", self.delay, 0)

    def to_args(self) -> dict[str, Any]:
        """The options that are set, as keyword arguments (for the control namespace)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) != f.default
                or f.name == "name"}

    def compare(self, other: EndpointSpec) -> list[str]:
        """The options set here that ``other`` has other values of."""
        return [f.name for f in fields(self) if f.name != "name" and getattr(self, f.name) != f.default
                and getattr(self, f.name) != getattr(other, f.name)]


def _plain(value: Any) -> Any:
    """A value as JSON reads it back (tuples are lists there)."""
    return [_plain(v) for v in value] if isinstance(value, tuple) else value


ENDPOINT_OPTIONS = tuple(f.name for f in fields(StackConfig) if f.metadata["scope"] == ENDPOINT)


def _at_least(name: str, value: float, low: float) -> None:
    if not (isinstance(value, (int, float)) and not math.isnan(value) and value >= low):
        raise ValueError(f"{name} must be >= {low:g}, got {value}")


def flag(name: str) -> str:
    """The command-line flag of config field ``name``."""
    meta = StackConfig.__dataclass_fields__[name].metadata
    return meta["flag"] or "--" + name.replace("_", "-")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per :class:`StackConfig` field; a flag not given leaves its field unset."""
    for item in fields(StackConfig):
        meta = item.metadata
        if meta["parse"] is None:
            parser.add_argument(flag(item.name), dest=item.name, action="store_true", default=argparse.SUPPRESS,
                                help=meta["help"])
        elif meta["repeat"]:
            parser.add_argument(flag(item.name), dest=item.name, type=meta["parse"], metavar=meta["metavar"],
                                action="append", default=argparse.SUPPRESS, help=meta["help"])
        else:
            parser.add_argument(flag(item.name), dest=item.name, type=meta["parse"], metavar=meta["metavar"],
                                default=argparse.SUPPRESS, help=meta["help"])


def given(args: argparse.Namespace) -> dict[str, Any]:
    """The config options given on a command line (see :func:`add_arguments`)."""
    return {f.name: getattr(args, f.name) for f in fields(StackConfig) if hasattr(args, f.name)}


def from_arguments(args: argparse.Namespace) -> StackConfig:
    """A checked config from the options given on a command line.

    Raises:
        ValueError: a bad option (one line).
    """
    return StackConfig(**given(args))


def absolute_model(model: Any) -> Any:
    """A model file or folder relative to this process's directory, made absolute (for a process
    that runs elsewhere); a URL or a Python object unchanged.

    Raises:
        ValueError: the file or folder does not exist.
    """
    if not isinstance(model, (str, os.PathLike)) or str(model).startswith(("http://", "https://")):
        return model
    path = Path(model).expanduser()
    if not path.exists():
        raise ValueError(f"model file {model} does not exist")
    return str(path.resolve())
