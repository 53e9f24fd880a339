"""Support for the browser tests: a ``streamlit run`` server in its own process group, and Streamlit-aware waits.

Nothing here imports Playwright at module level (pytest imports this file for doctests even when the browser tests
are skipped); the page helpers take Playwright ``Page`` objects.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]

SERVER_START_S = 60  # first start imports Streamlit, Ibis and DuckDB: ~2 s here, slower on a cold CI machine
RUN_TIMEOUT_MS = 30_000  # one script run (a cold Overview is ~1 s, validating an upload ~2 s)

APP_IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"][data-test-connection-state="CONNECTED"]'
EXCEPTION = '[data-testid="stException"]'
ERROR_ALERT = '[data-testid="stAlertContentError"]'


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class AppServer:
    """``streamlit run app.py`` on a free port over the store ``db``; its output goes to ``log_path``.

    Use as a context manager: the server's whole process group is stopped on exit.
    """

    def __init__(self, db: Path, log_path: Path) -> None:
        self.db = Path(db)
        self.log_path = Path(log_path)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._proc: subprocess.Popen | None = None

    def __enter__(self) -> AppServer:
        env = {**os.environ, "CRM_DB": str(self.db), "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false"}
        with open(self.log_path, "wb") as log:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(self.port),
                 "--server.address", "127.0.0.1", "--server.headless", "true"],
                cwd=PROJECT_DIR, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own process group: stopped as one, no leftovers
            )
        try:
            self._wait_healthy()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def pid(self) -> int:
        """The server's process id."""
        assert self._proc is not None, "the server is not running"
        return self._proc.pid

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + SERVER_START_S
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"streamlit exited with code {self._proc.returncode}:\n{self.log()}")
            try:
                with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"streamlit did not answer on {self.url} within {SERVER_START_S} s:\n{self.log()}")

    def stop(self) -> None:
        if self._proc is None:
            return
        pgid = self._proc.pid  # == the group id (start_new_session)
        try:
            os.killpg(pgid, signal.SIGTERM)
            self._proc.wait(timeout=10)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(pgid, signal.SIGKILL)
            self._proc.wait(timeout=10)
        try:  # anything left in the group (there should be nothing)
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self._proc = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def assert_no_tracebacks(self) -> None:
        """Errors in a run the browser never showed (e.g. one interrupted by the next click) only reach the log."""
        log = self.log()
        assert "Traceback" not in log, f"the server logged an error:\n{log}"


# --------------------------------------------------------------------------------------------- pages
def assert_healthy(page) -> None:
    """Fail on a Streamlit exception box, an error alert or a 'Page not found' dialog."""
    problems = [f"exception: {t}" for t in page.locator(EXCEPTION).all_inner_texts()]
    problems += [f"error: {t}" for t in page.locator(ERROR_ALERT).all_inner_texts()]
    problems += [f"dialog: {t}" for t in page.locator('[role="dialog"]').filter(has_text="Page not found")
                 .all_inner_texts()]
    assert not problems, f"{page.url}:\n" + "\n".join(problems)


def settle(page) -> None:
    """Wait until the app is connected and no script runs, then check the page for errors.

    Call it after waiting for the visible effect of an action (a run may not have started yet right after a click).
    """
    page.locator(APP_IDLE).wait_for(state="attached", timeout=RUN_TIMEOUT_MS)
    assert_healthy(page)


def visit(page, url: str) -> None:
    page.goto(url)
    page.locator('[data-testid="stMain"] h1').first.wait_for(timeout=RUN_TIMEOUT_MS)
    settle(page)


# Locators for the page's parts; assert on them with Playwright's ``expect``, which retries until the app has drawn.
def main_title(page):
    return page.locator('[data-testid="stMain"] h1').first


def nav_links(page):
    return page.locator('[data-testid="stSidebarNavLink"]')


def period_fields(page):
    """The sidebar period's start and end as hidden ISO date inputs (``to_have_value("2026-04-01")``)."""
    return page.locator('[data-testid="stSidebar"] [data-testid="stDateInput"] input[type="date"]')


def multiselect(page, label: str):
    return page.locator('[data-testid="stMultiSelect"]').filter(
        has=page.locator('[data-testid="stWidgetLabel"]', has_text=label))


def chips(page, label: str):
    """The chosen options of the multiselect called ``label`` (drawn a moment after the run: assert with expect)."""
    return multiselect(page, label).locator("[data-tag]")


def metric(page, label: str):
    """The KPI card whose label is exactly ``label``."""
    return page.locator('[data-testid="stMetric"]').filter(
        has=page.locator('[data-testid="stMetricLabel"]', has_text=re.compile(rf"^\s*{re.escape(label)}\s*$")))


def metric_value(page, label: str):
    """The value of the KPI card ``label``: assert with ``expect(...).to_have_text`` (cards are drawn one by one)."""
    return metric(page, label).locator('[data-testid="stMetricValue"]')


def metric_values(page):
    """The values of all KPI cards, in page order (assert with ``expect(...).to_have_text([...])``)."""
    return page.locator('[data-testid="stMetric"] [data-testid="stMetricValue"]')


def dataframe(scope, first_column: str):
    """The ``st.dataframe`` in ``scope`` whose first column is called ``first_column``."""
    header = scope.page.locator("table[role=grid] thead th").first.filter(has_text=re.compile(
        rf"^\s*{re.escape(first_column)}\s*$"))
    return scope.locator('[data-testid="stDataFrame"]').filter(has=header)


def grid_rows(dataframe, count: int) -> list[list[str]]:
    """The cells of an ``st.dataframe`` of ``count`` rows, once drawn (on a canvas; the grid keeps an accessible
    table for screen readers, which this reads)."""
    from playwright.sync_api import expect

    rows = dataframe.locator("table[role=grid] tbody tr")
    expect(rows).to_have_count(count)
    return rows.evaluate_all(
        "rows => rows.map(r => Array.from(r.querySelectorAll('td')).map(td => td.textContent.trim()))")


def wait_for_charts(page, count: int) -> None:
    """Wait until ``count`` Plotly charts have drawn their traces."""
    page.wait_for_function(
        "n => document.querySelectorAll('[data-testid=stPlotlyChart] .js-plotly-plot .trace').length >= n",
        arg=count, timeout=RUN_TIMEOUT_MS)


def screenshot_full_page(page, path: Path, width: int = 1400) -> None:
    """Screenshot the whole app at ``width``: Streamlit scrolls inside its main area, so grow the window to fit."""
    old = page.viewport_size
    height = 0
    for _ in range(5):  # the layout can change height once more after a resize
        needed = page.evaluate("() => document.querySelector('[data-testid=stMain]').scrollHeight")
        if needed == height:
            break
        height = needed
        page.set_viewport_size({"width": width, "height": height})
        page.wait_for_timeout(300)  # let charts re-layout to the new window
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=True, animations="disabled", caret="hide")
    page.set_viewport_size(old)


# --------------------------------------------------------------------------------------------- async pages
# The same checks as assert_healthy, as one script for Playwright's async API (many pages in one event loop).
PROBLEMS_JS = """() => {
  const texts = sel => Array.from(document.querySelectorAll(sel)).map(e => e.innerText.trim());
  return [
    ...texts('[data-testid="stException"]').map(t => 'exception: ' + t),
    ...texts('[data-testid="stAlertContentError"]').map(t => 'error: ' + t),
    ...texts('[role="dialog"]').filter(t => t.includes('Page not found')).map(t => 'dialog: ' + t),
  ];
}"""


async def assert_healthy_async(page, allowed_errors: tuple[str, ...] = ()) -> None:
    """:func:`assert_healthy` for an async Playwright page; error alerts containing one of ``allowed_errors`` (an
    expected refusal) pass."""
    problems = [p for p in await page.evaluate(PROBLEMS_JS)
                if not (p.startswith("error: ") and any(a in p for a in allowed_errors))]
    assert not problems, f"{page.url}:\n" + "\n".join(problems)


async def settle_async(page, timeout_ms: int = RUN_TIMEOUT_MS, allowed_errors: tuple[str, ...] = ()) -> None:
    """:func:`settle` for an async Playwright page."""
    await page.locator(APP_IDLE).wait_for(state="attached", timeout=timeout_ms)
    await assert_healthy_async(page, allowed_errors)


# The sidebar period as ISO dates [start, end], read from its date fields' year/month/day parts (Streamlit 1.67 draws
# a React Aria date field with no <input type=date>, so ``period_fields`` finds nothing there).
PERIOD_JS = """() => ['start', 'end'].map(side => {
  const group = document.querySelector(`[data-testid="stSidebar"] [role="group"][aria-label="Period ${side} date"]`);
  if (!group) return null;
  const part = t => group.querySelector(`[role="spinbutton"][data-type="${t}"]`)?.getAttribute('aria-valuenow');
  const [y, m, d] = ['year', 'month', 'day'].map(part);
  return y && m && d ? `${y.padStart(4, '0')}-${m.padStart(2, '0')}-${d.padStart(2, '0')}` : null;
})"""
