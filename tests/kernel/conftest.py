"""Fixtures of the kernel tier: the kernels each panel test runs on (the installed ipykernel, and
ipykernel 6 when an interpreter with it is given), such a kernel reaching the moto server, and one
user's environment for kernels that share the detached local stack."""

from __future__ import annotations

import json
import os

import pytest

# A Python with ipykernel 6 (.ci/run makes one, as SM_ASYNC_NB_IPYKERNEL6_PYTHON).
IPYKERNEL6_PYTHON = os.environ.get("SM_ASYNC_NB_IPYKERNEL6_PYTHON")


@pytest.fixture(params=["installed", "ipykernel6"])
def kernel_spec(request, tmp_path):
    """(kernel name, KernelSpecManager): the installed kernel (ipykernel 7 here), and ipykernel 6 when an
    interpreter with it is given."""
    from jupyter_client.kernelspec import KernelSpecManager

    if request.param == "installed":
        return "python3", KernelSpecManager()
    if not IPYKERNEL6_PYTHON:
        pytest.skip("set SM_ASYNC_NB_IPYKERNEL6_PYTHON to a Python with ipykernel 6 (as .ci/run does)")
    spec_dir = tmp_path / "kernels" / "ipykernel6"
    spec_dir.mkdir(parents=True)
    (spec_dir / "kernel.json").write_text(json.dumps({
        "argv": [IPYKERNEL6_PYTHON, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "ipykernel 6", "language": "python"}))
    return "ipykernel6", KernelSpecManager(kernel_dirs=[str(tmp_path / "kernels")])


@pytest.fixture
def kernel(kernels, kernel_spec, moto_server):
    """A kernel of ``kernel_spec`` whose S3 and SageMaker runtime are the moto server."""
    kernel = kernels({"AWS_ENDPOINT_URL_S3": moto_server, "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": moto_server},
                     spec=kernel_spec)
    version = kernel.execute("import ipykernel; print(ipykernel.__version__)").stdout.strip()
    assert kernel_spec[0] != "ipykernel6" or version.startswith("6."), version
    return kernel


@pytest.fixture
def user_env(tmp_path):
    """One user's environment (cache dir, journal home) shared by every kernel of a test, the way one
    user's kernels share them: the detached local stack they start is stopped at the end."""
    from sm_async_nb.local.detached import handle as detached

    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT_URL")}
    env.update(XDG_CACHE_HOME=str(tmp_path / "cache"), SM_ASYNC_NB_HOME=str(tmp_path / "sm-async-nb"))
    yield env
    os.environ["XDG_CACHE_HOME"] = env["XDG_CACHE_HOME"]
    try:
        detached.stop()
    finally:
        del os.environ["XDG_CACHE_HOME"]
