"""Where the service writes an invocation's output and failure objects. Clients use the locations
InvokeEndpointAsync returns and never rebuild them (SPEC §2); this rule is what the emulated
service answers with, and what tests check the answers against."""

from __future__ import annotations

from ..aws.s3uri import S3Uri


def result_locations(output_path: str | None, failure_path: str | None, inference_id: str,
                     extension: str | None = None, filename: str | None = None) -> tuple[str, str]:
    """(OutputLocation, FailureLocation) for a request to an endpoint whose AsyncInferenceConfig has
    ``output_path`` (S3OutputPath) and ``failure_path`` (S3FailurePath, or None).

    Layout: ``<S3OutputPath>/<S3OutputPathExtension>/<Filename or <id>.out>`` and
    ``<S3FailurePath or S3OutputPath>/<S3OutputPathExtension>/<id>-error.out``. The extension's
    leading/trailing slashes are dropped so exactly one ``/`` separates the parts; Filename names
    only the output object (the failure object keeps the id, so it stays unique).
    """
    assert output_path, "an async endpoint always has an S3OutputPath"
    out = S3Uri.parse(output_path)
    fail = S3Uri.parse(failure_path or output_path)
    ext = (extension or "").strip("/")
    if ext:
        out, fail = out.join(ext), fail.join(ext)
    return str(out.join(filename or f"{inference_id}.out")), str(fail.join(f"{inference_id}-error.out"))
