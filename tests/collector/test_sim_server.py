"""Tests of the simulator's OpenAI-compatible HTTP server over real loopback HTTP, and of its CLI wiring."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from collector.errors import ConfigError
from collector.sim.engine import EngineConfig
from collector.sim.server import READY_LINE_PREFIX, serve
from collector.sim.settings import SimSettings
from collector.tokens import DEFAULT_COUNTER

REPO_ROOT = Path(__file__).resolve().parents[2]
SERVED = "meta-llama/Llama-3.1-8B-Instruct"
PROMPT_837 = " ".join(["word"] * 837)


class ServerThread:
    """Runs `serve()` on port 0 in a background thread with its own event loop."""

    def __init__(self, settings: SimSettings) -> None:
        self.settings = settings
        self.port: int | None = None
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, daemon=True)

    def _main(self) -> None:
        async def run() -> None:
            self._loop = asyncio.get_running_loop()
            self._task = asyncio.current_task()
            await serve(self.settings, "127.0.0.1", 0, ready=self._on_ready)

        try:
            asyncio.run(run())
        except asyncio.CancelledError:
            pass
        except BaseException as exc:  # surfaced to the test thread
            self._error = exc
            self._ready.set()

    def _on_ready(self, port: int) -> None:
        self.port = port
        self._ready.set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ServerThread:
        self._thread.start()
        assert self._ready.wait(10), "simulator did not start"
        if self._error is not None:
            raise self._error
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None
        assert self._task is not None
        self._loop.call_soon_threadsafe(self._task.cancel)
        self._thread.join(10)


@pytest.fixture(scope="module")
def server() -> Iterator[ServerThread]:
    with ServerThread(SimSettings(speedup=20, seed=0)) as running:
        yield running


@pytest.fixture
def client(server: ServerThread) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as http:
        yield http


def sse_payloads(response: httpx.Response) -> list[str]:
    """The `data:` payloads of an SSE response, in order; asserts events are separated by blank lines."""
    body = response.read().decode()
    events = [e for e in body.split("\n\n") if e]
    assert body.endswith("\n\n")
    assert all(e.startswith("data: ") for e in events)
    return [e.removeprefix("data: ") for e in events]


def metric(client: httpx.Client, name: str) -> float:
    text = client.get("/metrics").text
    match = re.search(rf"^{re.escape(name)}\{{[^}}]*\}} (\S+)$", text, re.MULTILINE)
    assert match, text
    return float(match.group(1))


def test_streaming_completion_sends_one_openai_chunk_per_token_then_usage_then_done(client):
    prompt = "Tell me about the cost model of a batching server."
    body = {
        "model": SERVED,
        "prompt": prompt,
        "max_tokens": 12,
        "ignore_eos": True,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    with client.stream("POST", "/v1/completions", json=body) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        payloads = sse_payloads(response)
    assert payloads[-1] == "[DONE]"
    chunks = [json.loads(p) for p in payloads[:-1]]
    content, usage = chunks[:-1], chunks[-1]
    assert len(content) == 12
    ids = {c["id"] for c in chunks}
    assert len(ids) == 1
    assert ids.pop().startswith("cmpl-")
    for i, chunk in enumerate(content):
        assert chunk["object"] == "text_completion"
        assert chunk["model"] == SERVED
        (choice,) = chunk["choices"]
        assert choice["index"] == 0
        assert DEFAULT_COUNTER.count(choice["text"]) == 1
        assert choice["text"].startswith(" ")
        assert choice["finish_reason"] == ("length" if i == 11 else None)
        assert chunk["usage"] is None
    assert usage["choices"] == []
    expected_prompt = DEFAULT_COUNTER.count(prompt)
    assert usage["usage"] == {
        "prompt_tokens": expected_prompt,
        "completion_tokens": 12,
        "total_tokens": expected_prompt + 12,
    }
    text = "".join(c["choices"][0]["text"] for c in content)
    assert DEFAULT_COUNTER.count(text) == usage["usage"]["completion_tokens"]


def test_streaming_without_include_usage_sends_no_usage_chunk(client):
    body = {"model": SERVED, "prompt": "hello there", "max_tokens": 5, "ignore_eos": True, "stream": True}
    with client.stream("POST", "/v1/completions", json=body) as response:
        payloads = sse_payloads(response)
    assert payloads[-1] == "[DONE]"
    chunks = [json.loads(p) for p in payloads[:-1]]
    assert len(chunks) == 5
    assert all(len(c["choices"]) == 1 and "usage" not in c for c in chunks)


def test_streaming_chat_sends_role_chunk_then_one_word_per_chunk(client):
    messages = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": [{"type": "text", "text": "Name three rivers."}]},
    ]
    body = {
        "model": SERVED,
        "messages": messages,
        "max_completion_tokens": 7,
        "ignore_eos": True,
        "stream": True,
        "stream_options": {"include_usage": True},
        "temperature": 0.1,
        "top_p": 0.9,
        "some_vendor_field": {"x": 1},
    }
    with client.stream("POST", "/v1/chat/completions", json=body) as response:
        assert response.status_code == 200
        payloads = sse_payloads(response)
    assert payloads[-1] == "[DONE]"
    chunks = [json.loads(p) for p in payloads[:-1]]
    role, content, usage = chunks[0], chunks[1:-1], chunks[-1]
    assert role["object"] == "chat.completion.chunk"
    assert role["id"].startswith("chatcmpl-")
    assert role["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert len(content) == 7
    assert all(DEFAULT_COUNTER.count(c["choices"][0]["delta"]["content"]) == 1 for c in content)
    assert [c["choices"][0]["finish_reason"] for c in content] == [None] * 6 + ["length"]
    # contents ("You are terse." 4, "Name three rivers." 4) + 4 per message + 3 for the template
    assert usage["usage"]["prompt_tokens"] == 4 + 4 + 2 * 4 + 3 == 19
    assert usage["usage"]["completion_tokens"] == 7


def test_non_streaming_completion_usage_matches_client_side_count(client):
    prompt = "Summarise: the quick brown fox jumps over the lazy dog."
    body = {"model": SERVED, "prompt": prompt, "max_tokens": 25, "ignore_eos": True}
    response = client.post("/v1/completions", json=body)
    assert response.status_code == 200
    data = response.json()
    assert data["object"] == "text_completion"
    assert data["model"] == SERVED
    assert isinstance(data["created"], int)
    (choice,) = data["choices"]
    assert choice["finish_reason"] == "length"
    assert DEFAULT_COUNTER.count(choice["text"]) == data["usage"]["completion_tokens"] == 25
    assert data["usage"]["prompt_tokens"] == DEFAULT_COUNTER.count(prompt) == 12
    assert data["usage"]["total_tokens"] == 37


def test_non_streaming_chat_returns_assistant_message(client):
    body = {"model": SERVED, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 9, "ignore_eos": True}
    data = client.post("/v1/chat/completions", json=body).json()
    assert data["object"] == "chat.completion"
    (choice,) = data["choices"]
    assert choice["message"]["role"] == "assistant"
    assert DEFAULT_COUNTER.count(choice["message"]["content"]) == data["usage"]["completion_tokens"] == 9
    assert data["usage"]["prompt_tokens"] == 1 + 4 + 3


def test_without_ignore_eos_a_request_can_stop_early_with_finish_reason_stop(client):
    results = []
    for _ in range(5):
        body = {"model": SERVED, "prompt": "go", "max_tokens": 2000}
        results.append(client.post("/v1/completions", json=body).json())
    reasons = {r["choices"][0]["finish_reason"] for r in results}
    lengths = [r["usage"]["completion_tokens"] for r in results]
    assert reasons == {"stop"}
    assert all(1 <= n < 2000 for n in lengths)
    assert all(DEFAULT_COUNTER.count(r["choices"][0]["text"]) == r["usage"]["completion_tokens"] for r in results)


def test_completions_without_max_tokens_default_to_16(client):
    data = client.post("/v1/completions", json={"prompt": "x", "ignore_eos": True}).json()
    assert data["usage"]["completion_tokens"] == 16


def test_models_lists_the_served_model(client):
    response = client.get("/v1/models")
    assert response.status_code == 200
    assert response.json() == {
        "object": "list",
        "data": [{"id": SERVED, "object": "model", "created": 0, "owned_by": "tokenbench-sim"}],
    }


def test_health_is_ok(client):
    response = client.get("/health")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


def assert_openai_error(response: httpx.Response, status: int, code: str) -> dict:
    assert response.status_code == status
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert (error["type"], error["code"]) == ("invalid_request_error", code)  # OpenAI's type for a request at fault
    return error


@pytest.mark.parametrize("path", ["/ping", "/v2/health/ready"])
def test_the_health_paths_of_djl_and_triton_answer_200(client, path):
    assert client.get(path).status_code == 200


def test_tgi_stream_ends_with_an_event_carrying_generated_text_and_the_servers_counts(client):
    body = {"inputs": PROMPT_837, "parameters": {"max_new_tokens": 5, "details": True}}
    with client.stream("POST", "/generate_stream", json=body) as response:
        events = [json.loads(p) for p in sse_payloads(response)]
    assert len(events) <= 5 and all(e["token"]["special"] is False for e in events)
    assert [e["generated_text"] for e in events[:-1]] == [None] * (len(events) - 1)
    last = events[-1]
    assert last["generated_text"] == "".join(e["token"]["text"] for e in events)
    assert last["details"]["generated_tokens"] == len(events)
    assert last["details"]["input_length"] == DEFAULT_COUNTER.count(PROMPT_837) == 837


def test_tgi_rejects_temperature_0_as_tgi_does_with_422(client):
    response = client.post("/generate", json={"inputs": "hi", "parameters": {"temperature": 0}})
    assert response.status_code == 422
    assert response.json() == {"error": "`temperature` must be strictly positive", "error_type": "validation"}


def test_triton_answers_an_unknown_model_with_404_and_an_error_object(client):
    response = client.post("/v2/models/nope/generate", json={"text_input": "hi", "max_tokens": 2})
    assert response.status_code == 404
    assert response.json() == {"error": "Request for unknown model: 'nope' is not found"}


def test_bad_json_gives_400_openai_error(client):
    response = client.post("/v1/completions", content=b"{not json", headers={"content-type": "application/json"})
    error = assert_openai_error(response, 400, "invalid_json")
    assert error["message"].startswith("request body is not valid JSON: Expecting property name")


def test_missing_prompt_or_messages_gives_400(client):
    error = assert_openai_error(
        client.post("/v1/completions", json={"model": SERVED}), 400, "missing_required_parameter"
    )
    assert (error["param"], error["message"]) == ("prompt", "'prompt' is a required property")
    error = assert_openai_error(
        client.post("/v1/chat/completions", json={"model": SERVED}), 400, "missing_required_parameter"
    )
    assert (error["param"], error["message"]) == ("messages", "'messages' is a required property")


def test_invalid_max_tokens_gives_400(client):
    response = client.post("/v1/completions", json={"prompt": "x", "max_tokens": 0})
    error = assert_openai_error(response, 400, "invalid_request")
    assert (error["param"], error["message"]) == ("max_tokens", "'max_tokens' must be an integer >= 1")


def test_request_beyond_usable_context_gives_400(client):
    response = client.post("/v1/completions", json={"prompt": "x", "max_tokens": 50000})
    error = assert_openai_error(response, 400, "context_length_exceeded")
    # 1 prompt token ("x") + 50000 asked > the A10G's 42266 KV-cache tokens (test_sim_engine's hand computation)
    assert error["message"].startswith(
        "This model's maximum context length is 42266 tokens. However, you requested 50001 tokens "
        "(1 in the messages, 50000 in the completion)."
    )


def test_wrong_model_gives_404(client):
    response = client.post("/v1/completions", json={"model": "gpt-4o", "prompt": "x", "max_tokens": 2})
    error = assert_openai_error(response, 404, "model_not_found")
    assert (error["message"], error["param"]) == ("The model `gpt-4o` does not exist.", "model")


def test_client_disconnect_mid_stream_frees_the_request(client, server):
    body = {"model": SERVED, "prompt": "long one", "max_tokens": 20000, "ignore_eos": True, "stream": True}
    with (
        httpx.Client(base_url=server.url, timeout=30) as other,
        other.stream("POST", "/v1/completions", json=body) as response,
    ):
        lines = response.iter_lines()
        got = [line for _, line in zip(range(6), lines, strict=False) if line]
        assert len(got) == 3
        assert metric(client, "vllm:num_requests_running") == 1
        assert metric(client, "vllm:gpu_cache_usage_perc") > 0
    deadline = time.monotonic() + 5
    while metric(client, "vllm:num_requests_running") != 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert metric(client, "vllm:num_requests_running") == 0
    assert metric(client, "vllm:gpu_cache_usage_perc") == 0
    # The server is still healthy and serving.
    data = client.post("/v1/completions", json={"prompt": "x", "max_tokens": 3, "ignore_eos": True}).json()
    assert data["usage"]["completion_tokens"] == 3


def test_streamed_tokens_are_paced_by_the_model_at_speedup(client):
    cfg = EngineConfig.from_settings(SimSettings())
    prefill_s = cfg.prefill_duration_s([837]) / 20
    decode_s = sum(cfg.decode_duration_s(837 + i) for i in range(1, 40)) / 20
    body = {"model": SERVED, "prompt": PROMPT_837, "max_tokens": 40, "ignore_eos": True, "stream": True}
    start = time.perf_counter()
    stamps = []
    with client.stream("POST", "/v1/completions", json=body) as response:
        for line in response.iter_lines():
            if line.startswith("data: {"):
                stamps.append(time.perf_counter() - start)
    assert len(stamps) == 40
    # Steps end on absolute deadlines, so tokens can never come early; HTTP adds only a little.
    assert prefill_s * 0.98 <= stamps[0] <= prefill_s + 0.05
    assert (prefill_s + decode_s) * 0.98 <= stamps[-1] <= (prefill_s + decode_s) * 1.5 + 0.05


def test_sim_cli_prints_one_ready_line_with_the_free_port_and_stops_on_sigterm():
    """The contract a parent process relies on: `python -m collector sim --port 0`, parse the one stdout line."""
    cmd = [sys.executable, "-m", "collector", "sim", "--port", "0", "--speedup", "20", "--served-model-name", "sim-8b"]
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO_ROOT)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.fullmatch(rf"{re.escape(READY_LINE_PREFIX)}(http://127\.0\.0\.1:(\d+))\n", line)
        assert match, line
        assert int(match.group(2)) > 0
        assert httpx.get(match.group(1) + "/health", timeout=10).json() == {"status": "ok"}
        assert httpx.get(match.group(1) + "/v1/models", timeout=10).json()["data"][0]["id"] == "sim-8b"
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
        assert proc.returncode == 0, err
        assert out == ""  # exactly one line on stdout
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def _cli_args(*argv: str) -> argparse.Namespace:
    from collector.cli import sim as sim_cli

    parser = argparse.ArgumentParser(prog="collector")
    sim_cli.add_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["sim", *argv])


def test_cli_parser_defaults_and_settings():
    from collector.cli import sim as sim_cli

    args = _cli_args()
    assert (args.host, args.port, args.instance_type, args.model) == ("127.0.0.1", 8000, "g5.4xlarge", "llama-3.1-8b")
    settings = sim_cli._settings(_cli_args("--speedup", "20", "--seed", "3", "--mean-output-tokens", "12.5"))
    assert (settings.speedup, settings.seed, settings.mean_output_tokens) == (20, 3, 12.5)


def test_cli_invalid_value_is_a_one_line_config_error():
    from collector.cli import sim as sim_cli

    with pytest.raises(ConfigError, match=r"^invalid --speedup: Input should be greater than or equal to 1"):
        sim_cli.run(_cli_args("--speedup", "0.5"))


def test_cli_unknown_instance_type_fails_before_listening():
    from collector.cli import sim as sim_cli

    with pytest.raises(ConfigError, match=r"unknown instance type 'g9.huge'"):
        sim_cli.run(_cli_args("--instance-type", "g9.huge", "--port", "0"))


@pytest.mark.slow
def test_real_time_latency_matches_fmbench_report_at_speedup_1():
    """c=1 mean and c=2 p95 end-to-end latency over HTTP, in real time (about 11 s)."""

    def one(http: httpx.Client) -> float:
        body = {"model": SERVED, "prompt": PROMPT_837, "max_tokens": 40, "ignore_eos": True}
        start = time.perf_counter()
        data = http.post("/v1/completions", json=body).json()
        elapsed = time.perf_counter() - start
        assert data["usage"] == {"prompt_tokens": 837, "completion_tokens": 40, "total_tokens": 877}
        return elapsed

    def closed_loop_client(url: str, n: int) -> list[float]:
        with httpx.Client(base_url=url, timeout=30) as http:
            return [one(http) for _ in range(n)]

    with ServerThread(SimSettings(speedup=1)) as running:
        c1 = closed_loop_client(running.url, 3)
        with ThreadPoolExecutor(2) as pool:
            c2 = [x for xs in pool.map(closed_loop_client, [running.url] * 2, [3, 3]) for x in xs]
    assert statistics.mean(c1) == pytest.approx(1.68, rel=0.10)
    assert statistics.quantiles(c2, n=100, method="inclusive")[94] == pytest.approx(2.14, rel=0.10)


def test_min_tokens_holds_off_the_end_of_a_reply_and_above_max_tokens_is_refused(client):
    body = {"model": SERVED, "prompt": "hello", "max_tokens": 30, "min_tokens": 25}
    replies = [client.post("/v1/completions", json=body).json() for _ in range(12)]
    # With a mean natural length of 40, about half of twelve replies would end before 25 without min_tokens.
    assert all(25 <= r["usage"]["completion_tokens"] <= 30 for r in replies)
    refused = client.post("/v1/completions", json={**body, "min_tokens": 31})
    assert refused.status_code == 400
    assert refused.json()["error"]["param"] == "min_tokens"
