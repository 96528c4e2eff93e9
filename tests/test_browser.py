"""The notebooks in a real browser: JupyterLab + Debian's headless Chromium via Playwright.

Each test starts JupyterLab on a free loopback port with a random token and throwaway
config/runtime/data directories, and works on copies of the notebooks (so autosave never touches the
repository).

- The explorer: a kernel-only test cannot see whether the widgets render (a missing front-end
  extension, a broken comm). This one opens a copy of ``notebooks/05_explore.ipynb``, runs all cells,
  checks that a slider and the Generate button are on the page, clicks Generate and waits for text,
  and saves a screenshot under the test's temporary directory. The copy explores an untrained model:
  this test is about the front end, and stays fast.
- Safe to open (issue 28): opening a committed notebook, running nothing, must not change its bytes.
  JupyterLab writes the kernel's ``kernelspec`` and ``language_info`` into the notebook's metadata when
  the kernel starts; a difference marks the notebook modified and autosave rewrites the file, in the
  form a browser and the server write it (integral floats as integers, a final newline). The test opens
  byte copies of every ``notebooks/*.ipynb`` with autosave every second, waits past it, then saves
  each notebook explicitly: both must leave every byte as committed. ``python -m workbench reproduce
  --inplace`` writes the notebooks in that form (:func:`workbench.ui.notebook_files.normalize_notebook`).

Skipped where Chromium or Playwright is missing; CI installs both.
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
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

pytestmark = [pytest.mark.notebook]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOK = NOTEBOOKS / "05_explore.ipynb"
AUTOSAVE_S = 1  # JupyterLab's autosave interval in the safe-to-open test (its default is 120 s)
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


@contextmanager
def jupyterlab(directory: Path, root: Path, user_settings: dict | None = None) -> Iterator[tuple[str, str]]:
    """JupyterLab serving ``root``, with its config, runtime and data under ``directory``; yields its base
    URL and token. ``user_settings``: plugin id -> settings, as the Settings Editor writes them."""
    token = secrets.token_hex(16)
    port = _free_port()
    env = dict(os.environ)
    for name in ("JUPYTER_CONFIG_DIR", "JUPYTER_RUNTIME_DIR", "JUPYTER_DATA_DIR", "IPYTHONDIR"):
        env[name] = str(directory / name.lower())
    env["JUPYTER_PLATFORM_DIRS"] = "1"
    config_dir = directory / "jupyter_config_dir"
    labconfig = config_dir / "labconfig"
    labconfig.mkdir(parents=True)
    # No "get Jupyter news?" toast over the page.
    (labconfig / "page_config.json").write_text(
        json.dumps({"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}})
    )
    # User settings live in JUPYTER_CONFIG_DIR/lab/user-settings/PACKAGE/PLUGIN.jupyterlab-settings.
    for plugin, settings in (user_settings or {}).items():
        package, plugin_name = plugin.split(":")
        settings_file = config_dir / "lab" / "user-settings" / package / f"{plugin_name}.jupyterlab-settings"
        settings_file.parent.mkdir(parents=True, exist_ok=True)
        settings_file.write_text(json.dumps(settings))
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
                f"--ServerApp.root_dir={root}",
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
        yield base, token
    finally:
        _stop(server)


@contextmanager
def chromium() -> Iterator:
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def run_explorer(directory: Path, screenshot: Path, parameters: dict, timeout_s: float = 150) -> str:
    """Open the notebook in JupyterLab + Chromium, run it, click Generate; return the generated text."""
    notebook = prepare_notebook(directory, parameters)
    with jupyterlab(directory, directory) as (base, token), chromium() as browser:
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


@pytest.mark.data
def test_explorer_notebook_renders_and_generates_in_chromium(tmp_path):
    start = time.monotonic()
    screenshot = tmp_path / "explore.png"
    text = run_explorer(tmp_path, screenshot, {"model_source": "untrained", "max_new_tokens": 8})
    assert text.strip(), "Generate produced no text"
    assert screenshot.stat().st_size > 10_000
    print(f"browser test: {time.monotonic() - start:.0f} s, generated {text!r}, screenshot {screenshot}")


# The notebook panels open in the main area, as JavaScript run in the page.
NOTEBOOK_PANELS = "Array.from(window.jupyterapp.shell.widgets('main')).filter(w => w.content && w.content.model)"
# Every notebook's kernel has started.
KERNELS_IDLE = f"""() => {{
    const panels = {NOTEBOOK_PANELS};
    return panels.length === %d && panels.every(w => w.context.isReady && w.sessionContext.session
        && w.sessionContext.session.kernel && w.sessionContext.session.kernel.status === 'idle');
}}"""
# ... and told JupyterLab its spec and language_info, which JupyterLab writes into the notebook's metadata.
KERNELS_KNOWN = f"""() => Promise.all({NOTEBOOK_PANELS}.map(w => Promise.all(
    [w.sessionContext.session.kernel.info, w.sessionContext.session.kernel.spec])))"""


def json_differences(before: bytes, after: bytes, limit: int = 4) -> list[str]:
    """Where the notebook ``after`` differs from ``before``: JSON paths (types count: ``600.0`` is not
    ``600``), then the final newline and formatting."""
    found: list[str] = []

    def walk(a, b, path: str) -> None:
        if isinstance(a, dict) and isinstance(b, dict):
            for key in sorted(a.keys() | b.keys()):
                if key not in b or key not in a:
                    found.append(f"{path}/{key}: {'removed' if key in a else 'added'}")
                else:
                    walk(a[key], b[key], f"{path}/{key}")
        elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
            for index, (x, y) in enumerate(zip(a, b)):
                walk(x, y, f"{path}/{index}")
        elif type(a) is not type(b) or a != b:
            found.append(f"{path or '/'}: {json.dumps(a)[:60]} -> {json.dumps(b)[:60]}")

    walk(json.loads(before), json.loads(after), "")
    if before.endswith(b"\n") != after.endswith(b"\n"):
        found.append("final newline " + ("added" if after.endswith(b"\n") else "removed"))
    if not found:
        found.append("same JSON, other formatting")
    return found[:limit] + ([f"... {len(found) - limit} more"] if len(found) > limit else [])


def changed_notebooks(originals: dict[str, bytes], directory: Path) -> dict[str, list[str]]:
    return {
        name: json_differences(data, (directory / name).read_bytes())
        for name, data in originals.items()
        if (directory / name).read_bytes() != data
    }


def open_and_save(directory: Path, names: list[str], timeout_s: float = 180) -> tuple[dict, dict]:
    """Open the notebooks in JupyterLab (autosave every ``AUTOSAVE_S``), run nothing, wait past autosave,
    then save each one. Returns the notebooks changed on disk after opening and after saving
    (name -> differences from the bytes before) and, for the first, which JupyterLab still held modified."""
    originals = {name: (directory / name).read_bytes() for name in names}
    autosave = {"@jupyterlab/docmanager-extension:plugin": {"autosave": True, "autosaveInterval": AUTOSAVE_S}}
    with jupyterlab(directory.parent, directory, autosave) as (base, token), chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.set_default_timeout(timeout_s * 1000)
        page.goto(f"{base}/lab?token={token}")
        page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell")
        page.evaluate(
            "async names => { await window.jupyterapp.restored;"
            " for (const name of names) await window.jupyterapp.commands.execute('docmanager:open', {path: name}); }",
            names,
        )
        page.wait_for_function(KERNELS_IDLE % len(names))
        page.evaluate(KERNELS_KNOWN)
        time.sleep(3 * AUTOSAVE_S + 2)  # the metadata update marks a notebook modified; autosave writes it
        modified = page.evaluate(f"() => {NOTEBOOK_PANELS}.filter(w => w.model.dirty).map(w => w.context.path)")
        after_opening = changed_notebooks(originals, directory)
        for name in modified:
            after_opening.setdefault(name, []).append("modified in JupyterLab, not yet saved")
        page.evaluate(f"() => Promise.all({NOTEBOOK_PANELS}.map(w => w.context.save()))")
        after_saving = changed_notebooks(originals, directory)
    return after_opening, after_saving


def test_opening_a_committed_notebook_in_jupyterlab_changes_no_byte(tmp_path):
    """Issue 28: opening a committed notebook in JupyterLab, running nothing, leaves its file as committed,
    and so does saving it: the committed bytes are the ones JupyterLab writes."""
    start = time.monotonic()
    directory = tmp_path / "notebooks"
    directory.mkdir()
    names = sorted(path.name for path in NOTEBOOKS.glob("*.ipynb"))
    for name in names:
        shutil.copyfile(NOTEBOOKS / name, directory / name)
    after_opening, after_saving = open_and_save(directory, names)
    print(f"safe-to-open test: {len(names)} notebooks in {time.monotonic() - start:.0f} s")
    differences = [d for changes in (after_opening, after_saving) for ds in changes.values() for d in ds]
    if differences and all(d.startswith("/metadata/language_info/") for d in differences):
        # Not the files' form: JupyterLab writes the running kernel's language_info (its Python version).
        pytest.skip("this environment's kernel is not the one the notebooks ran with:" + _listing(after_opening))
    remedy = (
        "\nRegenerate the notebooks with `python -m workbench reproduce --inplace`, which writes them as "
        "JupyterLab does (workbench.ui.notebook_files.normalize_notebook), in the environment `make install` makes."
    )
    assert not after_opening, "opening in JupyterLab (nothing run) rewrote:" + _listing(after_opening) + remedy
    assert not after_saving, "saving unchanged notebooks in JupyterLab rewrote:" + _listing(after_saving) + remedy


def _listing(changes: dict[str, list[str]]) -> str:
    return "".join(f"\n  {name}: " + "; ".join(differences) for name, differences in changes.items())
