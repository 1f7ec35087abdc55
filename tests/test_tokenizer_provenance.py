"""End to end with two tokenizers: one experiment counts with a tokenizer the test builds, the other falls back
to the built-in counter; the simulator reports its own usage (the built-in counter, plus its chat overhead), so
the raw rows carry both sides and the marts flag where they disagree. Expected counts are computed here by
hand from the prompts the test wrote and the tokenizer's rules, not by the collector's counting code."""

from __future__ import annotations

import json
from typing import Any

import duckdb
import pytest

from collector.landing import run_dirs
from collector.sim.engine import VOCABULARY
from tests.conftest import config_dict, run_cli, sim_experiment, write_config
from tests.tokenizer_builder import build_tokenizer_folder, hand_count_chat

pytestmark = pytest.mark.slow

MODEL = "example-org/model-not-in-any-cache"
PROMPTS = [
    "the model server answers the question about the river",
    "tell me about a small city of stone",
    "the river " * 75,  # 150 words: the simulator's 7 chat tokens are within 5%
    "why",
]
SIM_CHAT_OVERHEAD = 4 + 3  # per message, and the assistant preamble (collector/sim/server.py's documented rule)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    work = tmp_path_factory.mktemp("tokenizers")
    tok = build_tokenizer_folder(work / "tokenizers" / "tiny")
    (work / "prompts.jsonl").write_text("".join(json.dumps({"prompt": p}) + "\n" for p in PROMPTS))
    common: dict[str, Any] = {"model_id": MODEL, "payloads": ["file"], "concurrency_levels": [1, 2]}
    cfg = config_dict(
        [
            sim_experiment("own-tokenizer", tokenizer="tokenizers/tiny", **common),
            sim_experiment("fallback", **common),
        ],
        report={
            "latency_budget_s": 2,
            "cost_per_10k_txn_budget_usd": 20,
            "error_rate_budget": 0,
            "dataset_of_interest": "file",
        },
    )
    cfg["payloads"].append({"name": "file", "file": "prompts.jsonl"})
    path = write_config(work / "tokenizers.yml", cfg)
    results = work / "results"
    proc = run_cli("run", "--config", str(path), "--results-dir", str(results), timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    con = duckdb.connect(str(results / "tokenbench.duckdb"), read_only=True)
    try:
        raw = con.execute(
            "select experiment_name, prompt_index, concurrency, is_warmup, status, token_counter, "
            "client_prompt_tokens, client_completion_tokens, server_prompt_tokens, server_completion_tokens, "
            "content_chunk_count, prompt_tokens, completion_tokens, request_id from raw.requests"
        ).fetchall()
        flags = dict(
            (r[0], r[1:])
            for r in con.execute(
                "select request_id, is_prompt_token_count_disagreeing, is_completion_token_count_disagreeing "
                "from marts.fct_requests"
            ).fetchall()
        )
        levels = con.execute(
            "select experiment_name, concurrency, prompt_token_disagreement_count, "
            "completion_token_disagreement_count, prompt_token_relative_difference_mean, "
            "completion_token_relative_difference_mean from marts.fct_concurrency_metrics"
        ).fetchall()
    finally:
        con.close()
    assert len(run_dirs(results)) == 1
    return {"tok": tok.resolve(), "stderr": proc.stderr, "raw": raw, "flags": flags, "levels": levels}


def _disagree(client: int, server: int) -> bool:
    return abs(client - server) > max(0.05 * server, 1)  # the dbt vars' defaults


def test_each_experiment_names_its_counter_at_start_and_in_every_row(run: dict[str, Any]) -> None:
    fallback = f"simple-regex (fallback: no tokenizer for {MODEL} in the local Hugging Face cache)"
    own = f"transformers:{run['tok']}"
    assert f"experiment own-tokenizer: token counter {own}\n" in run["stderr"]
    assert f"experiment fallback: token counter {fallback}\n" in run["stderr"]
    counters = {(r[0], r[5]) for r in run["raw"]}
    assert counters == {("own-tokenizer", own), ("fallback", fallback)}


def test_client_counts_are_each_tokenizers_counts_and_server_columns_hold_the_simulators_usage(
    run: dict[str, Any],
) -> None:
    assert all(len(w) > 1 for w in VOCABULARY)  # each reply word is two tokens of the built tokenizer
    assert len(run["raw"]) == 2 * 2 * 9
    for exp, index, _, _, status, _, cp, cc, sp, sc, chunks, prompt, completion, _ in run["raw"]:
        text = PROMPTS[index]
        assert status == "success"
        # The simulator counts message contents with the built-in counter (words here) plus its chat overhead.
        assert (sp, sc) == (len(text.split()) + SIM_CHAT_OVERHEAD, chunks)
        assert (prompt, completion) == (sp, sc)  # the server's counts, when reported
        if exp == "own-tokenizer":
            assert cp == hand_count_chat([{"role": "user", "content": text}])
            assert cc == 2 * chunks
        else:
            assert (cp, cc) == (len(text.split()), chunks)


def test_marts_flag_disagreeing_requests_and_count_them_per_level(run: dict[str, Any]) -> None:
    expected: dict[tuple[str, int], list[int | float]] = {}
    for exp, _, conc, warm, _, _, cp, cc, sp, sc, _, _, _, request_id in run["raw"]:
        assert run["flags"][request_id] == (_disagree(cp, sp), _disagree(cc, sc))
        if warm:
            continue
        level = expected.setdefault((exp, conc), [0, 0, 0.0, 0.0, 0])
        level[0] += _disagree(cp, sp)
        level[1] += _disagree(cc, sc)
        level[2] += abs(cp - sp) / max(sp, 1)
        level[3] += abs(cc - sc) / max(sc, 1)
        level[4] += 1
    got = {(r[0], r[1]): r[2:] for r in run["levels"]}
    assert set(got) == set(expected) and len(got) == 4
    for key, (p_n, c_n, p_sum, c_sum, n) in expected.items():
        assert got[key][:2] == (p_n, c_n), key
        assert got[key][2] == pytest.approx(p_sum / n) and got[key][3] == pytest.approx(c_sum / n), key
    # The fixture's point: the built tokenizer disagrees with the simulator, the fallback only on short prompts.
    assert all(got[("own-tokenizer", c)][0] > 0 for c in (1, 2))
    assert all(got[("fallback", c)][1] == 0 for c in (1, 2))
