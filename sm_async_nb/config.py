"""The one settings object: a traitlets Configurable, so ``%config SageMakerAsync.x = ...`` works.

Precedence, highest first: keyword arguments / ``%config`` → environment variables
``SM_ASYNC_NB_<SETTING>`` (e.g. ``SM_ASYNC_NB_S3_INPUT_PATH``) → the defaults below.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from traitlets import Bool, Enum, Float, Integer, TraitError, Unicode, validate
from traitlets.config import Configurable

from .aws.s3uri import S3Uri
from .contract.serving import DEFAULT_JSON_FORMAT, JSON_FORMATS

ENV_PREFIX = "SM_ASYNC_NB_"


def default_home() -> Path:
    """Where the journal and local-stack state live unless configured."""
    return Path(os.environ.get(ENV_PREFIX + "HOME") or Path.home() / ".sm-async-nb")


def write_private(path: Path, text: str) -> None:
    """Write a state file atomically, readable by its owner only (mode 0600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


class SageMakerAsync(Configurable):
    """Settings for sm_async_nb (also read from SM_ASYNC_NB_* environment variables)."""

    s3_input_path = Unicode(
        None, allow_none=True,
        help="Where payloads are uploaded, as s3://bucket/prefix/. Default: "
             "s3://sagemaker-{region}-{account}/sm-async-nb/inputs/ (created if missing).",
    ).tag(config=True)
    region = Unicode(None, allow_none=True,
                     help="AWS region. Default: boto3's resolution (AWS_REGION, profile).").tag(config=True)
    profile = Unicode(None, allow_none=True,
                      help="AWS named profile. Default: boto3's resolution.").tag(config=True)
    poll_interval = Float(
        10.0, help="Longest pause, in seconds, between status refreshes; polling starts faster "
                   "after each submission and backs off to this while nothing changes.",
    ).tag(config=True)
    journal_path = Unicode(
        None, allow_none=True,
        help="SQLite journal of every invocation. Default: ~/.sm-async-nb/journal.sqlite3.",
    ).tag(config=True)
    max_workers = Integer(16, help="Concurrent uploads, invokes and downloads.").tag(config=True)
    auto_panel = Bool(False, help="Show the live panel after the first submission of a kernel.").tag(config=True)
    default_content_type = Unicode(
        "text/csv", help="Content type for str payloads (cell bodies) that are not JSON.",
    ).tag(config=True)
    kms_key_id = Unicode(None, allow_none=True,
                         help="KMS key for SSE-KMS encryption of uploaded payloads.").tag(config=True)
    expected_bucket_owner = Unicode(
        None, allow_none=True,
        help="Account id that must own the input bucket (sent as ExpectedBucketOwner).",
    ).tag(config=True)
    csv_header = Bool(False, help="Write a header row when a DataFrame is sent as text/csv.").tag(config=True)
    csv_output_header = Bool(
        False, help="Read the first row of text/csv outputs as column names.",
    ).tag(config=True)
    json_format = Enum(
        list(JSON_FORMATS), default_value=DEFAULT_JSON_FORMAT,
        help="How a DataFrame sent as application/json is laid out (serving containers' conventions): "
             + "; ".join(f"{name} = {shape}" for name, shape in JSON_FORMATS.items()) + ".",
    ).tag(config=True)

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        from_config = set(self.config.get(type(self).__name__, {}))
        for name, trait in self.traits(config=True).items():
            raw = os.environ.get(ENV_PREFIX + name.upper())
            if raw is None or name in kwargs or name in from_config:
                continue
            try:
                setattr(self, name, trait.from_string(raw))
            except (TraitError, ValueError) as exc:
                raise TraitError(f"Environment variable {ENV_PREFIX + name.upper()}={raw!r}: {exc}") from None

    @validate("s3_input_path")
    def _check_s3_input_path(self, proposal: dict[str, Any]) -> str | None:
        value = proposal["value"]
        if value is None:
            return None
        try:
            uri = S3Uri.parse(value)
        except ValueError as exc:
            raise TraitError(f"s3_input_path: {exc}") from None
        return uri.as_prefix()

    @validate("max_workers")
    def _check_max_workers(self, proposal: dict[str, Any]) -> int:
        value: int = proposal["value"]
        if not 1 <= value <= 256:
            raise TraitError("max_workers must be between 1 and 256")
        return value

    @validate("poll_interval")
    def _check_poll_interval(self, proposal: dict[str, Any]) -> float:
        value: float = proposal["value"]
        if not 0.05 <= value <= 3600:  # also refuses NaN
            raise TraitError("poll_interval must be between 0.05 and 3600 seconds")
        return value

    def resolved_journal_path(self) -> Path:
        return Path(self.journal_path).expanduser() if self.journal_path else default_home() / "journal.sqlite3"

    def as_dict(self) -> dict:
        return {name: getattr(self, name) for name in self.traits(config=True)}
