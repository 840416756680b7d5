"""The labs as a learner sees them: JupyterLab in a real browser, Run All, and what is on the screen.

One JupyterLab server on 127.0.0.1 (random free port, a token) serves a
temporary copy of the notebooks (Run All must not write outputs into the
repository). Debian's Chromium, headless, is driven by Selenium through
Debian's chromedriver, named by path so that Selenium Manager never looks for
(or downloads) a driver. The window is 1366 px wide — a common laptop — with
JupyterLab's file browser open, as a learner has it.

For each lab the notebook is opened, every cell run (the command the Run
menu's "Run All Cells" invokes), and then the page itself is checked: no
error output, every plot the kernel sent is a loaded image, every widget
rendered (not "Loading widget…" / "Error displaying widget"), no severe
console errors, and no CLI table (``pre.labkit-cli``) broken onto more line
boxes than it has lines. In Lab 3 the canary playground must answer a slider
change. The kernel is shut down before the next lab.

Skipped without Chromium (conftest.require_tool), required in CI.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from conftest import BROWSER_INSTALL, BUILD, NOTEBOOKS, free_port, require_tool

pytestmark = pytest.mark.browser

LABS = sorted(p.name for p in NOTEBOOKS.glob("[0-9][0-9]-*.ipynb"))
WIDTH, HEIGHT = 1366, 768
SHOTS = BUILD.parent / "browser"  # build/browser/NN-lab.png: each lab as the learner saw it
#: Run All of one lab, widgets included, in wall seconds (the slowest lab runs in ~15 s headless).
RUN_TIMEOUT = 300

# Settings a fresh JupyterLab would otherwise fetch from the network (news, update checks) are off.
_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings":
        '{"fetchNews": "false", "checkForUpdates": false}',
}


@pytest.fixture(scope="module")
def lab_server(tmp_path_factory):
    """A JupyterLab server on loopback over a copy of the notebooks: (base url, token, folder)."""
    require_tool("chromium", BROWSER_INSTALL)  # before starting anything
    root = tmp_path_factory.mktemp("jupyterlab")
    work = root / "notebooks"
    work.mkdir()
    for name in LABS:
        shutil.copy(NOTEBOOKS / name, work / name)
    settings = root / "settings"
    for rel, text in _SETTINGS.items():
        (settings / rel).parent.mkdir(parents=True, exist_ok=True)
        (settings / rel).write_text(text)
    port, token = free_port(), uuid.uuid4().hex
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(root / "config"), "JUPYTER_RUNTIME_DIR": str(root / "runtime"),
           "IPYTHONDIR": str(root / "ipython")}
    env.pop("LABKIT_HEADLESS", None)  # a learner's kernel: interactive widgets, not the batch runs' static output
    env.pop("MPLBACKEND", None)
    log = (root / "jupyterlab.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
         "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}", f"--notebook-dir={work}",
         "--allow-root", "--expose-app-in-browser", "--LabApp.news_url=None",
         "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
         f"--LabApp.user_settings_dir={settings}", f"--LabApp.workspaces_dir={root / 'workspaces'}"],
        stdout=log, stderr=subprocess.STDOUT, env=env, cwd=work,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2).read()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("JupyterLab did not start:\n" + (root / "jupyterlab.log").read_text()[-3000:])
                time.sleep(0.3)
        yield base, token, work
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


@pytest.fixture(scope="module")
def browser(lab_server):
    """Headless Chromium at 1366×768 on JupyterLab, the file browser open, the app ready."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium = require_tool("chromium", BROWSER_INSTALL)
    chromedriver = require_tool("chromedriver", BROWSER_INSTALL)
    base, token, _ = lab_server
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    profile = Path(lab_server[2]).parent / "chromium-profile"
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--no-first-run", "--disable-default-apps", "--disable-extensions",
                f"--user-data-dir={profile}", f"--window-size={WIDTH},{HEIGHT}"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # With the driver's path given Selenium does not consult Selenium Manager, which would otherwise look for
    # (and download) a driver and a browser; make any such attempt fail loudly instead.
    from selenium.webdriver.common.selenium_manager import SeleniumManager

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(SeleniumManager, "binary_paths", _no_selenium_manager)
        driver = webdriver.Chrome(service=Service(executable_path=chromedriver), options=options)
    try:
        driver.set_script_timeout(RUN_TIMEOUT)
        driver.get(f"{base}/lab?reset&token={token}")
        _wait(driver, "return !!(window.jupyterapp && document.querySelector('.jp-DirListing-content'))", 60,
              "JupyterLab's file browser")
        _wait(driver, "return !!document.querySelector('.jp-FileBrowser') && "
                      "document.querySelector('.jp-FileBrowser').offsetWidth > 0", 10, "the open file browser")
        driver.get_log("browser")  # start each lab's console check from here
        yield driver
    finally:
        driver.quit()


def _no_selenium_manager(*args, **kwargs):
    raise AssertionError("Selenium Manager was asked for a driver or browser: it would download one")


def _wait(driver, script: str, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while True:
        value = driver.execute_script(script)
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.25)


_RUN_ALL = """
const [path, done] = [arguments[0], arguments[arguments.length - 1]];
(async () => {
  const app = window.jupyterapp;
  const panel = await app.commands.execute('docmanager:open', {path, factory: 'Notebook'});
  await panel.context.ready;
  await panel.sessionContext.ready;
  app.shell.activateById(panel.id);
  window.labkitPanel = panel;  // headless Chromium has no focus, so the shell's currentWidget can be null
  const started = performance.now();
  const ok = await app.commands.execute('notebook:run-all-cells', {widgetId: panel.id});
  done({ok, seconds: (performance.now() - started) / 1000});
})().catch(err => done({error: String(err && err.stack || err)}));
"""

_SHUT_DOWN = """
const done = arguments[arguments.length - 1];
(async () => {
  const panel = window.labkitPanel;
  await panel.sessionContext.shutdown();
  panel.dispose();  // a scratch copy: close without saving or asking
  done(true);
})().catch(err => done(String(err)));
"""

# What the page shows, read from the DOM; the notebook model only says how many images were sent.
_INSPECT = """
const panel = window.labkitPanel;
const node = panel.node;
const texts = sel => [...node.querySelectorAll(sel)].map(e => e.innerText.slice(0, 500));
const cells = panel.content.model.cells;
let sentImages = 0, notRun = 0;
const widgets = [];
for (let i = 0; i < cells.length; i++) {
  const cell = cells.get(i);
  if (cell.type !== 'code') continue;
  if (cell.sharedModel.getSource().trim() && cell.executionCount === null) notRun++;
  const views = panel.content.widgets[i].outputArea.widgets;
  for (let j = 0; j < cell.outputs.length; j++) {
    const data = cell.outputs.get(j).data;
    if ('image/png' in data) sentImages++;
    if (!('application/vnd.jupyter.widget-view+json' in data)) continue;
    // The view renders into this output's node: a child with the jupyter-widgets class; a view that failed
    // leaves ipywidgets' error view or text; a widget closed by the kernel (a finished progress bar) leaves
    // the node empty.
    const out = views[j] && views[j].node.querySelector('.jp-OutputArea-output');
    const text = out ? out.textContent : '';
    widgets.push({rendered: !!(out && out.querySelector(':scope > .jupyter-widgets')),
                  closed: !!out && out.children.length === 0 && !text.trim(),
                  text: text.slice(0, 200), cell: i});
  }
}
const images = [...node.querySelectorAll('.jp-OutputArea-output img')]
  .map(img => ({loaded: img.complete && img.naturalWidth > 0, width: img.getBoundingClientRect().width}));
const tables = [...node.querySelectorAll('pre.labkit-cli')].map(pre => {
  const range = document.createRange();
  range.selectNodeContents(pre);
  const tops = new Set([...range.getClientRects()].filter(r => r.width > 0).map(r => Math.round(r.top)));
  const lines = pre.textContent.split('\\n').filter(line => line.length > 0);
  return {lines: lines.length, boxes: tops.size, scrollWidth: pre.scrollWidth, clientWidth: pre.clientWidth,
          widest: Math.max(...lines.map(l => l.length)), head: lines[0].slice(0, 60),
          whiteSpace: getComputedStyle(pre).whiteSpace};
});
// A table printed to stdout instead (print(cli_text(...))): JupyterLab wraps stream text at the window's edge.
const lineBoxes = pre => {
  const range = document.createRange();
  range.selectNodeContents(pre);
  return new Set([...range.getClientRects()].filter(r => r.width > 0).map(r => Math.round(r.top))).size;
};
const printedTables = [...node.querySelectorAll('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stdout"] pre')]
  .map(pre => {
    const lines = pre.textContent.split('\\n').filter(line => line.length > 0);
    const columnar = lines.filter(line => /\\S {3,}\\S/.test(line)).length;  // cells apart by 3+ spaces
    return {lines: lines.length, boxes: lineBoxes(pre), table: columnar >= 2 && columnar >= lines.length / 2,
            head: (lines[0] || '').slice(0, 60)};
  }).filter(t => t.table);
const fileBrowser = document.querySelector('.jp-FileBrowser');
return {
  dialogs: [...document.querySelectorAll('.jp-Dialog')].map(d => d.innerText.slice(0, 300)),
  errors: texts('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.error"]'),
  stderr: texts('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'),
  notRun,
  pageText: node.textContent,  // innerText leaves out cells the browser has not laid out yet
  sentImages, images, widgets, tables, printedTables,
  notebookWidth: node.getBoundingClientRect().width,
  fileBrowserWidth: fileBrowser ? fileBrowser.getBoundingClientRect().width : 0,
};
"""

#: What JupyterLab and ipywidgets 8 put on the page instead of a widget (a pending view; a view that failed to
#: load: "Error displaying widget", or the error view's "Click to show javascript error.").
_BAD_WIDGET_TEXT = ("Loading widget", "Error displaying widget", "Error rendering output", "javascript error")


def _inspect(driver) -> dict:
    """The page after Run All, once widgets have had time to render."""
    deadline = time.monotonic() + 30
    while True:
        seen = driver.execute_script(_INSPECT)
        if not any(bad in seen["pageText"] for bad in _BAD_WIDGET_TEXT) or time.monotonic() > deadline:
            return seen
        time.sleep(0.5)


def _severe_console_errors(driver) -> list[str]:
    return [f"{e.get('source')}: {e['message']}" for e in driver.get_log("browser") if e.get("level") == "SEVERE"]


def _problems(seen: dict) -> list[str]:
    """Everything a learner would see go wrong, one line each (empty: the lab looks right)."""
    problems = [f"error output: {e}" for e in seen["errors"]]
    problems += [f"stderr output: {e}" for e in seen["stderr"]]
    problems += [f"a dialog covers the page: {d!r}" for d in seen["dialogs"]]
    problems += [f"page shows {bad!r}" for bad in _BAD_WIDGET_TEXT if bad in seen["pageText"]]
    if seen["notRun"]:
        problems.append(f"{seen['notRun']} code cell(s) never ran")
    loaded = [i for i in seen["images"] if i["loaded"] and i["width"] > 0]
    if len(loaded) < seen["sentImages"]:
        problems.append(f"{seen['sentImages']} plot(s) sent, {len(loaded)} shown")
    problems += [f"widget not rendered (cell {w['cell']}): {w['text'][:80]!r}" for w in seen["widgets"]
                 if not w["closed"] and (not w["rendered"] or any(b in w["text"] for b in _BAD_WIDGET_TEXT))]
    for t in seen["tables"]:
        if t["boxes"] != t["lines"]:
            problems.append(f"CLI table wraps: {t['lines']} lines drawn as {t['boxes']} line boxes "
                            f"({t['widest']} characters wide): {t['head']!r}")
        elif t["whiteSpace"] != "pre":  # fits this window, but would wrap in a narrower one
            problems.append(f"CLI table may wrap (white-space: {t['whiteSpace']}): {t['head']!r}")
    problems += [f"printed table wraps: {t['lines']} lines drawn as {t['boxes']} line boxes "
                 f"(show it with labkit.cli_text as the cell's value): {t['head']!r}"
                 for t in seen["printedTables"] if t["boxes"] != t["lines"]]
    return problems


def _playground_answers_a_slider_change(driver) -> str:
    """Move stepWeight from 5 to 8 with the keyboard, press Run; the panel must report a run with stepWeight 8."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    panel = driver.execute_script("""
        return [...document.querySelectorAll('.widget-vbox')]
          .find(box => box.textContent.includes('Canary playground') && box.querySelector('.widget-slider'));""")
    assert panel is not None, "the canary playground panel is not on the page"
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", panel)
    slider = panel.find_elements(By.CSS_SELECTOR, ".widget-slider")[0]
    assert "stepWeight" in slider.text
    handle = slider.find_element(By.CSS_SELECTOR, ".noUi-handle")
    driver.execute_script("arguments[0].focus();", handle)
    handle.send_keys(Keys.ARROW_RIGHT, Keys.ARROW_RIGHT, Keys.ARROW_RIGHT)
    readout = slider.find_element(By.CSS_SELECTOR, ".widget-readout")
    assert readout.text.strip() == "8", f"the slider reads {readout.text!r} after three steps right from 5"
    time.sleep(1.0)  # ipywidgets throttles a dragged slider's updates to the kernel: let the last one land first
    button = next(b for b in panel.find_elements(By.CSS_SELECTOR, "button") if "Run the canary" in b.text)
    button.click()
    output = panel.find_element(By.CSS_SELECTOR, ".widget-output")
    deadline = time.monotonic() + 60  # a playground run takes about a second
    while not ("stepWeight 8," in output.text and output.find_elements(By.CSS_SELECTOR, "img")):
        assert time.monotonic() < deadline, f"the playground did not answer; it shows {output.text!r}"
        time.sleep(0.5)
    return output.text


def _screenshot(driver, seen: dict, name: str) -> Path:
    """The lab scrolled to its widest CLI table (or its end), as a learner would see it."""
    for _ in range(3):  # offscreen cells are laid out as they come into view: aim again once they have
        driver.execute_script("""
            const pres = [...document.querySelectorAll('pre.labkit-cli')];
            const widest = pres.sort((a, b) => b.textContent.length - a.textContent.length
                                              + 1000 * (b.scrollWidth - b.clientWidth - a.scrollWidth + a.clientWidth))[0];
            if (widest) widest.scrollIntoView({block: 'center'});""")
        time.sleep(0.3)
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{Path(name).stem}.png"
    driver.save_screenshot(str(path))
    summary = {k: v for k, v in seen.items() if k != "pageText"}
    path.with_suffix(".json").write_text(json.dumps(summary, indent=1))
    return path


@pytest.mark.parametrize("name", LABS)
def test_lab_runs_and_reads_well_in_jupyterlab(name, browser):
    result = browser.execute_async_script(_RUN_ALL, name)
    try:
        assert "error" not in result, result.get("error")
        seen = _inspect(browser)
        problems = _problems(seen)
        problems += [f"console: {e}" for e in _severe_console_errors(browser)]
        assert seen["fileBrowserWidth"] > 0, "the file browser should be open, as a learner has it"
        _screenshot(browser, seen, name)
        assert not problems, f"{name} in JupyterLab at {WIDTH}px:\n" + "\n".join(problems)
        assert result["ok"], f"Run All reported failure in {name}"
        if name.startswith("03-"):
            _playground_answers_a_slider_change(browser)
            assert not _severe_console_errors(browser)
    finally:
        browser.execute_async_script(_SHUT_DOWN)
