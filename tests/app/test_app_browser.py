"""The app in a real browser: `streamlit run` on 127.0.0.1 and headless Chromium through selenium, at 1440x900.

The warehouse holds the end-to-end run and a newer, non-streamed one, so a link naming the older run must open it
rather than the default. Every page is opened by its own path; its charts must fit their columns, use their
width, keep every label inside the drawing and not overlap each other. With $TOKENBENCH_SCREENSHOT_DIR set, a
full-page screenshot of every page is saved there.
"""

from __future__ import annotations

import itertools
import os
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

from collector.landing import run_dirs
from collector.outputs import sentences
from tests.app.app_helpers import APP, REPO, mart
from tests.conftest import config_dict, run_cli, sim_experiment, write_config

pytestmark = pytest.mark.slow

CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
CHROMEDRIVER = shutil.which("chromedriver")
SCREENSHOT_ENV = "TOKENBENCH_SCREENSHOT_DIR"
VIEWPORT = (1440, 900)
# Each page's own path and the title it shows. The Summary, titled by the run's models, is at /summary and at the
# root, where the app opens.
PAGES = {
    "": None,
    "summary": None,
    "sweep": "Sweep",
    "requests": "Requests",
    "telemetry": "Telemetry",
    "compare": "Compare",
}
NOT_FOUND = "Page not found"
SECOND_EXPERIMENT = "llama8b-browser-nostream"
TOLERANCE_PX = 1.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def two_runs(e2e_run: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A copy of the end-to-end results with a newer run added by the real CLI (not streamed, so its TTFT and
    TPOT histograms have to say why they are empty)."""
    work = tmp_path_factory.mktemp("two-runs")
    results = work / "results"
    shutil.copytree(e2e_run["results"], results, ignore=shutil.ignore_patterns("reports", "*.lock"))
    endpoint = {"type": "simulated", "speedup": 20, "mean_output_tokens": 20, "stream": False}
    experiment = sim_experiment(SECOND_EXPERIMENT, endpoint=endpoint, concurrency_levels=[1, 2], requests_per_level=6)
    cfg = write_config(work / "second.yml", config_dict([experiment], run_name="browser-second"))
    proc = run_cli("run", "--config", str(cfg), "--results-dir", str(results), timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (newer,) = [p.name for p in run_dirs(results) if p.name != e2e_run["run_id"]]
    return {"warehouse": results / "tokenbench.duckdb", "older": e2e_run["run_id"], "newer": newer}


@pytest.fixture(scope="module")
def app_url(two_runs: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
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
                str(two_runs["warehouse"]),
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


def _viewport(driver: Any, width: int, height: int) -> None:
    """The page's own size in CSS pixels (a window's size would include the browser's frame)."""
    metrics = {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if CHROMIUM is None or CHROMEDRIVER is None:
        pytest.skip("headless Chromium and chromedriver are needed (Debian: apt-get install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--hide-scrollbars"):
        options.add_argument(arg)
    options.add_argument(f"--window-size={VIEWPORT[0]},{VIEWPORT[1]}")
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    try:
        _viewport(driver, *VIEWPORT)
        yield driver
    finally:
        driver.quit()


def _text(driver: Any) -> str:
    return str(driver.execute_script("return document.body ? document.body.innerText : ''") or "")


def _wait_for_text(driver: Any, *needles: str, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        text = _text(driver)
        if all(n in text for n in needles) and "Running..." not in text:
            assert NOT_FOUND not in text, text[:3000]
            return text
        time.sleep(0.5)
    raise AssertionError(f"page never showed {needles!r}; it showed:\n{text[:3000]}")


# Every chart on the page: the box it draws in, the box of the column (block) holding it, and the boxes of its
# texts (axis titles and labels, legends, chart titles).
CHART_BOXES = """
const box = (r) => ({left: r.left, right: r.right, top: r.top, bottom: r.bottom});
return [...document.querySelectorAll('[data-testid="stVegaLiteChart"]')].map((chart, index) => {
  const drawn = chart.querySelector('svg, canvas');
  const column = chart.closest('[data-testid="stElementContainer"]').parentElement;
  const title = chart.querySelector('.role-title-text text');
  return {
    index: index,
    title: title ? title.textContent : '',
    drawn: drawn ? box(drawn.getBoundingClientRect()) : null,
    column: box(column.getBoundingClientRect()),
    texts: [...chart.querySelectorAll('svg text')]
      .filter((t) => t.textContent.trim() !== '')
      .map((t) => ({text: t.textContent, ...box(t.getBoundingClientRect())})),
  };
});
"""


def _settled(driver: Any, timeout: float = 60) -> list[dict[str, Any]]:
    """The page's charts once the script has finished and each has drawn (the same boxes twice in a row)."""
    deadline = time.monotonic() + timeout
    previous: list[dict[str, Any]] | None = None
    while time.monotonic() < deadline:
        time.sleep(1.0)
        if "Running..." in _text(driver):
            continue
        charts = driver.execute_script(CHART_BOXES)
        drawn = all(c["drawn"] and c["drawn"]["right"] - c["drawn"]["left"] > 0 for c in charts)
        if drawn and charts == previous:
            return list(charts)
        previous = charts
    raise AssertionError(f"the charts never settled: {previous!r}")


def _open(driver: Any, url: str, path: str, run_id: str, title: str | None) -> list[dict[str, Any]]:
    driver.get(f"{url}/{path}?run={run_id}")
    deadline = time.monotonic() + 60
    heading = ""
    while time.monotonic() < deadline:
        heading = str(driver.execute_script("const h = document.querySelector('h1'); return h ? h.innerText : ''"))
        if heading and (title is None or heading.strip() == title):
            break
        time.sleep(0.5)
    assert heading, f"/{path} showed no title"
    if title is not None:
        assert heading.strip() == title, f"/{path} opened {heading!r}"
    charts = _settled(driver)
    assert NOT_FOUND not in _text(driver), f"/{path} said: {NOT_FOUND}"
    return charts


# Every table's scroller: how wide its columns are against the width it shows (the grid scrolls beyond that).
TABLE_WIDTHS = """
return [...document.querySelectorAll('[data-testid="stDataFrame"] .dvn-scroller')].map(
  (s) => ({scroll: s.scrollWidth, client: s.clientWidth}));
"""
# Pages whose level tables must fit the 1440 px screen without scrolling sideways.
TABLES_FIT = ("sweep", "compare")


def _picked_run(driver: Any, timeout: float = 30) -> str:
    """The run picker's shown value (its label ends with the run id in parentheses), once the sidebar has it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = driver.execute_script(
            "const i = document.querySelector('input[aria-label=\"Run\"]'); return i && i.value"
        )
        if value:
            return str(value)
        time.sleep(0.5)
    raise AssertionError("the sidebar never showed the run picker")


def _inside(inner: dict[str, float], outer: dict[str, float]) -> bool:
    return (
        inner["left"] >= outer["left"] - TOLERANCE_PX
        and inner["right"] <= outer["right"] + TOLERANCE_PX
        and inner["top"] >= outer["top"] - TOLERANCE_PX
        and inner["bottom"] <= outer["bottom"] + TOLERANCE_PX
    )


def _overlap(a: dict[str, float], b: dict[str, float]) -> float:
    width = min(a["right"], b["right"]) - max(a["left"], b["left"])
    height = min(a["bottom"], b["bottom"]) - max(a["top"], b["top"])
    return max(0.0, width) * max(0.0, height)


def _layout_problems(charts: list[dict[str, Any]]) -> list[str]:
    """What a reader would see as clipped or overlapping: a chart wider than its column or narrower than it
    (fixed-size in a wide column), a text outside its chart's drawing, two charts over one another."""
    problems = []
    for c in charts:
        name = f"chart {c['index']} {c['title']!r}"
        drawn, column = c["drawn"], c["column"]
        if drawn["left"] < column["left"] - TOLERANCE_PX or drawn["right"] > column["right"] + TOLERANCE_PX:
            problems.append(f"{name} overflows its column: {drawn} vs {column}")
        if drawn["right"] - drawn["left"] < 0.95 * (column["right"] - column["left"]):
            problems.append(f"{name} does not use its column's width: {drawn} vs {column}")
        clipped = [t["text"] for t in c["texts"] if not _inside(t, drawn)]
        if clipped:
            problems.append(f"{name} has text outside its drawing: {clipped[:5]}")
    for a, b in itertools.combinations(charts, 2):
        if _overlap(a["drawn"], b["drawn"]) > TOLERANCE_PX:
            problems.append(f"charts {a['index']} and {b['index']} overlap: {a['drawn']} and {b['drawn']}")
    return problems


def _screenshot(driver: Any, name: str) -> None:
    """A full-page screenshot: the viewport stretched to the page's height, then set back."""
    target = os.environ.get(SCREENSHOT_ENV)
    if not target:
        return
    folder = Path(target)
    folder.mkdir(parents=True, exist_ok=True)
    height = int(driver.execute_script("return document.querySelector('[data-testid=\"stMain\"]').scrollHeight"))
    _viewport(driver, VIEWPORT[0], max(VIEWPORT[1], height))
    try:
        time.sleep(1.5)
        assert driver.save_screenshot(str(folder / f"{name}.png"))
    finally:
        _viewport(driver, *VIEWPORT)


@pytest.mark.parametrize("path", list(PAGES), ids=[p or "root" for p in PAGES])
def test_each_page_opens_at_its_own_path_for_the_linked_run_with_charts_that_fit_their_columns(
    path: str, two_runs: dict[str, Any], app_url: str, browser: Any
) -> None:
    older = two_runs["older"]
    charts = _open(browser, app_url, path, older, PAGES[path])
    assert _picked_run(browser).endswith(f"({older})"), _picked_run(browser)
    text = _text(browser)
    assert "Traceback" not in text
    if path in ("", "summary"):
        sql = "select distinct model_id from marts.fct_requests where run_id = ?"
        models = mart(two_runs["warehouse"], sql, [older])
        heading = str(browser.execute_script("return document.querySelector('h1').innerText"))
        assert all(m in heading for m in models["model_id"]), heading
    if path in ("sweep", "requests", "compare"):  # the linked run's experiments, not the newer run's
        assert "llama8b-g5-stackA" in text and SECOND_EXPERIMENT not in text
    if path in TABLES_FIT:
        widths = browser.execute_script(TABLE_WIDTHS)
        assert widths, f"/{path} showed no table"
        assert [w for w in widths if w["scroll"] > w["client"] + TOLERANCE_PX] == [], (path, widths)
    assert charts, f"/{path} drew no chart"
    assert _layout_problems(charts) == []
    _screenshot(browser, path or "root")


def test_the_requests_histograms_sit_side_by_side_each_in_its_own_column(
    two_runs: dict[str, Any], app_url: str, browser: Any
) -> None:
    charts = _open(browser, app_url, "requests", two_runs["older"], "Requests")
    histograms = [c for c in charts if c["title"] in ("Latency", "TTFT", "TPOT")]
    assert [c["title"] for c in histograms] == ["Latency", "TTFT", "TPOT"]
    columns = [(c["column"]["left"], c["column"]["right"]) for c in histograms]
    assert len(set(columns)) == 3 and columns == sorted(columns)
    assert len({round(c["drawn"]["top"]) for c in histograms}) == 1  # one row


def test_a_link_to_the_newer_run_and_to_an_unknown_run(two_runs: dict[str, Any], app_url: str, browser: Any) -> None:
    charts = _open(browser, app_url, "requests", two_runs["newer"], "Requests")
    assert _picked_run(browser).endswith(f"({two_runs['newer']})")
    text = _text(browser)
    assert SECOND_EXPERIMENT in text and "llama8b-g5-stackA" not in text
    # Not streamed: the TTFT and TPOT columns say why instead of drawing an empty frame.
    assert [c["title"] for c in charts] == ["Latency"]
    assert text.count("the responses were not streamed") == 2
    assert _layout_problems(charts) == []

    browser.get(f"{app_url}/sweep?run=no-such-run")
    text = _wait_for_text(browser, "no-such-run", "not in this warehouse", "Sweep")
    assert _picked_run(browser).endswith(f"({two_runs['newer']})")  # the newest, said so


@pytest.mark.parametrize("width", [1280, 1920])
def test_charts_use_their_columns_from_1280_to_1920_px(
    width: int, two_runs: dict[str, Any], app_url: str, browser: Any
) -> None:
    _viewport(browser, width, VIEWPORT[1])
    try:
        for path in ("sweep", "requests"):
            charts = _open(browser, app_url, path, two_runs["older"], PAGES[path])
            assert _layout_problems(charts) == [], (width, path)
    finally:
        _viewport(browser, *VIEWPORT)


def test_summary_page_in_a_browser_states_the_best_level_from_the_marts(
    two_runs: dict[str, Any], app_url: str, browser: Any
) -> None:
    older = two_runs["older"]
    best = mart(
        two_runs["warehouse"],
        "select * from marts.fct_recommendations where is_best_price_performance and run_id = ?",
        [older],
    )
    failed = mart(two_runs["warehouse"], "select * from marts.fct_failed_experiments where run_id = ?", [older])
    assert len(best) == 1 and len(failed) > 0, "the e2e budgets leave one best level and some failed ones"
    # The sentence the page builds from the marts' best row, with the figures' numbers.
    browser.get(f"{app_url}/?run={older}")
    text = _wait_for_text(browser, "Failed experiments", sentences.best_price_performance(best.iloc[0]))
    assert "Traceback" not in text


def test_a_shared_link_opens_the_budget_preview_in_a_browser(app_url: str, browser: Any) -> None:
    browser.get(f"{app_url}/?budget_latency_s=10")
    text = _wait_for_text(browser, "PREVIEW", "levels would meet every budget", "Preview verdicts")
    assert "Traceback" not in text
    # The link's budget is in the sidebar's box (not only in the URL it was opened with).
    shown = browser.execute_script(
        "return [...document.querySelectorAll('[data-testid=stSidebar] input')].map((i) => i.value)"
    )
    assert "10" in shown, shown
