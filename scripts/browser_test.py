#!/usr/bin/env python3
"""End-to-end test in a real browser: JupyterLab runs lesson 01 in headless Chromium.

    python scripts/browser_test.py                 # lesson 01, quick mode
    python scripts/browser_test.py --notebook notebooks/03_attention.ipynb

Needs Debian's ``chromium`` and ``chromium-driver`` packages (``apt-get install chromium
chromium-driver``) and the ``selenium`` package (``pip install selenium``); nothing
downloads a browser of its own. Steps:

1. start JupyterLab headless on a free localhost port, in quick and offline mode, with
   the application object exposed to the page;
2. open the lesson in headless Chromium and wait for its kernel;
3. run all cells with JupyterLab's own "Run All Cells" command and wait until they finish;
4. check that every code cell ran, that no cell shows an error, and that at least one
   plot was rendered as an image;
5. save a screenshot to ``assets/browser_test_<lesson>.png``.

Exit code 0 when all checks pass. The notebook file is not modified (nothing is saved).
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM_FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--window-size=1400,1000"]

# JavaScript run in the page: the state of the notebook model, as JupyterLab itself sees it.
STATE_JS = """
const app = window.jupyterapp;
if (!app) { return {ready: false, why: 'no app'}; }
let panel = null;
for (const w of app.shell.widgets('main')) {
  if (w.context && w.context.path && w.context.path.endsWith(arguments[0])) { panel = w; }
}
if (!panel || !panel.content || !panel.content.model || !panel.sessionContext) { return {ready: false, why: 'no notebook'}; }
const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
const cells = [];
const model = panel.content.model;
for (let i = 0; i < model.cells.length; i++) {
  const c = model.cells.get(i);
  if (c.type !== 'code') { continue; }
  const outs = [];
  for (let j = 0; j < c.outputs.length; j++) {
    const o = c.outputs.get(j);
    outs.push({type: o.type, ename: o.toJSON().ename || '', png: !!(o.data && o.data['image/png'])});
  }
  cells.push({count: c.executionCount, outputs: outs});
}
return {ready: true, kernel: kernel ? kernel.status : 'none', busy: panel.sessionContext.kernelDisplayStatus,
        cells: cells, images: document.querySelectorAll('.jp-RenderedImage img').length};
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, seconds: float) -> None:
    import urllib.request

    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"JupyterLab did not answer at {url} within {seconds:.0f} s")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--notebook", default="notebooks/01_text_preprocessing_and_tokenization.ipynb")
    parser.add_argument("--timeout", type=float, default=600, help="seconds for running all cells")
    parser.add_argument("--full", action="store_true", help="full size instead of quick mode")
    args = parser.parse_args(argv)

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if not chromium or not driver_path:
        print("needs Debian's chromium and chromium-driver: apt-get install chromium chromium-driver")
        return 2
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        print("needs selenium: pip install selenium")
        return 2

    notebook = Path(args.notebook)
    if not (ROOT / notebook).exists():
        print(f"no such notebook: {notebook}")
        return 2
    port, token = free_port(), secrets.token_hex(16)
    env = dict(os.environ, TEXTFT_QUICK="0" if args.full else "1", TEXTFT_OFFLINE="1", MPLBACKEND="module://matplotlib_inline.backend_inline")
    env.setdefault("TRITON_INTERPRET", "1")
    lab = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}", "--ServerApp.ip=127.0.0.1",
         f"--IdentityProvider.token={token}", "--LabApp.expose_app_in_browser=True", "--allow-root",
         f"--ServerApp.root_dir={ROOT}", "--ServerApp.disable_check_xsrf=True"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={ROOT / '.cache' / f'chromium-{port}'}")
    browser = None
    failures: list[str] = []
    try:
        base = f"http://127.0.0.1:{port}"
        wait_http(f"{base}/api/status?token={token}", 60)
        browser = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
        browser.set_script_timeout(30)
        browser.get(f"{base}/lab/tree/{notebook.as_posix()}?token={token}")
        deadline = time.time() + 120
        state = {}
        while time.time() < deadline:
            state = browser.execute_script(STATE_JS, notebook.name) or {}
            if state.get("ready") and state.get("kernel") == "idle":
                break
            time.sleep(1)
        else:
            raise TimeoutError(f"the notebook's kernel did not start: {state}")
        n_cells = len(state["cells"])
        print(f"opened {notebook} ({n_cells} code cells); running all cells ...", flush=True)
        start = time.time()
        browser.execute_script(
            "const app = window.jupyterapp;"
            "for (const w of app.shell.widgets('main')) {"
            "  if (w.context && w.context.path.endsWith(arguments[0])) { app.shell.activateById(w.id); }"
            "}"
            "return app.commands.execute('notebook:run-all-cells');", notebook.name)
        while time.time() - start < args.timeout:
            time.sleep(2)
            state = browser.execute_script(STATE_JS, notebook.name)
            done = all(c["count"] is not None for c in state["cells"])
            errors = [i for i, c in enumerate(state["cells"]) if any(o["type"] == "error" for o in c["outputs"])]
            if errors or (done and state["busy"] == "idle"):
                break
        else:
            failures.append(f"cells did not finish within {args.timeout:.0f} s")
        print(f"ran in {time.time() - start:.0f} s", flush=True)
        for i, cell in enumerate(state["cells"]):
            for out in cell["outputs"]:
                if out["type"] == "error":
                    failures.append(f"code cell {i} shows an error: {out['ename']}")
            if cell["count"] is None:
                failures.append(f"code cell {i} did not run")
        pngs = sum(o["png"] for c in state["cells"] for o in c["outputs"])
        if pngs == 0 or state["images"] == 0:
            failures.append(f"no plot was rendered (image outputs: {pngs}, <img> in the page: {state['images']})")
        # Scroll to the first plot, so the screenshot shows a rendered figure.
        browser.execute_script("const img = document.querySelector('.jp-RenderedImage img');"
                               "if (img) { img.scrollIntoView({block: 'center'}); }")
        time.sleep(1)
        shot = ROOT / "assets" / f"browser_test_{notebook.stem[:2]}.png"
        browser.save_screenshot(str(shot))
        print(f"screenshot: {shot.relative_to(ROOT)}; plots rendered: {state['images']}")
    except Exception as err:
        failures.append(f"{type(err).__name__}: {err}")
    finally:
        if browser is not None:
            browser.quit()
        lab.terminate()
        try:
            lab.wait(timeout=20)
        except subprocess.TimeoutExpired:
            lab.kill()
        shutil.rmtree(ROOT / ".cache" / f"chromium-{port}", ignore_errors=True)
    for failure in failures:
        print("FAIL:", failure)
    print("browser test passed" if not failures else f"browser test failed ({len(failures)} problem(s))")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
