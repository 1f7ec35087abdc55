"""Runs whose figures need explaining read honestly in the marts, the terminal summary, the report and the app:
a level where every request timed out, a level whose latency describes only its survivors, and an interrupted
run with levels it never measured.

Run "flaky" (completed), experiment vllm on bucket big: c=1 12 successes; c=2 9 successes and 3 timeouts;
c=4 every one of 12 requests timed out. Run "cut" (interrupted) planned c=1, 2 and 4 on big and measured c=1.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from collector.outputs import sentences
from collector.outputs.report import write_report
from collector.outputs.summary import summary_text
from tests.dbt.builders import REPO, Experiment, Req, RunSpec, build_warehouse, query

pytestmark = pytest.mark.slow

TIMEOUT = "no complete response within 1.5 s (TimeoutError)"
BIG = "big"


def _level(conc: int, ok: int, timeouts: int, start: float) -> list[Req]:
    reqs = [Req("vllm", BIG, conc, start + i * 0.5, 0.4, ttft_s=0.05) for i in range(ok)]
    reqs += [
        Req("vllm", BIG, conc, start + ok * 0.5 + i * 0.5, 1.5, status="error", error_type="timeout",
            http_status=None, error_message=TIMEOUT)
        for i in range(timeouts)
    ]  # fmt: skip
    return reqs


FLAKY = RunSpec(
    run_id="20261126T120000Z-flaky",
    run_name="flaky",
    experiments=[Experiment("vllm", usd_per_hour=1.624)],
    requests=_level(1, 12, 0, 0.0) + _level(2, 9, 3, 10.0) + _level(4, 0, 12, 20.0),
    dataset_of_interest=BIG,
    error_rate_budget=0.5,
)
CUT = RunSpec(
    run_id="20261126T130000Z-cut",
    run_name="cut",
    status="interrupted",
    experiments=[Experiment("vllm", usd_per_hour=1.624)],
    requests=_level(1, 12, 0, 0.0),
    dataset_of_interest=BIG,
    latency_budget_s=0.1,  # nothing passes: the summary must still not claim every level met the budgets
    planned={"vllm": ([BIG], [1, 2, 4])},
)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_warehouse(tmp_path_factory.mktemp("honest") / "results", [FLAKY, CUT])


@pytest.fixture
def app(built: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., AppTest]:
    monkeypatch.setenv("TOKENBENCH_WAREHOUSE", str(built))

    def run(run_id: str, page: str | None = None) -> AppTest:
        at = AppTest.from_file(str(REPO / "streamlit_app" / "app.py"), default_timeout=60)
        at.query_params["run"] = run_id
        at.run()
        if page is not None:
            at.switch_page(f"views/{page}.py").run()
        assert not at.exception, [e.value for e in at.exception]
        return at

    return run


def _texts(at: AppTest) -> str:
    kinds = ("title", "header", "subheader", "markdown", "caption", "info", "warning", "error", "success")
    return "\n".join(str(e.value) for kind in kinds for e in getattr(at, kind))


ALL_TIMED_OUT = (
    f"vllm c=4 on big: All 12 requests failed: 12 timed out ({TIMEOUT}). No latency, throughput or price describes "
    "this level."
)
SURVIVORS = f"vllm c=2 on big: 3 of 12 requests failed: 3 timed out ({TIMEOUT}). Latency figures describe the 9 that"


def test_the_marts_count_errors_by_type_and_list_the_levels_never_measured(built: Path) -> None:
    errors = query(built, "select * from marts.fct_level_errors where run_id = ? order by concurrency", [FLAKY.run_id])
    assert [(e["concurrency"], e["error_type"], e["request_count"], e["share_of_level"]) for e in errors] == [
        (2, "timeout", 3, 0.25),
        (4, "timeout", 12, 1.0),
    ]
    assert {e["example_message"] for e in errors} == {TIMEOUT}
    missing = query(built, "select * from marts.fct_unmeasured_levels where run_id = ? order by 1", [CUT.run_id])
    assert [(m["concurrency"], m["unmeasured_position"], m["run_status"]) for m in missing] == [
        (2, 1, "interrupted"),
        (4, 2, "interrupted"),
    ]
    (run,) = query(built, "select * from marts.dim_runs where run_id = ?", [CUT.run_id])
    assert (run["planned_level_count"], run["measured_level_count"]) == (3, 1)


def test_the_terminal_summary_says_what_each_failing_level_failed_with(built: Path) -> None:
    text = summary_text(built, FLAKY.run_id)
    assert ALL_TIMED_OUT in text
    assert SURVIVORS in text
    assert "TTFT" not in text.split("== Errors")[1]  # never "TTFT needs streaming" for a level that failed


def test_an_interrupted_runs_summary_names_the_unmeasured_levels_and_never_contradicts_itself(built: Path) -> None:
    text = summary_text(built, CUT.run_id)
    assert "2 of 3 planned levels were not measured: the run was interrupted: vllm c=2 on big, vllm c=4 on big." in text
    assert "No experiment met every budget on the dataset of interest big" in text
    assert "All measured levels met" not in text and "All levels met" not in text


def test_the_report_explains_failures_and_unmeasured_levels(built: Path, tmp_path: Path) -> None:
    flaky = write_report(built, FLAKY.run_id, tmp_path / "flaky", results_dir=built.parent).read_text()
    assert "`vllm` c=4 on `big`: All 12 requests failed: 12 timed out" in flaky
    assert "No latency, throughput or price describes this level." in flaky
    cut = write_report(built, CUT.run_id, tmp_path / "cut", results_dir=built.parent).read_text()
    assert "**Not measured.** 2 of 3 planned levels were not measured: the run was interrupted" in cut


def test_the_summary_page_shows_the_error_breakdown_and_not_a_streaming_hint(app: Callable[..., AppTest]) -> None:
    at = app(FLAKY.run_id)
    text = _texts(at)
    assert f"- `vllm` c=4 on `big`: All 12 requests failed: 12 timed out ({TIMEOUT})" in text
    assert "they need streamed responses" not in text
    errors = [e.value for e in at.dataframe if "Failure" in e.value.columns]
    assert len(errors) == 1 and errors[0]["Failure"].tolist() == ["timed out", "timed out"]
    assert sentences.SURVIVORS_NOTE in text


def test_the_summary_page_of_an_interrupted_run_warns_which_levels_are_missing(app: Callable[..., AppTest]) -> None:
    at = app(CUT.run_id)
    assert any("2 of 3 planned levels were not measured" in w.value for w in at.warning)
    text = _texts(at)
    assert "No experiment met every budget" in text and "levels met the configured budgets" not in text


def test_the_sweep_page_says_why_a_level_has_no_latency(app: Callable[..., AppTest]) -> None:
    at = app(FLAKY.run_id, "sweep")
    assert f"- `vllm` c=4 on `big`: All 12 requests failed: 12 timed out ({TIMEOUT})" in _texts(at)
