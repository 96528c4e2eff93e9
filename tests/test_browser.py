"""The explorer notebook in a real browser: JupyterLab + Debian's headless Chromium via Playwright.

A kernel-only test cannot see whether the widgets render (a missing front-end extension, a broken
comm). This one starts JupyterLab on a free loopback port with a random token and throwaway
config/runtime/data directories, opens a copy of ``notebooks/05_explore.ipynb`` (so autosave never
touches the repository), runs all cells, checks that a slider and the Generate button are on the
page, clicks Generate and waits for text, and saves a screenshot under the test's temporary
directory. The copy explores an untrained model: this test is about the front end, and stays fast.
It is skipped where Chromium or Playwright is missing; CI installs both.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = [pytest.mark.notebook, pytest.mark.data]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "05_explore.ipynb"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

if not os.path.exists(CHROMIUM):
    pytest.skip("Chromium is not installed (Debian: apt-get install chromium); CI installs it", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed (pip install playwright)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_until_up(server: subprocess.Popen, url: str, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"JupyterLab exited with {server.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.25)
    raise RuntimeError(f"JupyterLab did not answer {url} within {timeout} s:\n{log.read_text()[-3000:]}")


def _stop(server: subprocess.Popen) -> None:
    """Stop the server and its kernels: they share the process group it was started in."""
    if server.poll() is None:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def prepare_notebook(directory: Path, parameters: dict) -> Path:
    """A copy of the explorer notebook whose parameters cell ends with ``parameters``' values."""
    notebook = json.loads(NOTEBOOK.read_text())
    cell = next(c for c in notebook["cells"] if "parameters" in c["metadata"].get("tags", []))
    cell["source"] = "".join(cell["source"]) + "\n" + "\n".join(f"{k} = {v!r}" for k, v in parameters.items())
    for c in notebook["cells"]:
        if c["cell_type"] == "code":
            c["outputs"], c["execution_count"] = [], None
    notebook["metadata"].pop("widgets", None)  # stale widget state from the committed run
    path = directory / NOTEBOOK.name
    path.write_text(json.dumps(notebook))
    return path


def run_explorer(directory: Path, screenshot: Path, parameters: dict, timeout_s: float = 150) -> str:
    """Open the notebook in JupyterLab + Chromium, run it, click Generate; return the generated text."""
    token = secrets.token_hex(16)
    port = _free_port()
    notebook = prepare_notebook(directory, parameters)
    env = dict(os.environ)
    for name in ("JUPYTER_CONFIG_DIR", "JUPYTER_RUNTIME_DIR", "JUPYTER_DATA_DIR", "IPYTHONDIR"):
        env[name] = str(directory / name.lower())
    env["JUPYTER_PLATFORM_DIRS"] = "1"
    labconfig = directory / "jupyter_config_dir" / "labconfig"
    labconfig.mkdir(parents=True)
    # No "get Jupyter news?" toast over the page.
    (labconfig / "page_config.json").write_text(
        json.dumps({"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}})
    )
    log = directory / "jupyterlab.log"
    with open(log, "w") as log_file:
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "jupyterlab",
                "--no-browser",
                "--ip=127.0.0.1",
                f"--port={port}",
                "--ServerApp.port_retries=0",
                f"--IdentityProvider.token={token}",
                f"--ServerApp.root_dir={directory}",
                "--LabApp.expose_app_in_browser=True",
                "--ServerApp.terminals_enabled=False",
                "--LabApp.news_url=",
                "--LabServerApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
                *(["--allow-root"] if os.geteuid() == 0 else []),
            ],
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_until_up(server, f"{base}/api/status?token={token}", log)
        with sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1280, "height": 1600})
                page.set_default_timeout(timeout_s * 1000)
                page.goto(f"{base}/lab/tree/{notebook.name}?token={token}")
                page.wait_for_function(
                    "() => window.jupyterapp && window.jupyterapp.shell.currentWidget"
                    " && window.jupyterapp.shell.currentWidget.sessionContext"
                    " && window.jupyterapp.shell.currentWidget.sessionContext.session"
                )
                page.evaluate("() => window.jupyterapp.commands.execute('application:toggle-left-area')")
                page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
                playground = page.locator(".workbench-playground")
                button = playground.get_by_role("button", name="Generate")
                button.wait_for(state="visible")
                assert page.locator(".widget-slider").count() >= 3  # sampling sliders and more
                output = playground.locator(".workbench-generated pre")
                button.click()
                output.wait_for(state="visible")
                page.wait_for_function(
                    "() => /tokens\\/s/.test(document.querySelector('.workbench-playground-status').innerText)"
                )
                text = output.inner_text()
                playground.evaluate("element => element.scrollIntoView({block: 'start'})")
                page.screenshot(path=str(screenshot), full_page=True)
                return text
            finally:
                browser.close()
    finally:
        _stop(server)


def test_explorer_notebook_renders_and_generates_in_chromium(tmp_path):
    start = time.monotonic()
    screenshot = tmp_path / "explore.png"
    text = run_explorer(tmp_path, screenshot, {"model_source": "untrained", "max_new_tokens": 8})
    assert text.strip(), "Generate produced no text"
    assert screenshot.stat().st_size > 10_000
    print(f"browser test: {time.monotonic() - start:.0f} s, generated {text!r}, screenshot {screenshot}")
