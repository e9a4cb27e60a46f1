"""Notebooks 01, 05 and 06 as a reader meets them: JupyterLab in a real, headless Chromium.

Debian's `chromium` package is driven by Playwright's Python package with the system browser
(`executable_path`); no browser is ever downloaded. `.ci/run` installs both; the tests are skipped,
with the reason, only where Playwright or a Chromium binary is missing. Each test opens a copy of
the notebook (so JupyterLab never saves into `notebooks/`), runs every cell from the Run menu,
checks that every widget rendered as a widget (not as its plain-text repr, and not as
"Error displaying widget"), moves one control and checks that the panel's figure changed.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("CERBERUS_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
RUN_TIMEOUT_MS = 240_000  # a whole notebook, on 2 busy cores
TOKEN = "cerberus-browser-test"
NOTEBOOK = ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook"  # the notebook on show
# what a widget looks like when the front end could not render it
WIDGET_AS_TEXT = ("Panel(children=", "VBox(children=", "HBox(children=", "Loading widget...",
                  "Error displaying widget")

pytestmark = pytest.mark.slow

try:
    from playwright.sync_api import sync_playwright
except ImportError:  # pragma: no cover - the reason is reported by the skip
    sync_playwright = None


def _skip_reason() -> str | None:
    if sync_playwright is None:
        return "the playwright package is not installed (pip install playwright; .ci/run does it)"
    if not (Path(CHROMIUM).is_file() and os.access(CHROMIUM, os.X_OK)):
        return f"no Chromium at {CHROMIUM} (apt-get install chromium; .ci/run does it)"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory) -> Iterator[str]:
    """A JupyterLab server on a copy of the notebooks, in this interpreter's environment, with the
    quick chain built beforehand (for a notebook that still trains it), and widget state saved with
    a notebook as `make lab` sets it; yields its base URL."""
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    from cerberus_core.orchestration.notebook_cache import notebook_artifacts

    notebook_artifacts("quick", progress=False)  # trained once per code version, outside the browser's timeouts
    root = tmp_path_factory.mktemp("lab")
    for name in ("01_distillation_primer.ipynb", "05_head_diversity.ipynb", "06_head_teacher_agreement.ipynb"):
        shutil.copy(REPO / "notebooks" / name, root / name)
    settings = root / ".settings"
    # every cell in the DOM (no windowing), the notebook's kernel started without asking, no news
    # or update pop-ups over the page
    (settings / "@jupyterlab" / "notebook-extension").mkdir(parents=True)
    (settings / "@jupyterlab" / "notebook-extension" / "tracker.jupyterlab-settings").write_text(
        json.dumps({"windowingMode": "none", "autoStartDefaultKernel": True}))
    (settings / "@jupyter-widgets" / "jupyterlab-manager").mkdir(parents=True)
    (settings / "@jupyter-widgets" / "jupyterlab-manager" / "plugin.jupyterlab-settings").write_text(
        json.dumps({"saveState": True}))
    (settings / "@jupyterlab" / "apputils-extension").mkdir(parents=True)
    (settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    port = _free_port()
    log = open(root / "lab.log", "w")  # noqa: SIM115 - closed below
    env = {**os.environ, "JUPYTERLAB_SETTINGS_DIR": str(settings), "JUPYTER_CONFIG_DIR": str(root / ".config"),
           "JUPYTER_RUNTIME_DIR": str(root / ".runtime")}
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
         f"--ServerApp.root_dir={root}", f"--IdentityProvider.token={TOKEN}", "--ServerApp.open_browser=False",
         "--allow-root", "--LabApp.news_url="],
        cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 90
        while True:
            try:
                urllib.request.urlopen(f"{url}/api/status?token={TOKEN}", timeout=2)
                break
            except OSError:
                if server.poll() is not None or time.time() > deadline:
                    pytest.fail(f"JupyterLab did not start:\n{(root / 'lab.log').read_text()[-3000:]}")
                time.sleep(0.5)
        yield url
    finally:
        server.send_signal(signal.SIGINT)  # jupyter_server shuts its kernels down on SIGINT
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()


@pytest.fixture(scope="module")
def browser(lab) -> Iterator:
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
        yield chromium
        chromium.close()


def run_all(page, url: str, notebook: str) -> None:
    """Open a notebook, wait for its kernel, run every cell from the Run menu and wait until each
    code cell has an execution count (none pending)."""
    page.goto(f"{url}/lab/workspaces/{Path(notebook).stem}/tree/{notebook}?reset&token={TOKEN}")  # only this tab
    page.wait_for_selector(f"{NOTEBOOK} .jp-Cell", timeout=60_000)
    page.wait_for_selector(".jp-Toolbar-kernelName:has-text('Python 3')", timeout=60_000)
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=60_000)
    dialog = page.locator(".jp-Dialog:has-text('Select Kernel') .jp-mod-accept")
    if dialog.count():  # a busy machine can still ask: take the notebook's own kernel
        dialog.click()
    page.click("li.lm-MenuBar-item:has-text('Run')")
    page.click(".lm-Menu-item:has-text('Run All Cells')")
    try:
        page.wait_for_function(
            """() => {
                const prompts = [...document.querySelectorAll("%s .jp-CodeCell .jp-InputPrompt")];
                return prompts.length > 0 && prompts.every(p => /\\[\\d+\\]/.test(p.textContent));
            }""" % NOTEBOOK, timeout=RUN_TIMEOUT_MS, polling=500)
    except Exception:
        shot = Path(os.environ.get("PYTEST_TMPDIR", "/tmp")) / f"{notebook}.png"
        page.screenshot(path=str(shot), full_page=True)
        prompts = page.locator(f"{NOTEBOOK} .jp-CodeCell .jp-InputPrompt").all_inner_texts()
        outputs = page.locator(f"{NOTEBOOK} .jp-OutputArea-output").all_inner_texts()
        pytest.fail(f"{notebook} did not finish: prompts {prompts}; last output {outputs[-1:]}; screenshot {shot}")
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=60_000)


def check_outputs(page) -> None:
    """No cell raised, and every widget is a rendered widget."""
    failed = page.locator(f"{NOTEBOOK} .jp-OutputArea-output:has-text('Traceback (most recent call last)')")
    assert failed.count() == 0, failed.all_inner_texts()[0][-2000:]
    texts = page.locator(f"{NOTEBOOK} .jp-OutputArea-output").all_inner_texts()
    shown_as_text = [t[:120] for t in texts if any(marker in t for marker in WIDGET_AS_TEXT)]
    assert not shown_as_text, f"widgets shown as text or failing to render: {shown_as_text}"


def shutdown_sessions(url: str) -> None:
    """Stop the kernels a test started (closing the page leaves them running)."""
    with urllib.request.urlopen(f"{url}/api/sessions?token={TOKEN}", timeout=10) as reply:
        sessions = json.load(reply)
    for session in sessions:
        request = urllib.request.Request(f"{url}/api/sessions/{session['id']}?token={TOKEN}", method="DELETE")
        urllib.request.urlopen(request, timeout=30).close()


def panel_image(page, panel) -> str:
    """The `src` of the figure a panel's Output shows (a PNG data URL), once it is there."""
    image = panel.locator(".widget-output img").first
    image.wait_for(timeout=60_000)
    return image.get_attribute("src")


def wait_for_new_image(page, panel, before: str) -> str:
    deadline = time.time() + 60
    while time.time() < deadline:
        src = panel.locator(".widget-output img").first.get_attribute("src")
        if src and src != before:
            return src
        page.wait_for_timeout(250)
    pytest.fail("the panel's figure did not change after moving its control")


def open_panel(browser, lab: str, notebook: str, has: str, what: str):
    """Run a notebook in a new page and return (page, its one widget panel holding `has`)."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    run_all(page, lab, notebook)
    check_outputs(page)
    panels = page.locator(f"{NOTEBOOK} .jp-OutputArea-output .widget-vbox:has({has})")
    assert panels.count() == 1, f"the {what} did not render as a widget"
    return page, panels.first


def test_primer_temperature_slider_redraws_the_soft_targets(lab, browser):
    page, panel = open_panel(browser, lab, "01_distillation_primer.ipynb", ".widget-slider", "temperature panel")
    before = panel_image(page, panel)
    readout = panel.locator(".widget-readout").first
    assert readout.inner_text().strip() == "1"
    handle = panel.locator(".noUi-handle").first
    handle.focus()
    page.keyboard.press("ArrowRight")  # T = 1 -> 2
    page.wait_for_function("el => el.textContent.trim() === '2'", arg=readout.element_handle(), timeout=10_000)
    wait_for_new_image(page, panel, before)
    check_outputs(page)
    page.close()
    shutdown_sessions(lab)


def test_head_diversity_panel_redraws_for_another_measure(lab, browser):
    page, panel = open_panel(browser, lab, "05_head_diversity.ipynb", ".widget-select-multiple", "head diversity panel")
    before = panel_image(page, panel)
    measure = panel.locator(".widget-dropdown:has-text('measure') select")
    measure.select_option(label="spearman")
    after = wait_for_new_image(page, panel, before)
    measure.select_option(label="top-1 disagreement")
    wait_for_new_image(page, panel, after)
    check_outputs(page)
    page.close()
    shutdown_sessions(lab)


def test_explorer_brings_the_questions_where_heads_leave_their_teacher_first(lab, browser):
    page, panel = open_panel(browser, lab, "06_head_teacher_agreement.ipynb", ".widget-dropdown:has-text('order questions by')", "question explorer")
    panel.locator("table.cerberus").first.wait_for(timeout=60_000)
    header = panel.locator("table.cerberus th").all_inner_texts()
    assert "pooled (probability)" in header and any(h.endswith("(margin)") for h in header)
    order, question = (panel.locator(".widget-dropdown select").nth(i) for i in (0, 1))
    order.select_option(label="heads off their own teacher's top-1 first")
    # ipywidgets renders an option's spaces as no-break spaces: compare with every space as one kind
    page.wait_for_function("el => el.options[0].textContent.replace(/\\s/g, ' ').includes('heads off their teacher')",
                           arg=question.element_handle(), timeout=10_000)
    check_outputs(page)
    page.close()
    shutdown_sessions(lab)
