"""The app in a real browser: `streamlit run` on 127.0.0.1 and headless Chromium through selenium."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from app_helpers import APP, REPO, mart

pytestmark = pytest.mark.slow

CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
CHROMEDRIVER = shutil.which("chromedriver")
SCREENSHOT_ENV = "TOKENBENCH_SCREENSHOT_DIR"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def app_url(e2e_run: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = _free_port()
    log = tmp_path_factory.mktemp("streamlit") / "streamlit.log"
    with log.open("w") as out:
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "streamlit",
                "run",
                str(APP),
                "--server.headless",
                "true",
                "--server.address",
                "127.0.0.1",
                "--server.port",
                str(port),
                "--browser.gatherUsageStats",
                "false",
                "--",
                "--warehouse",
                str(e2e_run["warehouse"]),
            ],
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            assert server.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "streamlit did not become healthy:\n" + log.read_text()
            time.sleep(0.3)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if CHROMIUM is None or CHROMEDRIVER is None:
        pytest.skip("headless Chromium and chromedriver are needed (Debian: apt-get install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,2400"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def _wait_for_text(driver: Any, *needles: str, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        text = driver.execute_script("return document.body ? document.body.innerText : ''") or ""
        if all(n in text for n in needles) and "Running..." not in text:
            return text
        time.sleep(0.5)
    raise AssertionError(f"page never showed {needles!r}; it showed:\n{text[:3000]}")


def test_summary_page_in_a_browser_shows_the_best_row_and_failed_levels(
    e2e_run: dict[str, Any], app_url: str, browser: Any, tmp_path: Path
) -> None:
    best = mart(e2e_run["warehouse"], "select * from marts.fct_recommendations where is_best_price_performance")
    failed = mart(e2e_run["warehouse"], "select count(*) as n from marts.fct_failed_experiments")
    row = best.iloc[0]
    browser.get(app_url)
    text = _wait_for_text(
        browser, "Results for performance benchmarking", "transactions_per_minute", "Failed experiments", "Endpoint"
    )
    # st.table renders an HTML table: the Information cell, then its Value cell.
    assert re.search(rf"transactions_per_minute\s+{row['transactions_per_minute']:.0f}\s", text), text[:3000]
    assert re.search(rf"price_per_txn\s+{row['price_per_txn']:.6f}\s", text)
    assert f"There were a total of {int(failed['n'].iloc[0])} experiment run(s)" in text
    assert "Traceback" not in text
    time.sleep(2)  # let the Vega charts finish drawing before the screenshot
    shot = tmp_path / "summary.png"
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
    if os.environ.get(SCREENSHOT_ENV):
        target = Path(os.environ[SCREENSHOT_ENV])
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, target / "summary.png")


def test_a_shared_link_opens_the_budget_preview_in_a_browser(app_url: str, browser: Any) -> None:
    browser.get(f"{app_url}/summary?budget_latency_s=10")
    text = _wait_for_text(browser, "PREVIEW", "levels would meet every budget", "Preview verdicts")
    assert "Traceback" not in text
    assert "budget_latency_s=10" in browser.current_url
