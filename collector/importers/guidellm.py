"""GuideLLM's benchmarks report (`guidellm benchmark --output-path x.json`, schema of GuideLLM 0.4 to 0.7): each
benchmark with a concurrency is one level of imported rows.

Read from vllm-project/guidellm at v0.7.3 (39383552): `src/guidellm/benchmark/schemas/report.py`
(GenerativeBenchmarksReport: metadata, config, benchmarks), `.../schemas/benchmark.py` (GenerativeBenchmark: config
with its strategy, scheduler_metrics with the measured window, metrics.request_totals, requests as successful /
errored / incomplete lists), `.../schemas/accumulator.py` (every request is kept unless --sample-requests, and the
lists include the warm-up and cool-down), `src/guidellm/schemas/request_stats.py` and `schemas/info.py`
(GenerativeRequestStats: info.timings as Unix seconds, input_metrics / output_metrics token counts, info.error) and
`src/guidellm/scheduler/strategies.py` (synchronous, concurrent@streams, throughput@max_concurrency, constant and
poisson rates, trace replay). The per-request shape is the same since v0.4.0; earlier reports are refused.

Levels: synchronous is concurrency 1, concurrent its streams, throughput its max_concurrency (the scheduler fills
it in); constant, poisson and trace benchmarks are open-loop rates and are skipped with why, as is a benchmark whose
lists hold only a sample of its requests. Incomplete requests (cut off when a benchmark's time ran out) are left out
and counted in the manifest; requests wholly outside the measured window are landed as warm-up.
"""

from __future__ import annotations

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

TOOL = "guidellm"
WHAT = "GuideLLM's benchmarks report JSON (`guidellm benchmark --output-path x.json`)"
STATUSES = ("successful", "errored", "incomplete")
RATE_STRATEGIES = ("constant", "poisson", "async", "trace")
MODALITIES = ("text", "image", "video", "audio")
ERROR_MESSAGE_CHARS = 500
NO_MESSAGE = "GuideLLM recorded no error message"


def looks_like(data: Any) -> bool:
    return isinstance(data, dict) and isinstance(data.get("benchmarks"), list)


def read(path: Path, options: ImportOptions) -> ImportedFile:
    data = read_json(path, WHAT)
    if not looks_like(data):
        raise fault(path, f"not {WHAT}: no benchmarks list")
    benchmarks = data["benchmarks"]
    if not benchmarks:
        raise fault(path, "benchmarks: empty, no benchmark to import")
    levels: list[ImportedLevel] = []
    requests: list[ImportedRequest] = []
    skipped: list[str] = []
    left_out: dict[str, int] = {}
    taken: dict[int, str] = {}
    experiment = options.experiment_name or TOOL
    payload = options.payload_file or DEFAULT_PAYLOAD_FILE
    for b, bench in enumerate(benchmarks):
        where = f"benchmarks[{b}]."
        if not isinstance(bench, dict):
            raise fault(path, f"benchmarks[{b}]: expected an object")
        config = require(bench, "config", path, where, dict)
        strategy = require(config, "strategy", path, f"{where}config.", dict)
        kind = require(strategy, "type_", path, f"{where}config.strategy.", str)
        lists = require(bench, "requests", path, where, dict)
        by_status = {s: require(lists, s, path, f"{where}requests.", (list, type(None))) or [] for s in STATUSES}
        _check_shape(by_status, path, where)
        name = _strategy_name(kind, strategy)
        concurrency, why_not = _concurrency(kind, strategy)
        if why_not is None:
            why_not = _sampled(bench, by_status)
        if why_not is None and concurrency in taken:
            why_not = f"concurrency {concurrency} is already benchmark {taken[concurrency]}'s level"
        if why_not is not None or concurrency is None:
            skipped.append(f"benchmark {b} ({name}): {why_not}")
            continue
        taken[concurrency] = f"{b} ({name})"
        key = LevelKey(experiment, payload, concurrency)
        levels.append(ImportedLevel(key, f"benchmark {b}: {name}"))
        window = _window(bench)
        for status in ("successful", "errored"):
            for i, stats in enumerate(by_status[status]):
                at = f"{where}requests.{status}[{i}]."
                requests.append(_request(stats, key, len(requests), status, window, path, at))
        if by_status["incomplete"]:
            left_out[f"benchmark {b} ({name})"] = len(by_status["incomplete"])
    if not levels:
        raise fault(path, "no benchmark with a concurrency to import: " + "; ".join(skipped))
    metadata = data.get("metadata") if isinstance(data.get("metadata"), dict) else {}
    return ImportedFile(
        tool=TOOL,
        path=path,
        levels=levels,
        requests=requests,
        skipped=skipped,
        model_id=_model(data),
        facts={
            "guidellm_version": metadata.get("guidellm_version"),
            "report_schema_version": metadata.get("version"),
            "incomplete_requests_left_out": left_out,
        },
    )


def _check_shape(by_status: dict[str, list[Any]], path: Path, where: str) -> None:
    """GuideLLM >= 0.4 writes each request with info.timings; earlier reports had another shape."""
    for status, items in by_status.items():
        for i, stats in enumerate(items):
            if not isinstance(stats, dict):
                raise fault(path, f"{where}requests.{status}[{i}]: expected an object")
            if "info" not in stats and ("start_time" in stats or "first_token_time" in stats):
                raise fault(
                    path,
                    f"{where}requests.{status}[{i}]: a GuideLLM report from before 0.4 (no info.timings); re-run "
                    "with GuideLLM 0.4 or later to import it",
                )
            info = require(stats, "info", path, f"{where}requests.{status}[{i}].", dict)
            require(info, "timings", path, f"{where}requests.{status}[{i}].info.", dict)


def _strategy_name(kind: str, strategy: dict[str, Any]) -> str:
    """GuideLLM's own name for a strategy (str() of its strategy classes)."""
    if kind == "concurrent":
        return f"concurrent@{strategy.get('streams')}"
    if kind == "throughput":
        return f"throughput@{strategy.get('max_concurrency') or 'unlimited'}"
    if kind in ("constant", "poisson") and isinstance(strategy.get("rate"), int | float):
        return f"{kind}@{strategy['rate']:.2f}"
    return kind


def _concurrency(kind: str, strategy: dict[str, Any]) -> tuple[int | None, str | None]:
    """(the level's concurrency, None) or (None, why the benchmark is no concurrency level)."""
    if kind == "synchronous":
        return 1, None
    field = {"concurrent": "streams", "throughput": "max_concurrency"}.get(kind)
    if field is not None:
        value = strategy.get(field)
        if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
            return value, None
        return None, f"{kind} without a {field} recorded"
    if kind in RATE_STRATEGIES:
        return None, "an open-loop rate level; the marts key levels by concurrency, so it cannot be imported yet"
    return None, f"unknown strategy type {kind!r}"


def _sampled(bench: dict[str, Any], by_status: dict[str, list[Any]]) -> str | None:
    """Why not, when the lists hold fewer requests than the benchmark made (GuideLLM's --sample-requests)."""
    metrics = bench.get("metrics")
    totals = metrics.get("request_totals") if isinstance(metrics, dict) else None
    if not isinstance(totals, dict):
        return None
    for status in STATUSES:
        total = totals.get(status)
        if isinstance(total, int) and total > len(by_status[status]):
            return (
                f"its {status} list holds {len(by_status[status])} of {total} requests (a sample, "
                "--sample-requests): counts and throughput need every request"
            )
    return None


def _window(bench: dict[str, Any]) -> tuple[float | None, float | None]:
    """The benchmark's measured window (Unix seconds): requests wholly outside it are its warm-up or cool-down."""
    sched = bench.get("scheduler_metrics")
    if not isinstance(sched, dict):
        return None, None
    start, end = sched.get("measure_start_time"), sched.get("measure_end_time")
    return (
        float(start) if isinstance(start, int | float) and not isinstance(start, bool) else None,
        float(end) if isinstance(end, int | float) and not isinstance(end, bool) else None,
    )


def _request(
    stats: dict[str, Any],
    key: LevelKey,
    order: int,
    status: str,
    window: tuple[float | None, float | None],
    path: Path,
    where: str,
) -> ImportedRequest:
    info = stats["info"]
    timings = info["timings"]

    def at(name: str) -> float | None:
        return number(timings.get(name), path, f"{where}info.timings.{name}")

    # GuideLLM's request_start_time / request_end_time fall back to the resolve times the same way.
    start = at("request_start") if timings.get("request_start") is not None else at("resolve_start")
    end = at("request_end") if timings.get("request_end") is not None else at("resolve_end")
    first, last = at("first_token_iteration"), at("last_token_iteration")
    ok = status == "successful"
    start_ns = seconds_ns(start)

    def since_start(t: float | None) -> int | None:
        # Each instant rounded on its own and then subtracted, so every duration stays within e2e.
        t_ns = seconds_ns(t)
        return None if t_ns is None or start_ns is None else t_ns - start_ns

    measure_start, measure_end = window
    outside = (end is not None and measure_start is not None and end < measure_start) or (
        start is not None and measure_end is not None and start > measure_end
    )
    error = info.get("error")
    return ImportedRequest(
        level=key,
        file_order=order,
        is_success=ok,
        start_ns=start_ns,
        wall_start_ns=start_ns,
        e2e_ns=since_start(end),
        first_content_ns=since_start(first),
        last_content_ns=since_start(last),
        prompt_tokens=_tokens(stats, "prompt_tokens", "input_metrics", path, where),
        completion_tokens=_tokens(stats, "output_tokens", "output_metrics", path, where) if ok else None,
        error_type=None if ok else error_kind(str(error) if error else None),
        error_message=None if ok else (str(error) if error else NO_MESSAGE)[:ERROR_MESSAGE_CHARS],
        is_warmup=outside,
        source_request_id=str(stats["request_id"]) if stats.get("request_id") is not None else None,
    )


def _tokens(stats: dict[str, Any], computed: str, usage: str, path: Path, where: str) -> int | None:
    """The request's token count from its usage metrics (text, image, video and audio tokens summed, as GuideLLM's
    UsageMetrics.total_tokens); not GuideLLM's fallback of one token per streamed iteration."""
    metrics = stats.get(usage)
    if isinstance(metrics, dict):
        parts = [count(metrics.get(f"{m}_tokens"), path, f"{where}{usage}.{m}_tokens") for m in MODALITIES]
        if any(p is not None for p in parts):
            return sum(p for p in parts if p is not None)
        return None
    return count(stats.get(computed), path, f"{where}{computed}")


def _model(data: dict[str, Any]) -> str | None:
    """The model the report names, wherever its version put it."""
    for section in ("config", "args"):
        block = data.get(section)
        if not isinstance(block, dict):
            continue
        for holder in (block, block.get("backend")):
            if isinstance(holder, dict) and isinstance(holder.get("model"), str) and holder["model"]:
                return str(holder["model"])
    for bench in data.get("benchmarks") or []:
        backend = bench.get("config", {}).get("backend") if isinstance(bench, dict) else None
        if isinstance(backend, dict) and isinstance(backend.get("model"), str) and backend["model"]:
            return str(backend["model"])
    return None
