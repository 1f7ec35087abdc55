"""vLLM's serving benchmark result (`vllm bench serve --save-result --save-detailed`, formerly
benchmarks/benchmark_serving.py) as one level of imported rows.

Read from the source that writes the file: vllm-project/vllm `vllm/benchmarks/serve.py` at 009e6d4a (`benchmark()`
builds `result`, `main_async()` adds the setup keys and drops the per-request lists without --save-detailed),
`vllm/benchmarks/lib/endpoint_request_func.py` at 02cfb534 (RequestFuncOutput: what each list entry means), and the
older `benchmarks/benchmark_serving.py` at 0049e29c with `benchmarks/backend_request_func.py` at 01184130 (no
`latencies` or `start_times`; `latency` there ran to the `[DONE]` event and TTFT to the first non-empty text).

Per request i the file has parallel lists: input_lens, output_lens, ttfts, itls (inter-chunk gaps), errors, and in
newer versions latencies and start_times (perf_counter seconds). A request succeeded when its error is empty and it
got a first chunk (ttft > 0), or, where only that matches the file's `completed`, when its error is empty. A failed
request's latency and output_len are vLLM's defaults (0), not measurements, so they stay null (its ttft too, unless
a first chunk had arrived).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from collector.importers.records import (
    DEFAULT_PAYLOAD_FILE,
    ImportedFile,
    ImportedLevel,
    ImportedRequest,
    ImportOptions,
    LevelKey,
    count,
    error_kind,
    fault,
    number,
    read_json,
    require,
    seconds_ns,
)

TOOL = "vllm"
WHAT = "vLLM's `vllm bench serve --save-result --save-detailed` JSON"
PER_REQUEST = ("input_lens", "output_lens", "ttfts", "itls", "errors")
# vLLM's request functions per --backend: these stream OpenAI-style; others leave the wire format unknown.
API_STYLES = {"openai": "completions", "vllm": "completions", "openai-chat": "chat"}
ERROR_MESSAGE_CHARS = 500


def looks_like(data: Any) -> bool:
    return isinstance(data, dict) and ("ttfts" in data or ("request_throughput" in data and "duration" in data))


def read(path: Path, options: ImportOptions) -> ImportedFile:
    data = read_json(path, WHAT)
    if not isinstance(data, dict):
        raise fault(path, f"expected a JSON object ({WHAT}), found a list")
    if not looks_like(data):
        raise fault(path, f"not {WHAT}: no ttfts, duration or request_throughput")
    if not any(name in data for name in PER_REQUEST):
        raise fault(path, "no per-request lists (ttfts, itls, ...): vLLM writes them only with --save-detailed")
    duration_s = number(require(data, "duration", path, "", (int, float)), path, "duration")
    completed = count(require(data, "completed", path, "", int), path, "completed")
    lists: dict[str, list[Any]] = {name: require(data, name, path, "", list) for name in PER_REQUEST}
    for optional in ("latencies", "start_times"):
        if data.get(optional) is not None:
            lists[optional] = require(data, optional, path, "", list)
    n = len(lists["ttfts"])
    if n == 0:
        raise fault(path, "no requests: ttfts is empty")
    for name, values in lists.items():
        if len(values) != n:
            raise fault(path, f"{name}: {len(values)} entries where ttfts has {n} (one per request)")

    concurrency, level_name = _level(data, path, n)
    key = LevelKey(options.experiment_name or TOOL, options.payload_file or DEFAULT_PAYLOAD_FILE, concurrency)
    # An empty error is vLLM's success, but an HTTP error without a reason phrase is empty too; a success without
    # any chunk (ttft left at 0) happens only in old versions. The rule that gives the file's `completed` decides.
    for needs_first_chunk in (True, False):
        requests = [_request(lists, i, key, path, needs_first_chunk) for i in range(n)]
        successes = sum(r.is_success for r in requests)
        if successes == completed:
            break
    else:
        raise fault(
            path,
            f"{successes} requests succeeded (an empty error, with or without a first chunk) but completed "
            f"says {completed}",
        )
    failed = data.get("failed")
    if isinstance(failed, int) and not isinstance(failed, bool) and failed != n - successes:
        raise fault(path, f"{n - successes} requests failed but failed says {failed}")
    # Without send and end times per request the rows cannot give the level's span: vLLM's own duration (from
    # before the first request was sent to after the last one ended) is carried for it.
    spanned = "start_times" in lists and "latencies" in lists
    level = ImportedLevel(key, level_name, None if spanned else seconds_ns(duration_s))
    backend = data.get("backend", data.get("endpoint_type"))
    return ImportedFile(
        tool=TOOL,
        path=path,
        levels=[level],
        requests=requests,
        model_id=data["model_id"] if isinstance(data.get("model_id"), str) else None,
        api_style=API_STYLES.get(str(backend)),
        is_streaming=True if backend in API_STYLES else None,
        facts={
            k: data.get(k)
            for k in (
                "date",
                "backend",
                "label",
                "model_id",
                "tokenizer_id",
                "num_prompts",
                "request_rate",
                "burstiness",
                "max_concurrency",
                "duration",
                "completed",
                "failed",
            )
            if k in data
        },
    )


def _level(data: dict[str, Any], path: Path, n: int) -> tuple[int, str]:
    """The level's concurrency: max_concurrency when every request was let go at once (request_rate inf), or all
    n requests at once without a cap. A finite rate (or a ramp) is an open-loop level, not a concurrency."""
    rate = require(data, "request_rate", path, "", (str, int, float))
    cap = data.get("max_concurrency")
    if cap is not None and (isinstance(cap, bool) or not isinstance(cap, int) or cap < 1):
        raise fault(path, f"max_concurrency: expected a whole number >= 1 or null, found {cap!r}")
    if data.get("ramp_up_strategy") is not None:
        raise fault(
            path,
            f"ramp_up_strategy {data['ramp_up_strategy']!r}: the request rate changes through the run, an "
            "open-loop ramp with no one level; the marts key levels by concurrency, so it cannot be imported yet",
        )
    unbounded = rate == "inf" or (isinstance(rate, float) and math.isinf(rate))
    if not unbounded:
        capped = f" capped at max_concurrency {cap}" if cap is not None else ""
        raise fault(
            path,
            f"request_rate {rate} req/s{capped}: an open-loop rate level; the marts key levels by concurrency "
            "(a closed loop), so it cannot be imported yet",
        )
    if cap is not None:
        return cap, f"request_rate=inf, max_concurrency={cap}"
    return n, f"request_rate=inf, no max_concurrency: all {n} requests sent at once"


def _request(
    lists: dict[str, list[Any]], i: int, key: LevelKey, path: Path, needs_first_chunk: bool
) -> ImportedRequest:
    error = lists["errors"][i]
    if error is not None and not isinstance(error, str):
        raise fault(path, f"errors[{i}]: expected a string, found {type(error).__name__}")
    ttft = number(lists["ttfts"][i], path, f"ttfts[{i}]")
    ok = not error and (not needs_first_chunk or (ttft is not None and ttft > 0))
    itls = lists["itls"][i]
    if not isinstance(itls, list):
        raise fault(path, f"itls[{i}]: expected a list of inter-token gaps")
    gaps = [number(g, path, f"itls[{i}]") for g in itls]
    start = number(lists["start_times"][i], path, f"start_times[{i}]") if "start_times" in lists else None
    latency = number(lists["latencies"][i], path, f"latencies[{i}]") if "latencies" in lists else None
    e2e_ns = seconds_ns(latency) if ok else None
    first_ns = seconds_ns(ttft) if ttft is not None and ttft > 0 else None
    last_ns = None
    if ok and first_ns is not None and None not in gaps:
        # The last chunk carrying choices: vLLM's own timeline takes ttft + sum(itls) as that time.
        last_ns = first_ns + sum(seconds_ns(g) or 0 for g in gaps)
        if e2e_ns is not None:
            last_ns = min(last_ns, e2e_ns)  # the same instant, up to the rounding of each gap
    return ImportedRequest(
        level=key,
        file_order=i,
        is_success=ok,
        start_ns=seconds_ns(start),
        e2e_ns=e2e_ns,
        first_content_ns=first_ns,
        last_content_ns=last_ns,
        prompt_tokens=count(lists["input_lens"][i], path, f"input_lens[{i}]"),
        completion_tokens=count(lists["output_lens"][i], path, f"output_lens[{i}]") if ok else None,
        error_type=None if ok else error_kind(error),
        error_message=None if ok else _message(error),
    )


def _message(error: str | None) -> str:
    """The human part of vLLM's error: a traceback's last line, else the text (an HTTP reason phrase)."""
    if not error:
        return "no first chunk arrived; vLLM recorded no error message"
    lines = [line.strip() for line in error.strip().splitlines() if line.strip()]
    text = lines[-1] if error.lstrip().startswith("Traceback") and lines else error.strip()
    return text[:ERROR_MESSAGE_CHARS]
