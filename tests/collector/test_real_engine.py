"""A real inference engine end to end: llama-cpp-python's server on a tiny random-weight GGUF made here, started
by the collector as a `type: process` endpoint, swept, landed, built with dbt and reported.

The token counts are checked against the engine itself, not against the collector: after the run the test loads
the same GGUF in-process with llama_cpp and replays every prompt the rows name, greedy like the run, and the
engine's usage for each must equal the row's counts. llama-cpp-python sends no usage on a stream (it ignores
stream_options.include_usage), so a streamed row must say its counts are the client's, and its content chunks
(one per generated token in llama-cpp-python) must number the engine's completion tokens.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import duckdb
import psutil
import pytest

from collector.landing import run_dirs
from tests.conftest import config_dict, quantile_cont, run_cli, write_config
from tests.engine_model import write_tiny_llama

pytestmark = pytest.mark.slow

MODEL_ID = "tokenbench/tiny-llama-random"
MAX_TOKENS = 12
N_CTX = 1024
LEVELS = [1, 2]
REQUESTS = 4
PROMPTS = [
    "The server answers each request.",
    "Time to first token and time per output token, measured at each concurrency level.",
    "A budget for latency and price decides which setup is recommended.",
    "Hello",
    "The city school and the national team played music in the church during the early years of the war.",
    "Throughput is tokens per second; latency is seconds per request.",
]
REPORT = {
    "latency_budget_s": 30,
    "cost_per_10k_txn_budget_usd": 20,
    "error_rate_budget": 0,
    "dataset_of_interest": "tiny",
}
STREAMED, UNSTREAMED = "llamacpp-chat-stream", "llamacpp-completions"
# llama_perf_context_print, once per request with verbose on (the server's default): the engine's own timings.
PERF = re.compile(r"llama_perf_context_print:\s+(prompt eval|eval) time =\s*([\d.]+) ms /\s*(\d+) (?:tokens|runs)")


def engine_command(threads: int = 2) -> list[str]:
    # interrupt_requests False: by default llama_cpp.server cuts a running stream off when the next request
    # arrives, so any concurrency above 1 would end streams early instead of queueing them.
    return [sys.executable, "-m", "llama_cpp.server", "--model", "{model}", "--model_alias", "{served_model_name}",
            "--host", "{host}", "--port", "{port}", "--n_ctx", str(N_CTX), "--n_threads", str(threads),
            "--seed", "0", "--interrupt_requests", "False"]  # fmt: skip


def experiment(name: str, model: Path, api_style: str, stream: bool) -> dict[str, Any]:
    return {
        "name": name,
        "model_id": MODEL_ID,
        "endpoint": {
            "type": "process",
            "command": engine_command(),
            "model": str(model),
            "api_style": api_style,
            "stream": stream,
            "health_path": "/v1/models",  # llama_cpp.server has no /health
            "startup_timeout_s": 120,
        },
        "unpriced": True,
        "concurrency_levels": LEVELS,
        "requests_per_level": REQUESTS,
        "warmup_requests_per_level": 1,
        "payloads": ["tiny"],
        "inference_parameters": {"max_tokens": MAX_TOKENS, "temperature": 0},
        "request_timeout_s": 60,
    }


def engine_processes(model: Path) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if str(model) in cmdline and "llama_cpp.server" in cmdline:
            found.append(proc)
    return found


def query(warehouse: Path, sql: str, *params: Any) -> list[dict[str, Any]]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        cur = con.execute(sql, list(params))
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
    finally:
        con.close()


def replay_usage(model: Path) -> dict[tuple[str, int], dict[str, int]]:
    """The engine's usage for every prompt, per api_style, replayed in-process (greedy, as the run asked)."""
    from llama_cpp import Llama

    llm = Llama(model_path=str(model), n_ctx=N_CTX, n_threads=2, seed=0, verbose=False)
    usage: dict[tuple[str, int], dict[str, int]] = {}
    for i, text in enumerate(PROMPTS):
        done = llm.create_completion(text, max_tokens=MAX_TOKENS, temperature=0)
        usage["completions", i] = dict(done["usage"])
        chat = llm.create_chat_completion([{"role": "user", "content": text}], max_tokens=MAX_TOKENS, temperature=0)
        usage["chat", i] = dict(chat["usage"])
    return usage


def engine_timings(log: Path) -> dict[str, float]:
    """Mean prompt-eval and per-token eval times (ms) the engine printed for the requests it served."""
    found: dict[str, list[tuple[float, int]]] = {"prompt eval": [], "eval": []}
    for kind, ms, n in PERF.findall(log.read_text(errors="replace")):
        found[kind].append((float(ms), int(n)))
    evals = [ms / n for ms, n in found["eval"] if n]
    return {
        "prompt_eval_ms": sum(ms for ms, _ in found["prompt eval"]) / max(1, len(found["prompt eval"])),
        "eval_ms_per_token": sum(evals) / max(1, len(evals)),
        "requests_timed": len(found["eval"]),
    }


def test_llama_cpp_server_end_to_end(tmp_path: Path) -> None:
    model = write_tiny_llama(tmp_path / "tiny-llama.gguf")
    payload = tmp_path / "tiny.jsonl"
    payload.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in PROMPTS))
    cfg = config_dict(
        [experiment(STREAMED, model, "chat", True), experiment(UNSTREAMED, model, "completions", False)],
        run_name="real-engine",
        payloads=[{"name": "tiny", "file": str(payload)}],
        report=REPORT,
    )
    results = tmp_path / "results"
    proc = run_cli("run", "--config", str(write_config(tmp_path / "real.yml", cfg)), "--results-dir", str(results),
                   timeout=900)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-5000:]

    # The engine is gone: no process serves this model, and the pids the launch records name have ended.
    assert engine_processes(model) == []
    records = list(results.rglob("launch-*.json"))
    assert len(records) == 2
    for record in map(json.loads, (r.read_text() for r in records)):
        assert record["endpoint_type"] == "process" and str(model) in record["launch_command"]
        pid = record["pid"]
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE

    (run_dir,) = run_dirs(results)
    warehouse = results / "tokenbench.duckdb"
    rows = query(warehouse, "select * from raw.requests where run_id = ? order by request_id", run_dir.name)
    per_level = (REQUESTS + 1) * len(LEVELS)
    assert len(rows) == 2 * per_level
    bad = [(r["experiment_name"], r["error_type"], r["error_message"]) for r in rows if r["status"] != "success"]
    assert bad == []

    usage = replay_usage(model)
    for r in rows:
        engine = usage[r["api_style"], r["prompt_index"]]
        where = (r["experiment_name"], r["prompt_index"], r["concurrency"])
        assert r["http_status"] == 200 and r["max_tokens"] == MAX_TOKENS, where
        assert engine["completion_tokens"] == MAX_TOKENS  # the model never ends early (tests/engine_model.py)
        if r["is_streaming"]:
            assert r["experiment_name"] == STREAMED, where
            # TTFT before the end of every streamed request, and the timestamps in order.
            assert r["first_content_ns"] is not None, where
            assert r["first_chunk_ns"] <= r["first_content_ns"] <= r["last_content_ns"] <= r["e2e_ns"], where
            assert r["first_content_ns"] < r["e2e_ns"], where
            # No usage on the stream: the row says so, and it saw one content chunk per engine token.
            assert r["token_count_source"] == "client", where
            assert r["content_chunk_count"] == engine["completion_tokens"], where
            assert r["prompt_tokens"] == r["client_prompt_tokens"], where
        else:
            assert r["experiment_name"] == UNSTREAMED and r["first_content_ns"] is None, where
            assert r["token_count_source"] == "server", where
            assert (r["prompt_tokens"], r["completion_tokens"]) == (
                engine["prompt_tokens"],
                engine["completion_tokens"],
            ), where
            assert r["finish_reason"] == "length", where

    # The marts were built: one row per experiment and level, every request in it.
    marts = query(
        warehouse,
        "select * from marts.fct_concurrency_metrics where run_id = ? order by experiment_name, concurrency",
        run_dir.name,
    )
    assert [(m["experiment_name"], m["concurrency"]) for m in marts] == [
        (STREAMED, 1), (STREAMED, 2), (UNSTREAMED, 1), (UNSTREAMED, 2),
    ]  # fmt: skip
    for m in marts:
        assert (m["request_count"], m["error_count"], m["success_count"]) == (REQUESTS, 0, REQUESTS), m
        # The level's figures, recomputed from its measured rows: the engine's timings as the collector saw them.
        level = [
            r
            for r in rows
            if (r["experiment_name"], r["concurrency"]) == (m["experiment_name"], m["concurrency"])
            and not r["is_warmup"]
        ]
        # Throughput over the steady state (tests/test_end_to_end.py states the rule): the requests that ended by
        # the first end after the last start, by Little's law, given one per slot; else the whole span.
        c = m["concurrency"]
        last_start = max(r["start_offset_ns"] for r in level)
        ramp_down = min(
            r["start_offset_ns"] + r["e2e_ns"] for r in level if r["start_offset_ns"] + r["e2e_ns"] > last_start
        )
        steady = [r for r in level if r["start_offset_ns"] + r["e2e_ns"] <= ramp_down]
        span_s = (
            max(r["start_offset_ns"] + r["e2e_ns"] for r in level) - min(r["start_offset_ns"] for r in level)
        ) / 1e9
        assert m["latency_p50"] == pytest.approx(quantile_cont([r["e2e_ns"] / 1e9 for r in level], 0.5), rel=1e-9)
        # by the rows' own completion counts: the engine's when it reports usage, else the client's
        if len(steady) >= c:
            rate = c * sum(r["completion_tokens"] for r in steady) / (sum(r["e2e_ns"] for r in steady) / 1e9)
        else:
            rate = sum(r["completion_tokens"] for r in level) / span_s
        assert m["completion_token_throughput"] == pytest.approx(rate, rel=1e-9), m
        if m["experiment_name"] == STREAMED:
            ttft = [r["first_content_ns"] / 1e9 for r in level]
            tpot = [
                (r["e2e_ns"] - r["first_content_ns"]) / 1e9 / (r["completion_tokens"] - 1)
                for r in level
                if r["completion_tokens"] >= 2
            ]
            assert m["ttft_p50"] == pytest.approx(quantile_cont(ttft, 0.5), rel=1e-9), m
            assert m["tpot_p50"] == pytest.approx(quantile_cont(tpot, 0.5), rel=1e-9), m
            assert 0 < m["ttft_p50"] < m["latency_p50"], m

    # The report was written for this run: its header names the run and its status.
    report = results / "reports" / run_dir.name / "report.md"
    assert report.is_file() and (report.parent / "report.html").is_file()
    assert f"| `{run_dir.name}` | completed |" in report.read_text()
    assert f"report: {report}" in proc.stdout

    # What the collector measured next to what the engine says of itself (shown with pytest -s).
    print("\nmarts, experiment level: ttft_p50 s, tpot_p50 s, latency_p50 s, completion tok/s, mean completion tokens")
    for m in marts:
        print(
            f"  {m['experiment_name']} c={m['concurrency']}: {m['ttft_p50']}, {m['tpot_p50']}, "
            f"{m['latency_p50']:.4f}, {m['completion_token_throughput']:.1f}, {m['completion_token_count_mean']}"
        )
    for level in LEVELS:
        streamed = [r for r in rows if r["is_streaming"] and r["concurrency"] == level and not r["is_warmup"]]
        tpots = sorted((r["e2e_ns"] - r["first_content_ns"]) / 1e9 / (MAX_TOKENS - 1) for r in streamed)
        print(f"  {STREAMED} c={level}: tpot median with the engine's token count {tpots[len(tpots) // 2]:.6f} s")
    for log in sorted(results.rglob("engine-*.log")):
        print(f"  engine's own timings, {log.name}: {engine_timings(log)}")
