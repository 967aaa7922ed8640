"""A real JupyterLab server and a real Chromium for the browser tests of the panel.

The server runs in its own process group with a throwaway HOME, JUPYTER_CONFIG_DIR /
JUPYTER_DATA_DIR / JUPYTER_RUNTIME_DIR, IPYTHONDIR, lab user-settings and workspaces dirs and
SM_ASYNC_NB_HOME. Nothing under sys.prefix is written: the kernelspec and the ipywidgets
labextension are still found there, because jupyter's search path always includes
``{sys.prefix}/share/jupyter``. The "news" notification is turned off by an ``overrides.json``
in a temporary ``app_settings_dir``. At teardown every process the server started (kernels
live in their own sessions, the local stack's moto server in the kernel's group) is killed.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
from labkit import ARTIFACTS, REPO

NOTEBOOKS = REPO / "notebooks"
CHROMIUM = "/usr/bin/chromium"
# Without the background-networking flags Chromium's own connections are refused by a closed
# network and slow start-up down; none of them changes how pages render.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage"]
OVERRIDES = {"@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": False}}
START_TIMEOUT = 60.0


@dataclass
class LabServer:
    url: str
    token: str
    root: Path
    log: Path
    process: subprocess.Popen

    def api(self, path: str, method: str = "GET", body: object = None, timeout: float = 10) -> object:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"{self.url}{path}", data=data, method=method,
                                         headers={"Authorization": f"token {self.token}",
                                                  "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            raw = answer.read()
        return json.loads(raw) if raw else None

    def page_url(self, path: str) -> str:
        joiner = "&" if "?" in path else "?"
        return f"{self.url}{path}{joiner}token={self.token}"

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def shutdown_kernels(self) -> None:
        """Shut down every kernel (and so each one's local stack) through the REST API."""
        for session in self.api("/api/sessions") or []:
            try:
                self.api(f"/api/sessions/{session['id']}", method="DELETE", timeout=30)
            except (OSError, urllib.error.HTTPError):
                pass


def _descendants(pid: int) -> list:
    import psutil

    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []


def _kill_tree(process: subprocess.Popen) -> list[str]:
    """SIGTERM the server's group, then make sure nothing it started survives: kernels are
    session leaders of their own groups, so they (and their groups) are killed by id too."""
    import psutil

    children = _descendants(process.pid)
    groups = set()
    for child in children:
        try:
            groups.add(os.getpgid(child.pid))
        except OSError:
            pass
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)
    _, alive = psutil.wait_procs(children, timeout=5)
    for group in groups - {process.pid}:
        try:
            os.killpg(group, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    for child in alive:
        try:
            child.kill()
        except psutil.Error:
            pass
    _, survivors = psutil.wait_procs(alive, timeout=5)
    return [f"{p.pid} {' '.join(_cmdline(p))}" for p in survivors]


def _cmdline(process) -> list[str]:
    try:
        return process.cmdline()
    except Exception:
        return ["?"]


@pytest.fixture
def lab_server(tmp_path_factory, request, free_port) -> LabServer:
    """A fresh server per test: its own journal (SM_ASYNC_NB_HOME), settings and workspaces."""
    base = tmp_path_factory.mktemp("jupyterlab")
    root = base / "notebooks"
    root.mkdir()
    for notebook in NOTEBOOKS.glob("*.ipynb"):
        shutil.copy2(notebook, root / notebook.name)
    if (NOTEBOOKS / "models").is_dir():
        shutil.copytree(NOTEBOOKS / "models", root / "models")
    dirs = {name: base / name for name in ("home", "config", "data", "runtime", "ipython", "sm-async-nb",
                                           "lab-user-settings", "lab-workspaces", "app-settings")}
    for path in dirs.values():
        path.mkdir()
    (dirs["app-settings"] / "overrides.json").write_text(json.dumps(OVERRIDES))
    home = dirs["home"]
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AWS_", "SM_ASYNC_NB_", "JUPYTER", "IPYTHON", "PYTEST_", "MPLBACKEND"))}
    env.update({
        "HOME": str(home),
        "JUPYTER_CONFIG_DIR": str(dirs["config"]),
        "JUPYTER_DATA_DIR": str(dirs["data"]),
        "JUPYTER_RUNTIME_DIR": str(dirs["runtime"]),
        "JUPYTERLAB_SETTINGS_DIR": str(dirs["lab-user-settings"]),
        "JUPYTERLAB_WORKSPACES_DIR": str(dirs["lab-workspaces"]),
        "IPYTHONDIR": str(dirs["ipython"]),
        "SM_ASYNC_NB_HOME": str(dirs["sm-async-nb"]),
        "MPLBACKEND": "Agg",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(home / "aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "aws-credentials"),
        "PYTHONUNBUFFERED": "1",
        # Kernels import this checkout's sm_async_nb, installed or not.
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    })
    # The kernelspec says `python`: put this interpreter first so kernels run in this environment.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    port, token = free_port(), secrets.token_hex(16)
    settings = str(dirs["app-settings"])
    cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
           "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
           f"--LabApp.app_settings_dir={settings}",
           f"--JupyterNotebookApp.app_settings_dir={settings}",
           f"--LabApp.user_settings_dir={dirs['lab-user-settings']}",
           f"--LabApp.workspaces_dir={dirs['lab-workspaces']}",
           "--ServerApp.terminals_enabled=False", "--LabApp.extension_manager=readonly"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:  # CI containers run as root
        cmd.append("--allow-root")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log = ARTIFACTS / f"server-{request.node.name}.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(cmd, cwd=root, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    server = LabServer(f"http://127.0.0.1:{port}", token, root, log, process)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"JupyterLab exited with {process.returncode}:\n{server.log_tail()}")
            try:
                status = server.api("/api/status", timeout=2)
                if isinstance(status, dict) and "started" in status:
                    break
            except (OSError, urllib.error.HTTPError, ValueError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"JupyterLab did not answer /api/status within {START_TIMEOUT:.0f} s:\n"
                                   f"{server.log_tail()}")
            time.sleep(0.2)
        specs = server.api("/api/kernelspecs")
        assert "python3" in specs["kernelspecs"], f"python3 kernelspec not found by the server: {specs}"
        notification = server.api("/lab/api/settings/@jupyterlab/apputils-extension:notification")
        defaults = {k: v.get("default") for k, v in notification["schema"]["properties"].items()}
        assert defaults.get("fetchNews") == "false", f"overrides.json was not applied: {defaults}"
        yield server
    finally:
        try:
            if process.poll() is None:
                server.shutdown_kernels()
        except Exception:
            pass
        survivors = _kill_tree(process)
        assert not survivors, f"processes started by the JupyterLab server survived teardown: {survivors}"


@pytest.fixture(scope="session", autouse=True)
def fresh_artifacts():
    """Screenshots and logs of this run only (the folder is gitignored)."""
    if ARTIFACTS.is_dir():
        for old in [*ARTIFACTS.glob("*.png"), *ARTIFACTS.glob("*.log")]:
            old.unlink()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)


@pytest.fixture(scope="module")  # Playwright's loop must not outlive these tests (asyncio.run elsewhere)
def chromium():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} not found: install Debian's chromium (apt-get install -y chromium)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(chromium, request):
    """A fresh browser context; dialogs and console messages are recorded (dialogs dismissed)."""
    context = chromium.new_context(viewport={"width": 1500, "height": 1000}, device_scale_factor=1)
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.dialogs = []
    page.console_messages = []

    def on_dialog(dialog) -> None:
        page.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.on("console", lambda message: page.console_messages.append(f"{message.type}: {message.text}"))
    page.on("pageerror", lambda error: page.console_messages.append(f"pageerror: {error}"))
    try:
        yield page
    finally:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        outcome = getattr(request.node, "rep_call", None)
        if outcome is not None and outcome.failed:
            try:
                page.screenshot(path=str(ARTIFACTS / f"FAILED-{request.node.name}.png"), full_page=True)
            except Exception:
                pass
        (ARTIFACTS / f"console-{request.node.name}.log").write_text("\n".join(page.console_messages))
        context.close()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report
