"""Exceptions users see. Each message ends with what to do next."""

from __future__ import annotations

from typing import Any


class SmAsyncError(Exception):
    """Base class of every error this package raises on purpose."""

    def _render_traceback_(self) -> list[str]:
        """IPython shows this instead of a traceback: a user error is one line (%tb shows more)."""
        return [f"{type(self).__name__}: {self}"]


class ValidationError(SmAsyncError, ValueError):
    """A request parameter or payload breaks a rule; nothing was uploaded or invoked."""

    def __init__(self, message: str, *, parameter: str | None = None):
        super().__init__(message)
        self.parameter = parameter


class NotTracked(ValidationError, LookupError):
    """An inference id or batch id that the journal has no row for (never submitted through a client on
    this journal, or forgotten since)."""


class SubmissionError(SmAsyncError):
    """The client could not hand the request to SageMaker (status ERROR). ``batch`` is the batch handle
    when a batch stopped part-way (the magic's ``-o VAR`` binds it), else None."""

    def __init__(self, message: str, *, inference_id: str | None = None, code: str | None = None,
                 batch_id: str | None = None):
        super().__init__(message)
        self.inference_id = inference_id
        self.code = code
        self.batch_id = batch_id
        self.batch: Any = None  # the InvocationBatch, attached by the client


class SubmissionInterrupted(SubmissionError):
    """Ctrl-C stopped a submission: requests not yet started were never sent (ERROR "not sent"),
    those in flight finished. ``batch`` is the batch handle (the magic's ``-o VAR`` binds it);
    ``batch.resubmit()`` sends the rest."""

    def __init__(self, *, sent: int, not_sent: int, total: int, batch_id: str | None = None,
                 inference_id: str | None = None, continue_with: str | None = None):
        if continue_with is not None:  # a streamed dataset: the parts not yet read are not journaled
            message = (f"Interrupted: {sent} of {total} requests were sent; re-run with "
                       f"inference_id={continue_with!r} to send the other {not_sent}.")
        elif total == 1:
            message = ("Interrupted: the request was already in flight and was sent." if sent else
                       "Interrupted: the request was not sent; resubmit() sends it.")
        else:
            message = (f"Interrupted: {sent} of {total} requests were sent, {not_sent} were not; "
                       "batch.resubmit() sends them.")
        super().__init__(message, inference_id=inference_id, code="Interrupted", batch_id=batch_id)
        self.sent, self.not_sent, self.total = sent, not_sent, total


class InferenceFailed(SmAsyncError):
    """The model or the service wrote a failure object (status FAILED)."""

    def __init__(self, inference_id: str, reason: str | None, failure_location: str | None,
                 input_location: str | None = None):
        shown = (reason or "no reason given").strip()
        if len(shown) > 500:
            shown = shown[:500] + "…"
        super().__init__(
            f"Inference {inference_id} failed: {shown} "
            f"(failure object: {failure_location}; inspect it with .failure_reason or resubmit())"
        )
        self.inference_id = inference_id
        self.failure_reason = reason
        self.failure_location = failure_location
        self.input_location = input_location


class InferenceExpired(SmAsyncError):
    """No output or failure appeared in time, or the service said the request expired."""

    def __init__(self, inference_id: str, detail: str):
        super().__init__(f"Inference {inference_id} expired: {detail}. Resubmit it with resubmit() "
                         "or a larger request_ttl_seconds.")
        self.inference_id = inference_id


class ResultNotReady(SmAsyncError):
    """The invocation has not finished yet."""

    def __init__(self, inference_id: str, status: str):
        super().__init__(f"Inference {inference_id} is {status}, not finished yet: "
                         "call .wait() (or `await` it) first, or check .status.")
        self.inference_id = inference_id
        self.status = status


class OutputMissing(SmAsyncError, LookupError):
    """A COMPLETED invocation's output object is no longer in S3 (removed, e.g. by a lifecycle rule)."""

    def __init__(self, inference_id: str, location: str | None):
        super().__init__(f"The output of {inference_id} is no longer at {location} (it was removed, e.g. by an S3 "
                         "lifecycle rule); the journal still tracks it: resubmit() runs it again.")
        self.inference_id = inference_id
        self.location = location


class AwsError(SmAsyncError):
    """An AWS call failed after botocore's retries; the message says what to do (``kind`` classifies it:
    credentials, connection, access_denied, transient...)."""

    def __init__(self, message: str, *, code: str | None = None, kind: str | None = None):
        super().__init__(message)
        self.code = code
        self.kind = kind


class DecodeError(SmAsyncError, ValueError):
    """An output could not be turned into a DataFrame; the raw bytes are still available."""


class JournalError(SmAsyncError):
    """The journal file cannot be used (corrupt, or written by a newer version)."""


class ConfigurationError(SmAsyncError, ValueError):
    """Settings are missing or contradictory (no region, a bad s3_input_path...)."""
