"""The ablation notebook in a real browser: JupyterLab + Debian Chromium driven by Playwright.

Run with ``make test-browser`` (it installs chromium and playwright when missing). The server
serves a temporary copy of ``notebooks/`` (JupyterLab autosaves, and the committed outputs must not
change) on 127.0.0.1 with a token, from isolated Jupyter config/runtime/settings folders. The test
runs ``11_ablations``, flips a switch, checks the parameter readout, presses Train (quick mode) and
waits for the new table row, then saves a screenshot to ``tests/ui/artifacts/``.
A second test opens ``06_lmswn`` and checks that its Mermaid block diagrams render (as SVG)
without running a cell, with screenshots of the skeleton and block diagrams.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.ui

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = REPO / "tests" / "ui" / "artifacts"
TOKEN = "sr-kit-browser-test"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-quic"]  # fmt: skip


def _requirements() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (make test-browser installs it)"
    if not Path(CHROMIUM).exists():
        return "Debian's chromium is not installed (make test-browser installs it as root)"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def _serve(name: str, cmd: list[str], env: dict, probe: str, log_path: Path):
    """Start a server, wait until ``probe`` answers (any HTTP status), stop it afterwards."""
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.time() + 60
            while True:
                try:
                    urllib.request.urlopen(probe, timeout=2)
                    break
                except urllib.error.HTTPError:
                    break  # an HTTP error is still an answer
                except OSError:
                    if proc.poll() is not None or time.time() > deadline:
                        pytest.fail(f"{name} did not start:\n" + log_path.read_text()[-3000:])
                    time.sleep(0.5)
            yield
        finally:
            proc.terminate()  # kernels go with the server
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    missing = _requirements()
    if missing:
        pytest.skip(missing)
    root = tmp_path_factory.mktemp("lab")
    shutil.copytree(REPO / "notebooks", root / "notebooks",
                    ignore=shutil.ignore_patterns(".ipynb_checkpoints"))  # fmt: skip
    settings = root / "settings"
    (settings / "@jupyterlab" / "apputils-extension").mkdir(parents=True)
    # no "get notified about Jupyter news?" toast over the page
    (
        settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    ).write_text(json.dumps({"fetchNews": "false"}))
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(root / "config"),
           "JUPYTER_RUNTIME_DIR": str(root / "runtime"), "JUPYTERLAB_SETTINGS_DIR": str(settings),
           "JUPYTERLAB_WORKSPACES_DIR": str(root / "workspaces"), "SR_KIT_QUICK": "1",
           "SR_KIT_THREADS": "2"}  # fmt: skip
    port = _free_port()
    cmd = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--ip=127.0.0.1",
        f"--port={port}",
        f"--ServerApp.token={TOKEN}",
        "--allow-root",
        f"--ServerApp.root_dir={root}",
    ]
    url = f"http://127.0.0.1:{port}"
    with _serve("JupyterLab", cmd, env, f"{url}/api/status?token={TOKEN}", root / "lab.log"):
        yield url


def test_ablation_notebook_panel_in_jupyterlab(lab):
    from playwright.sync_api import expect, sync_playwright

    t0 = time.time()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"{lab}/lab/tree/notebooks/11_ablations.ipynb?reset&token={TOKEN}")
        idle = page.get_by_text("| Idle")
        expect(idle).to_be_visible(timeout=90_000)
        page.get_by_role("menuitem", name="Run", exact=True).click()
        page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
        readout = page.locator(".sr-kit-readout").first
        expect(readout).to_contain_text("params: 785,148", timeout=120_000)
        expect(idle).to_be_visible(timeout=240_000)  # every cell has run
        assert page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']"
                            ).filter(has_text="Traceback").count() == 0  # fmt: skip

        # flip claim L2 off: the readout follows through the kernel
        page.get_by_role("checkbox", name="asym").first.click()
        expect(readout).to_contain_text("params: 536,316 (−248,832 vs full)", timeout=30_000)
        expect(readout).to_contain_text("params (deployed): 536,316")

        # train this setting (quick mode) and wait for its row in the ablation table
        page.get_by_role("button", name="Train").first.click()
        table = page.locator(".widget-html table").first
        expect(table).to_contain_text("asym=False", timeout=300_000)
        page.locator(".sr-kit-readout").first.scroll_into_view_if_needed()
        shot = ARTIFACTS / "ablation_panel.png"
        page.screenshot(path=str(shot), full_page=False)
        browser.close()
    print(f"browser test: {time.time() - t0:.0f} s; screenshot {shot}")
    assert shot.stat().st_size > 10_000


@pytest.fixture(scope="module")
def voila_app(tmp_path_factory):
    missing = _requirements()
    if missing:
        pytest.skip(missing)
    try:
        import voila  # noqa: F401
    except ImportError:
        pytest.skip("voila is not installed (make test-browser installs it)")
    root = tmp_path_factory.mktemp("voila")
    port = _free_port()
    env = {
        **os.environ,
        "SR_KIT_QUICK": "1",
        "SR_KIT_THREADS": "2",
        "SR_KIT_REGISTRY": str(root / "runs.sqlite"),  # not the user's registry
        "JUPYTER_CONFIG_DIR": str(root / "config"),
        "JUPYTER_RUNTIME_DIR": str(root / "rt"),
    }
    cmd = [sys.executable, "-m", "voila", str(REPO / "notebooks" / "apps" / "ablation_app.ipynb"),
           "--no-browser", f"--port={port}", "--Voila.ip=127.0.0.1"]  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    with _serve("Voila", cmd, env, f"{url}/voila/static/", root / "voila.log"):
        yield url


def test_ablation_app_in_voila(voila_app):
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.goto(voila_app)
        readout = page.locator(".sr-kit-readout").first
        expect(readout).to_contain_text("params: 785,148", timeout=120_000)
        page.get_by_role("checkbox", name="asym").first.click()
        expect(readout).to_contain_text("params: 536,316 (−248,832 vs full)", timeout=30_000)
        page.get_by_role("tab", name="SAFDNET").click()
        expect(page.locator(".sr-kit-readout").nth(1)).to_contain_text("params: 489,672")
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "voila_app.png"))
        browser.close()


def test_lmswn_diagrams_render_in_jupyterlab(lab):
    """06_lmswn's Mermaid diagrams render (JupyterLab 4 draws them as SVG images) without
    running a cell; screenshots of both go to ``tests/ui/artifacts/``."""
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1800})  # a whole diagram
        page.goto(f"{lab}/lab/tree/notebooks/06_lmswn.ipynb?reset&token={TOKEN}")
        expect(page.get_by_text("| Idle")).to_be_visible(timeout=90_000)
        # JupyterLab 4 renders a ```mermaid block as <div class="jp-RenderedMermaid"><figure>
        # <img src="data:image/svg+xml,..."> (the SVG as an image); a parse error instead adds
        # jp-mod-warning and shows the source in a <details>.
        diagrams = page.locator(".jp-RenderedMarkdown .jp-RenderedMermaid")
        for i in range(2):  # the skeleton and the block
            diagram = diagrams.nth(i)
            diagram.scroll_into_view_if_needed(timeout=60_000)
            svg = diagram.locator("figure img[src^='data:image/svg+xml']")
            expect(svg).to_be_visible(timeout=60_000)
            assert svg.evaluate("img => img.complete") and svg.bounding_box()["width"] > 300
        assert page.locator(".jp-RenderedMermaid.jp-mod-warning").count() == 0
        assert "flowchart" in diagrams.first.locator("figure img").get_attribute("src")  # as SVG
        diagrams.first.scroll_into_view_if_needed()
        shot = ARTIFACTS / "lmswn_diagram.png"
        diagrams.first.screenshot(path=str(shot))
        diagrams.nth(1).screenshot(path=str(ARTIFACTS / "lmswn_block_diagram.png"))
        page.screenshot(path=str(ARTIFACTS / "lmswn_notebook.png"))
        browser.close()
    assert shot.stat().st_size > 5_000
