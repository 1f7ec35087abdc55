"""The report: figures in report.md equal the marts'; report.html stands alone (inline PNGs, no URL)."""

from __future__ import annotations

import argparse
import html
import re
import resource
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.cli import report as report_cli
from collector.errors import UserError
from collector.outputs import figures, sentences
from collector.outputs import report as report_module
from collector.outputs.report import md_code, md_text, write_report
from tests.app.app_helpers import mart
from tests.conftest import REPO, config_dict, run_cli, sim_experiment, write_config


@pytest.fixture(scope="module")
def report(e2e_run: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_report(e2e_run["warehouse"], None, tmp_path_factory.mktemp("report"), results_dir=e2e_run["results"])


def _info_value(markdown: str, name: str) -> str:
    """A figure of the Summary's Information | Value table (the side-by-side tables below name figures too)."""
    summary = markdown.split("## Summary")[1].split("### Latency Metrics Analysis")[0]
    (value,) = re.findall(rf"^\| {re.escape(name)} \| (.*) \|$", summary, flags=re.M)
    return value


@pytest.mark.slow
def test_report_summary_figures_equal_the_best_mart_row(e2e_run: dict[str, Any], report: Path) -> None:
    best = mart(e2e_run["warehouse"], "select * from marts.fct_recommendations where is_best_price_performance")
    row = best.iloc[0]
    text = report.read_text()
    assert text.startswith("# Results for performance benchmarking meta-llama/Llama-3.1-8B-Instruct (simulated)\n")
    assert sentences.best_price_performance(row, md_code) in text
    assert _info_value(text, "Transactions/min") == figures.plain(row["transactions_per_minute"])
    assert _info_value(text, "Price per transaction") == figures.figure("price_per_txn").text(row["price_per_txn"])
    assert _info_value(text, "Price per 1M tokens") == f"${figures.plain(row['price_per_token'] * 1e6)}"
    latency = _info_value(text, "Latency p50 / p95 / p99").removesuffix(" s").split(" / ")
    assert latency[1].rstrip("†") == figures.plain(row["latency_p95"])
    ttft = _info_value(text, "TTFT p50 / p95 / p99").removesuffix(" ms").split(" / ")
    assert [t.rstrip("†") for t in ttft] == [figures.plain(row[f"ttft_{p}"] * 1000) for p in ("p50", "p95", "p99")]
    assert md_text(sentences.UNDERSAMPLED_NOTE) in text


@pytest.mark.slow
def test_report_failed_experiments_table_marks_each_missed_budget_red(e2e_run: dict[str, Any], report: Path) -> None:
    failed = mart(e2e_run["warehouse"], "select * from marts.fct_failed_experiments")
    text = report.read_text()
    section = text.split("### Failed experiments")[1].split("### Endpoint metrics")[0]
    assert f"{len(failed)} levels missed at least one configured budget" in section
    assert "latency p95 ≤ 0.3 s, cost per 10k transactions ≤ $20, error rate ≤ 0" in section
    rows = [line for line in section.splitlines() if line.startswith("| ") and "<span" in line]
    assert len(rows) == len(failed)
    misses = int(failed[["misses_latency_budget", "misses_cost_budget", "misses_error_budget"]].to_numpy().sum())
    assert section.count("<span style='color:red'>") == misses
    for _, f in failed.iterrows():
        shown = figures.plain(f["latency_p95"])
        assert f"<span style='color:red'>**{shown}**</span>" in section or not f["misses_latency_budget"]


@pytest.mark.slow
def test_report_has_the_reference_sections_and_every_recommendation(e2e_run: dict[str, Any], report: Path) -> None:
    recs = mart(e2e_run["warehouse"], "select * from marts.fct_recommendations")
    costs = mart(e2e_run["warehouse"], "select sum(cost_usd) as total from marts.fct_experiment_costs")
    text = report.read_text()
    headings = re.findall(r"^#+ .*$", text, flags=re.M)
    for heading in [
        "## Summary",
        "### Latency Metrics Analysis",
        "### Failed experiments",
        "### Endpoint metrics",
        "### Experiment cost",
        "## Per instance results",
        "## Plots",
        "## Configuration file",
    ]:
        assert heading in headings
    assert "| Payload bucket | Experiment | Serving | Pricing model | Recommendation |" in text
    for _, rec in recs.iterrows():
        assert md_text(sentences.recommendation(rec)) in text
    total = figures.figure("cost_usd").text(costs["total"].iloc[0])
    assert f"The total cost for running all experiments is {total}." in text
    assert "from `marts.dim_runs.config_json`" in text and "run_name: e2e" in text  # the resolved config
    for png in re.findall(r"!\[[^\]]*\]\(([^)]+\.png)\)", text):
        assert (report.parent / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_report_plots_include_the_telemetry_over_time_png(e2e_run: dict[str, Any], report: Path) -> None:
    gpus = mart(e2e_run["warehouse"], "select max(gpu_count) as n from marts.fct_telemetry_samples")["n"].iloc[0]
    text = report.read_text()
    plots = text.split("## Plots")[1].split("## Configuration file")[0]
    assert "![Host and GPU telemetry over time with the concurrency levels marked](telemetry_over_time.png)" in plots
    assert (report.parent / "telemetry_over_time.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert ("No GPU telemetry in this run (no NVML on the collector's host)." in plots) == (gpus == 0)


@pytest.mark.slow
def test_report_html_embeds_every_image_and_loads_nothing_external(report: Path) -> None:
    page = (report.parent / "report.html").read_text()
    images = re.findall(r'<img [^>]*src="([^"]+)"', page)
    pngs = re.findall(r"!\[[^\]]*\]\(([^)]+\.png)\)", report.read_text())
    assert len(images) == len(pngs) >= 5
    assert all(src.startswith("data:image/png;base64,") for src in images)
    assert not re.search(r"https?://|//[a-z0-9.-]+\.[a-z]{2,}/", page)
    assert '<span style="color:red"><b>' in page


@pytest.mark.slow
def test_report_cli_writes_the_newest_run_under_results_reports(e2e_run: dict[str, Any]) -> None:
    parser = argparse.ArgumentParser()
    report_cli.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["report", "--results-dir", str(e2e_run["results"])])
    assert report_cli.run(args) == 0
    out = e2e_run["results"] / "reports" / e2e_run["run_id"]
    assert (out / "report.md").is_file() and (out / "report.html").is_file()


@pytest.mark.slow
def test_report_for_an_unknown_run_is_a_one_line_user_error(e2e_run: dict[str, Any], tmp_path: Path) -> None:
    with pytest.raises(UserError) as err:
        write_report(e2e_run["warehouse"], "no-such-run", tmp_path)
    assert "no-such-run" in str(err.value) and "\n" not in str(err.value)


def test_report_on_an_empty_warehouse_is_a_one_line_user_error(tmp_path: Path) -> None:
    warehouse = tmp_path / "tokenbench.duckdb"
    duckdb.connect(str(warehouse)).close()
    with pytest.raises(UserError) as err:
        write_report(warehouse, None, tmp_path / "out")
    assert "no marts yet" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(UserError, match="No warehouse"):
        write_report(tmp_path / "absent.duckdb", None, tmp_path / "out")


# ---- user-supplied text is data, never markup ----------------------------------------------------------

HOSTILE_MODEL_ID = "[x](javascript:alert(1)) <script>alert(2)</script> <img src=x onerror=alert(3)> a|b `tick` _em_"


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs", "Co"), blacklist_characters="\r\n\t")))
@settings(max_examples=300, deadline=None)
def test_report_markdown_escaping_renders_any_value_literally_in_html(value: str) -> None:
    assert report_module._inline(md_text(value)) == html.escape(value)
    assert report_module._inline(md_code(value)) in (html.escape(value), f"<code>{html.escape(value)}</code>")


def test_report_links_only_go_to_anchors_or_files_beside_it() -> None:
    doc = report_module.Document()
    doc.para("[ok](#summary) [chart](price_performance.html) [bad](javascript:alert(1)) [web](https://x.org/a)")
    page = doc.html("t")
    assert re.findall(r'href="([^"]*)"', page) == ["#summary", "price_performance.html"]


def _outside_code(markdown: str) -> str:
    """The Markdown a viewer renders as markup: fenced blocks and code spans removed."""
    markdown = re.sub(r"^(`{3,})[^\n]*\n.*?^\1\s*$", "", markdown, flags=re.M | re.S)
    return re.sub(r"(?<!\\)`[^`\n]+`", "", markdown)


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A real sweep on the simulator whose (free-text) model_id is a Markdown link and HTML, then its report."""
    work = tmp_path_factory.mktemp("hostile")
    exp = sim_experiment(model_id=HOSTILE_MODEL_ID, concurrency_levels=[2], requests_per_level=4)
    cfg = write_config(work / "hostile.yml", config_dict([exp]))
    results = work / "results"
    proc = run_cli("run", "--config", str(cfg), "--results-dir", str(results), timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (report_md,) = results.glob("reports/*/report.md")
    return {"results": results, "warehouse": results / "tokenbench.duckdb", "report": report_md}


@pytest.mark.slow
def test_report_shows_a_hostile_model_id_as_text_with_no_link_or_html(hostile_run: dict[str, Any]) -> None:
    report_md: Path = hostile_run["report"]
    markdown = report_md.read_text()
    assert f"# Results for performance benchmarking {md_text(HOSTILE_MODEL_ID)} (simulated)\n" in markdown
    rendered = _outside_code(markdown)
    assert "](javascript:" not in rendered.replace("\\]", "")
    assert not re.search(r"(?<!\\)<(script|img)", rendered)
    page = (report_md.parent / "report.html").read_text()
    assert "javascript:" not in "".join(re.findall(r'href="([^"]*)"', page))
    assert "<script" not in page and "<img src=x" not in page
    assert html.escape(HOSTILE_MODEL_ID) in page  # shown, literally, once escaped
    chart = (report_md.parent / "price_performance.html").read_text()
    assert "alert(2)</script>" not in chart and "<img src=x" not in chart


def _report_cli(*args: str, preexec: Any = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "collector", "report", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=preexec,
    )


def _one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode in (1, 2), proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr[-3000:]
    return lines[0]


@pytest.mark.slow
def test_report_on_a_full_disk_is_one_line_naming_the_file(hostile_run: dict[str, Any], tmp_path: Path) -> None:
    def small_file_limit() -> None:  # a file-size limit stands in for a full disk: writes past it fail (EFBIG)
        resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))

    out = tmp_path / "out"
    proc = _report_cli("--results-dir", str(hostile_run["results"]), "--out", str(out), preexec=small_file_limit)
    line = _one_error_line(proc)
    assert re.fullmatch(rf"error: {re.escape(str(out))}/\S+: File too large", line), line


@pytest.mark.slow
def test_report_into_an_unwritable_folder_is_one_line_naming_it(hostile_run: dict[str, Any], tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    proc = _report_cli("--results-dir", str(hostile_run["results"]), "--out", str(blocker / "out"))
    assert _one_error_line(proc) == f"error: {blocker / 'out'}: Not a directory"


@pytest.mark.slow
def test_report_on_a_run_with_no_requests_is_one_line(hostile_run: dict[str, Any], tmp_path: Path) -> None:
    results = tmp_path / "results"
    shutil.copytree(hostile_run["results"], results, ignore=shutil.ignore_patterns(".dbt", "reports"))
    endpoint = {"type": "openai", "base_url": "http://127.0.0.1:9/v1", "served_model_name": "m", "startup_timeout_s": 1}
    down = sim_experiment(name="down", endpoint=endpoint)
    cfg = write_config(tmp_path / "down.yml", config_dict([down]))
    cli = [sys.executable, "-m", "collector"]
    run = subprocess.run(
        [*cli, "run", "--config", str(cfg), "--results-dir", str(results)], cwd=REPO, capture_output=True
    )
    assert run.returncode == 1  # the endpoint never answered: a run with no request at all
    build = subprocess.run([*cli, "build", "--results-dir", str(results)], cwd=REPO, capture_output=True, text=True)
    assert build.returncode == 0, build.stderr[-3000:]
    line = _one_error_line(_report_cli("--results-dir", str(results)))
    assert "has no measured requests" in line and "(failed)" in line


@pytest.mark.slow
def test_report_puts_the_experiments_side_by_side_on_the_dataset_of_interest_with_their_pricing_model(
    e2e_run: dict[str, Any], report: Path
) -> None:
    recs = mart(
        e2e_run["warehouse"],
        "select * from marts.fct_recommendations where is_dataset_of_interest order by experiment_name",
    )
    (bucket,) = recs["payload_file"].unique()
    section = report.read_text().split(f"### Side by side on {bucket}")[1].split("\n## ")[0]
    names = [str(n) for n in recs["experiment_name"]]
    assert f"| Figure | {' | '.join(names)} | {names[1]} / {names[0]} |" in section
    assert f"| Pricing model | {' | '.join(recs['pricing_model'])} | – |" in section
    cost = figures.figure("cost_per_10k_txn")
    assert f"| {cost.header} | {' | '.join(cost.text(v) for v in recs['cost_per_10k_txn'])} |" in section
