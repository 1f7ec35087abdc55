"""TGI, DJL LMI and Triton wire formats on loopback: the simulator speaks each, sweeps land its token counts, and
malformed replies in each format land as one error row per request, counted against the server's own count."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import duckdb
import pytest

from collector.clock import RunClock
from collector.config import InferenceParameters
from collector.loadgen import Level, Target, client_session, run_level
from collector.payloads import Prompt
from collector.runner import collect
from collector.schema import RequestRow
from collector.tokens import DEFAULT_COUNTER
from tests.conftest import config_dict, sim_experiment, write_config
from tests.servers import misbehaving_server, server_stats

NATIVE = ("tgi", "djl", "triton")
# The finish reason each format gives a reply that ended before max_tokens (TGI and DJL LMI: the EOS token).
NATURAL_END = {"tgi": "eos_token", "djl": "eos_token", "triton": "stop"}


@pytest.mark.slow  # six simulators, one per format and streaming or not
def test_a_sweep_in_each_native_format_lands_the_simulators_token_counts(tmp_path: Path) -> None:
    experiments = [
        sim_experiment(
            f"{style}-{'sse' if stream else 'json'}",
            endpoint={
                "type": "simulated",
                "api_style": style,
                "stream": stream,
                "speedup": 50,
                "mean_output_tokens": 8,
            },
            concurrency_levels=[2],
            requests_per_level=4,
            warmup_requests_per_level=0,
            # Triton's vLLM backend adds its token counts only when asked
            inference_parameters={
                "max_tokens": 16,
                "extra": {"return_num_input_tokens": True, "return_num_output_tokens": True}
                if style == "triton"
                else {},
            },
        )
        for style in NATIVE
        for stream in (True, False)
    ]
    outcome = collect(write_config(tmp_path / "c.yml", config_dict(experiments)), tmp_path / "results")
    assert outcome.status == "completed"
    con = duckdb.connect(str(tmp_path / "results" / "tokenbench.duckdb"), read_only=True)
    try:
        rows = con.execute(
            "select experiment_name, endpoint_url, status, token_count_source, prompt_tokens, client_prompt_tokens, "
            "completion_tokens, client_completion_tokens, content_chunk_count, first_content_ns, e2e_ns, "
            "finish_reason from raw.requests order by 1"
        ).fetchall()
    finally:
        con.close()
    assert len(rows) == 6 * 4
    paths = {r[0]: r[1].split("/", 3)[3] for r in rows}
    assert paths == {
        "djl-json": "invocations",
        "djl-sse": "invocations",
        "tgi-json": "generate",
        "tgi-sse": "generate_stream",
        "triton-json": "v2/models/meta-llama%2FLlama-3.1-8B-Instruct/generate",
        "triton-sse": "v2/models/meta-llama%2FLlama-3.1-8B-Instruct/generate_stream",
    }
    for (
        name,
        _url,
        status,
        source,
        prompt,
        client_prompt,
        completion,
        client_completion,
        chunks,
        ttft,
        e2e,
        reason,
    ) in rows:
        assert (status, source) == ("success", "server"), name
        # the simulator counts the prompt and writes one counted word per token, so both counts agree
        assert prompt == client_prompt and completion == client_completion and 1 <= completion <= 16, name
        # A reply cut at max_tokens says "length"; one that ended by itself says so in its format's own word.
        assert reason == ("length" if completion == 16 else NATURAL_END[name.split("-")[0]]), (name, completion)
        if name.endswith("-sse"):
            assert chunks == completion and 0 < ttft < e2e, name
        else:
            assert chunks == 0 and ttft is None, name


def _target(base_url: str, style: str, stream: bool, model: str = "m") -> Target:
    return Target(
        run_id="r", experiment_name=style, model_id="m", endpoint_type="openai", base_url=base_url,
        api_style=style, served_model_name=model, stream=stream, headers={"Content-Type": "application/json"},
        instance_type=None, instance_count=1, params=InferenceParameters(temperature=0.7, top_p=0.9),
        timeout=aiohttp.ClientTimeout(total=5), counter=DEFAULT_COUNTER,
    )  # fmt: skip


def _sweep(target: Target, requests: int = 3) -> list[RequestRow]:
    async def go() -> list[RequestRow]:
        rows: list[RequestRow] = []
        level = Level("b", [Prompt(0, "hello there", None, 2)], 2, requests, warmup=0)
        async with client_session(2) as session:
            await run_level(session, target, level, RunClock(), rows.append, asyncio.Event())
        return rows

    return asyncio.run(go())


# mode: (status, error_type) for a streamed and a whole reply
FAULTS: dict[str, tuple[tuple[str, str | None], tuple[str, str | None]]] = {
    "ok": (("success", None), ("success", None)),
    "bad-json": (("error", "malformed_response"), ("error", "malformed_response")),
    "bad-shape": (("error", "malformed_response"), ("error", "malformed_response")),
    "error-event": (("error", "http_error"), ("error", "http_error")),
    "cut": (("error", "stream_cut"), ("error", "connection_reset")),
}


def _fault_message(style: str, mode: str, stream: bool) -> str | None:
    """How each fault's row must open its error message: where the reply broke, and what was wrong there."""
    where = ("JSON line 2" if style == "djl" else "SSE event 2") if stream else "response"
    shape = 'token is "oops", expected an object' if stream else "generated_text is 5, expected a string"
    return {
        "ok": None,
        "bad-json": f"{where}: not JSON (",
        "bad-shape": f"{where}: {'text_output is 5, expected a string' if style == 'triton' else shape}",
        # DJL LMI ends a failed stream with finish_reason error; the others send an error object
        "error-event": "error event: the server ended generation with finish_reason error"
        if style == "djl" and stream
        else "error event: overloaded",
        "cut": "ClientPayloadError: Response payload is not completed" if stream else "ServerDisconnectedError: ",
    }[mode]


@pytest.mark.parametrize("style", NATIVE)
def test_each_malformed_native_reply_is_one_error_row_per_request(style: str) -> None:
    got: dict[tuple[str, bool], list[RequestRow]] = {}
    with misbehaving_server() as v1_url:
        root = v1_url.removesuffix("/v1")
        for mode in FAULTS:
            for stream in (True, False):
                got[mode, stream] = _sweep(_target(f"{root}/{mode}", style, stream))
        served = server_stats(v1_url)["posts"]
    for (mode, stream), rows in got.items():
        assert len(rows) == 3, (mode, stream)
        expected = FAULTS[mode][0 if stream else 1]
        assert {(r.status, r.error_type) for r in rows} == {expected}, (mode, stream, rows[0].error_message)
        message = _fault_message(style, mode, stream)
        for r in rows:
            assert (r.error_message or "").startswith(message) if message else r.error_message is None, (
                mode,
                stream,
                r.error_message,
            )
    for mode in FAULTS:
        assert served[f"{style}:{mode}"] == 6, mode  # every request the server saw is one row
    ok_rows = got["ok", True] + got["ok", False]
    assert {(r.completion_tokens, r.token_count_source, r.client_completion_tokens) for r in ok_rows} == {
        (3, "server", 3)
    }
    streamed = got["ok", True]
    assert all(r.content_chunk_count == 3 and r.first_content_ns < r.e2e_ns for r in streamed)  # type: ignore[operator]


@pytest.mark.parametrize("style", NATIVE)
def test_a_server_count_that_is_not_a_token_count_gives_way_to_the_client_count_with_the_value_recorded(
    style: str,
) -> None:
    with misbehaving_server() as v1_url:
        rows = _sweep(_target(v1_url.removesuffix("/v1") + "/usage-negative", style, True), requests=2)
        rows += _sweep(_target(v1_url.removesuffix("/v1") + "/usage-negative", style, False), requests=2)
    name = "num_output_tokens" if style == "triton" else "details.generated_tokens"
    assert {(r.status, r.token_count_source, r.completion_tokens, r.data_issue) for r in rows} == {
        ("success", "client", 3, f"{name}=-5 out of range [0, 1e9]; client count used")
    }


def test_the_sampling_parameters_are_sent_in_each_format() -> None:
    # FMBench 2.1.6 built DJL's parameters and posted the payload without them: the server's defaults applied.
    bodies: dict[str, Any] = {}
    with misbehaving_server() as v1_url:
        for style in NATIVE:
            _sweep(_target(v1_url.removesuffix("/v1") + "/ok", style, True), requests=1)
            bodies[style] = server_stats(v1_url)["bodies"][-1]
    assert bodies["tgi"] == {
        "inputs": "hello there",
        "parameters": {"max_new_tokens": 100, "do_sample": True, "temperature": 0.7, "top_p": 0.9, "details": True},
    }
    assert bodies["djl"] == {
        "inputs": "hello there",
        "parameters": {"max_new_tokens": 100, "do_sample": True, "temperature": 0.7, "top_p": 0.9, "details": True},
        "stream": True,
    }
    assert bodies["triton"] == {
        "text_input": "hello there", "max_tokens": 100, "temperature": 0.7, "top_p": 0.9, "stream": True,
        "exclude_input_in_output": True,
    }  # fmt: skip
