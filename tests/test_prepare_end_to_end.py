"""prepare -> run (simulator) -> dbt: `collector run` prepares the missing buckets from LongBench-shaped rows with
the experiment's tokenizer (built here), every request's prompt count lies in its bucket's range, the manifest
copies each bucket's provenance, and the marts flag the simulator's deliberately different usage counts."""

from __future__ import annotations

import json
from typing import Any

import duckdb
import pytest

from tests.conftest import config_dict, run_cli, sim_experiment, write_config
from tests.tokenizer_builder import build_tokenizer_folder, hand_count_chat

pytestmark = pytest.mark.slow

MODEL = "example-org/model-not-in-any-cache"
RANGES = {"en_short": (1, 150), "en_long": (150, 400)}


def _rows() -> list[dict[str, Any]]:
    return [
        {
            "input": f"what is said of river {i}?",
            "context": " ".join(["river"] * (8 * (i + 1))),
            "answers": [str(i)],
            "language": "zh" if i % 5 == 4 else "en",
        }
        for i in range(25)
    ]


@pytest.fixture(scope="module")
def prepared_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    work = tmp_path_factory.mktemp("prepare_e2e")
    tok = build_tokenizer_folder(work / "tok")
    (work / "longbench.jsonl").write_text("".join(json.dumps(r) + "\n" for r in _rows()))
    buckets = [
        {
            "name": name,
            "file": f"prepared/{name}.jsonl",
            "prepare": {
                "source": "longbench.jsonl",
                "template": "chat",
                "language": "en",
                "min_tokens": lo,
                "max_tokens": hi,
            },
        }
        for name, (lo, hi) in RANGES.items()
    ]
    exp = sim_experiment("own", model_id=MODEL, tokenizer="tok", payloads=list(RANGES), concurrency_levels=[1, 2])
    cfg = config_dict([exp], payloads=buckets)
    cfg["report"]["dataset_of_interest"] = "en_long"
    path = write_config(work / "prepare.yml", cfg)
    results = work / "results"
    first = run_cli("run", "--config", str(path), "--results-dir", str(results), timeout=600)
    assert first.returncode == 0, first.stderr[-3000:]
    second = run_cli("run", "--config", str(path), "--results-dir", str(results), "--no-build", timeout=600)
    assert second.returncode == 0, second.stderr[-3000:]
    con = duckdb.connect(str(results / "tokenbench.duckdb"), read_only=True)
    try:
        requests = con.execute(
            "select payload_file, prompt_index, token_counter, client_prompt_tokens, server_prompt_tokens, is_warmup "
            "from raw.requests where run_id = (select min(run_id) from raw.runs)"
        ).fetchall()
        (payloads_json,) = con.execute("select payloads_json from raw.runs order by run_id limit 1").fetchone()
        disagreeing = con.execute(  # the second run was not built: the marts hold the first only
            "select run_id = (select min(run_id) from raw.runs), sum(prompt_token_disagreement_count) "
            "from marts.fct_concurrency_metrics group by all"
        ).fetchall()
    finally:
        con.close()
    prepared = {
        name: [json.loads(line) for line in (work / "prepared" / f"{name}.jsonl").read_text().splitlines()]
        for name in RANGES
    }
    return {
        "work": work,
        "tok": tok.resolve(),
        "first": first.stderr,
        "second": second.stderr,
        "requests": requests,
        "payloads_json": json.loads(payloads_json),
        "disagreeing": disagreeing,
        "prepared": prepared,
    }


def test_run_prepares_missing_buckets_once(prepared_run: dict[str, Any]) -> None:
    for name in RANGES:
        assert f"({name}): preparing " in prepared_run["first"] and "(missing)" in prepared_run["first"]
    assert "preparing" not in prepared_run["second"]  # up to date: the second run reuses the files


def test_every_requests_prompt_count_lies_in_its_buckets_range_by_the_tokenizer(prepared_run: dict[str, Any]) -> None:
    assert len(prepared_run["requests"]) == 2 * 2 * (8 + 1)  # buckets x levels x (requests + warm-up)
    for bucket, index, counter, tokens, _, _ in prepared_run["requests"]:
        lo, hi = RANGES[bucket]
        messages = prepared_run["prepared"][bucket][index]["messages"]
        assert tokens == hand_count_chat(messages)
        assert lo <= tokens < hi, (bucket, index)
        assert counter == f"transformers:{prepared_run['tok']}"


def test_the_manifest_copies_each_buckets_provenance(prepared_run: dict[str, Any]) -> None:
    records = {r["name"]: r for r in prepared_run["payloads_json"]}
    assert set(records) == set(RANGES)
    for name in RANGES:
        on_disk = json.loads((prepared_run["work"] / "prepared" / f"{name}.jsonl.provenance.json").read_text())
        assert records[name]["kind"] == "prepared"
        assert records[name]["provenance"] == on_disk
        assert records[name]["file_sha256"] == on_disk["file_sha256"]
        assert on_disk["settings"]["language"] == "en" and on_disk["rows_kept"] == len(prepared_run["prepared"][name])


def test_the_marts_flag_the_simulators_different_counts(prepared_run: dict[str, Any]) -> None:
    # The simulator counts words plus its chat overhead, the built tokenizer two tokens a word: the measured
    # requests whose two counts differ by more than 5% (and more than one token), the dbt vars' defaults.
    measured = [(client, server) for *_, client, server, warm in prepared_run["requests"] if not warm]
    expected = sum(abs(client - server) > max(0.05 * server, 1) for client, server in measured)
    assert 0 < expected <= len(measured) == 32
    assert prepared_run["disagreeing"] == [(True, expected)]
