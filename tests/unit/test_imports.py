"""Importing the package stays cheap: heavy libraries load only when a name needs them."""

import subprocess
import sys


def test_import_is_lazy():
    code = ("import sys, sm_async_nb\n"
            "heavy = [m for m in ('moto', 'ipywidgets', 'pandas', 'boto3', 'numpy', 'pyarrow') if m in sys.modules]\n"
            "print(heavy)\n"
            "sm_async_nb.Status, sm_async_nb.ValidationError\n"
            "print([m for m in ('moto', 'ipywidgets', 'pandas') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.splitlines() == ["[]", "[]"]


def test_public_names_of_the_spec():
    import sm_async_nb as sma

    for name in ("AsyncInferenceClient", "Invocation", "InvocationBatch", "Status", "LocalStack",
                 "ValidationError", "InferenceFailed", "InferenceExpired", "ResultNotReady", "SubmissionError"):
        assert getattr(sma, name).__name__ == name
    assert [s.name for s in sma.Status] == ["SUBMITTING", "PENDING", "COMPLETED", "FAILED", "EXPIRED", "ERROR",
                                                "QUEUED"]
    assert issubclass(sma.ValidationError, ValueError)
