"""Token provenance in the marts: per request, whether the client's and the server's counts disagree beyond
the tolerance; per level, how many did and by how much. A run landed before raw schema v3 (no server columns)
still builds, with the comparison unknown (null) rather than zero."""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path

import pytest

from collector import dbt_runner
from collector.landing import RunLanding, compact_run
from collector.warehouse import refresh, warehouse_path
from tests.dbt.builders import PRICING_DIR, Experiment, Req, RunSpec, manifest, query, request_rows

approx = pytest.approx
NEW, OLD = "20261128T090000Z-aaaaaa", "20261128T100000Z-bbbbbb"


def _spec(run_id: str) -> RunSpec:
    return RunSpec(
        run_id=run_id,
        run_name="provenance",
        experiments=[Experiment("e")],
        requests=[
            Req("e", "b", 1, 0.0, 1.0, is_warmup=True),
            *(Req("e", "b", 1, 1.0 + i, 1.0) for i in range(3)),
        ],
        dataset_of_interest="b",
    )


# (client prompt, server prompt, client completion, server completion) per request, in start order.
#   warm-up  200/100, 20/10: disagreeing, but not measured
#   r1       104/100 (4 <= max(5% x 100, 1) = 5: agree, 0.04)    10/10 (agree, 0)
#   r2       120/100 (20 > 5: disagree, 0.2)                     20/10 (10 > 1: disagree, 1.0)
#   r3       the server reported no usage: nothing to compare
COUNTS = [(200, 100, 20, 10), (104, 100, 10, 10), (120, 100, 20, 10), (50, None, 5, None)]


def _land(results: Path, run_id: str, *, old_schema: bool) -> None:
    spec = _spec(run_id)
    landing = RunLanding(results, run_id)
    landing.write_manifest(manifest(spec))
    landing.close()
    lines = []
    for row, (cp, sp, cc, sc) in zip(request_rows(spec), COUNTS, strict=True):
        row = replace(
            row,
            client_prompt_tokens=cp,
            server_prompt_tokens=sp,
            prompt_tokens=sp if sp is not None else cp,
            client_completion_tokens=cc,
            server_completion_tokens=sc,
            completion_tokens=sc if sc is not None else cc,
            token_count_source="server" if sc is not None else "client",
        )
        data = asdict(row)
        if old_schema:  # as a v2 collector landed it: the columns did not exist
            del data["server_prompt_tokens"], data["server_completion_tokens"]
            data["schema_version"] = 2
        lines.append(json.dumps(data))
    (landing.dir / "requests.jsonl").write_text("\n".join(lines) + "\n")
    compact_run(landing.dir)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    results = tmp_path_factory.mktemp("provenance") / "results"
    _land(results, NEW, old_schema=False)
    _land(results, OLD, old_schema=True)
    path = refresh(results, warehouse_path(results))
    dbt_runner.build(path, pricing_dir=PRICING_DIR)
    return path


def test_requests_are_flagged_where_client_and_server_counts_disagree_beyond_the_tolerance(built: Path) -> None:
    rows = query(
        built,
        "select server_prompt_tokens, client_prompt_tokens, prompt_token_relative_difference, "
        "is_prompt_token_count_disagreeing, completion_token_relative_difference, "
        "is_completion_token_count_disagreeing, prompt_tokens, completion_tokens "
        "from marts.fct_requests where run_id = ? order by start_offset_ns",
        [NEW],
    )
    got = [tuple(r.values()) for r in rows]
    assert got == [
        (100, 200, approx(1.0), True, approx(1.0), True, 100, 10),
        (100, 104, approx(0.04), False, approx(0.0), False, 100, 10),
        (100, 120, approx(0.2), True, approx(1.0), True, 100, 10),
        (None, 50, None, None, None, None, 50, 5),  # counts fall back to the client's
    ]


def test_each_level_says_how_many_requests_disagreed_and_by_how_much(built: Path) -> None:
    (level,) = query(built, "select * from marts.fct_concurrency_metrics where run_id = ?", [NEW])
    assert (level["prompt_token_disagreement_count"], level["completion_token_disagreement_count"]) == (1, 1)
    assert level["prompt_token_relative_difference_mean"] == approx((0.04 + 0.2) / 2)
    assert level["completion_token_relative_difference_mean"] == approx((0.0 + 1.0) / 2)


def test_rows_landed_before_schema_v3_build_with_the_comparison_unknown(built: Path) -> None:
    rows = query(
        built,
        "select server_prompt_tokens, server_completion_tokens, is_prompt_token_count_disagreeing, "
        "is_completion_token_count_disagreeing, prompt_tokens from marts.fct_requests where run_id = ? "
        "order by start_offset_ns",
        [OLD],
    )
    assert [r["prompt_tokens"] for r in rows] == [100, 100, 100, 50]
    assert all(v is None for r in rows for k, v in r.items() if k != "prompt_tokens")
    (level,) = query(built, "select * from marts.fct_concurrency_metrics where run_id = ?", [OLD])
    assert (level["prompt_token_disagreement_count"], level["completion_token_disagreement_count"]) == (0, 0)
    assert level["prompt_token_relative_difference_mean"] is None
    assert level["request_count"] == 3
