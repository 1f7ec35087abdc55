"""The raw-row schema: one dataclass per raw table, the single definition of every landed column.

The JSONL landing files, the DuckDB views `raw.*` (which dbt's sources read) and the README's schema
table all derive from these classes. Bump SCHEMA_VERSION when a column changes meaning or type.
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, field, fields
from typing import Any

SCHEMA_VERSION = 10  # 2: requests.data_issue; runs.pid, process_started_at and engines_json
# 3: requests.server_prompt_tokens and server_completion_tokens; token_counter names the tokenizer or the fallback
# 4: requests.content_chunk_offsets_ns (inter-token latency); the warm-up ends before the measured requests start;
#    runs.slo_* (goodput)
# 5: requests.source_tool, source_request_id and source_level_duration_ns; runs.source_tool and source_file (imported
#    runs, `collector import`); columns an imported row's tool did not record are null (each column says which)
# 6: requests.load_model, target_rate_rps and intended_offset_ns (open-loop rate levels)
# 7: telemetry_samples.source, experiment_name, level_boundary and server_* (the serving engine's own Prometheus
#    metrics, collector/server_metrics.py); null in host and GPU rows and before v7
# 8: requests.retry_count, retry_wait_ns, last_attempt_offset_ns, server_latency_ms and service_request_id (managed
#    AWS endpoints, `type: bedrock` / `sagemaker`); null for every other kind and before v8
# 9: requests.repeat_index (repeats_per_level); telemetry_samples.event_loop_lag_s (the collector's own event loop,
#    source 'client') and cloudwatch_* (a SageMaker endpoint's CloudWatch metrics, read after the sweep,
#    collector/aws/cloudwatch.py); null in every other row and before v9
# 10: requests.shard_index and shard_count (load split across client processes and hosts: experiments[].
#    client_processes, `collector run --shard i/n`); runs.shards_json (each shard's host, processes and clock offset)

# What an imported row leaves null when its tool did not record it (appended to those columns' docs).
IMPORTED_NULL = " Null in an imported row (source_tool set) whose tool did not record it."


def col(sql_type: str, doc: str, default: Any = MISSING) -> Any:
    """A dataclass field carrying its DuckDB type and description."""
    meta = {"sql": sql_type, "doc": doc}
    if default is MISSING:
        return field(metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class RequestRow:
    """raw.requests: one row per request sent, success or failure, warm-up included."""

    run_id: str = col("VARCHAR", "Run this request belongs to (raw.runs.run_id).")
    request_id: str = col(
        "VARCHAR",
        "Unique id: '<run_id>:<sequence in run>'. Sent as X-Request-Id in UUID form, "
        "uuid5(NAMESPACE_URL, request_id) (collector.loadgen.wire_request_id), for joining server logs.",
    )
    experiment_name: str = col("VARCHAR", "Experiment name from the config.")
    model_id: str = col("VARCHAR", "Model id from the config (e.g. meta-llama/Llama-3.1-8B-Instruct).")
    endpoint_type: str = col(
        "VARCHAR",
        "Endpoint kind: simulated, openai, container, process, bedrock or sagemaker; imported for a row of an "
        "imported run.",
    )
    endpoint_url: str | None = col("VARCHAR", "URL the request was sent to." + IMPORTED_NULL)
    api_style: str | None = col(
        "VARCHAR", "Wire format used: completions, chat, tgi, djl, triton, or converse (Bedrock)." + IMPORTED_NULL
    )
    is_streaming: bool | None = col("BOOLEAN", "Whether the response was requested as an SSE stream." + IMPORTED_NULL)
    instance_type: str | None = col("VARCHAR", "Instance type serving the endpoint; null for token-priced APIs.")
    instance_count: int = col("INTEGER", "Number of instances behind the endpoint.")
    payload_file: str = col("VARCHAR", "Payload bucket the prompt came from (file name or synthetic bucket name).")
    prompt_index: int | None = col("INTEGER", "Index of the prompt within its bucket." + IMPORTED_NULL)
    concurrency: int = col("INTEGER", "Concurrency level: requests kept in flight by the closed loop.")
    worker_index: int | None = col("INTEGER", "Which of the `concurrency` workers sent it (0-based)." + IMPORTED_NULL)
    sequence_in_level: int = col(
        "INTEGER",
        "Order in which the level handed the request out (0-based, warm-up first); in an imported row, the order of "
        "the tool's send times (else its file order).",
    )
    is_warmup: bool = col("BOOLEAN", "Warm-up request: recorded but excluded from metrics.")
    max_tokens: int | None = col("INTEGER", "max_tokens asked of the endpoint.")
    started_at: str | None = col(
        "TIMESTAMPTZ", "Wall-clock time the request was sent (for joins and display only)." + IMPORTED_NULL
    )
    start_offset_ns: int | None = col(
        "BIGINT",
        "Monotonic send time, ns since the run started (for spans); in an imported row, since the earliest send "
        "time in the tool's file, on the tool's clock." + IMPORTED_NULL,
    )
    # `int` for the load path, which always measures it (loadgen reads it back as one); an import may land None.
    e2e_ns: int = col("BIGINT", "Send to end of response (or failure), ns, perf counter." + IMPORTED_NULL)
    first_chunk_ns: int | None = col("BIGINT", "Send to first response byte/chunk, ns; null if none arrived.")
    first_content_ns: int | None = col(
        "BIGINT",
        "Send to first chunk with non-empty content (TTFT), ns; in an imported row, the tool's own TTFT (see the "
        "README's import section for each tool's definition).",
    )
    last_content_ns: int | None = col("BIGINT", "Send to last chunk with non-empty content, ns.")
    chunk_count: int | None = col("INTEGER", "SSE data events received (0 for non-streaming)." + IMPORTED_NULL)
    content_chunk_count: int | None = col("INTEGER", "SSE data events with non-empty content." + IMPORTED_NULL)
    status: str = col("VARCHAR", "success or error.")
    http_status: int | None = col("INTEGER", "HTTP status code; null if no response arrived.")
    error_type: str | None = col(
        "VARCHAR",
        "Null on success, else one of: timeout, connect_error, connection_reset, http_error, "
        "malformed_response, stream_cut, cancelled, client_error (a fault of the collector's own host, "
        "e.g. out of file descriptors, not of the endpoint), tool_error (an imported row's failure whose kind its "
        "tool did not record: error_message holds the tool's message).",
    )
    error_message: str | None = col("VARCHAR", "Human-readable cause of the error (truncated to 500 chars).")
    finish_reason: str | None = col("VARCHAR", "finish_reason reported by the endpoint (length, stop, ...).")
    prompt_tokens: int | None = col(
        "INTEGER",
        "Prompt tokens: the server's usage if reported, else client_prompt_tokens; in an imported row, the tool's "
        "count.",
    )
    completion_tokens: int | None = col(
        "INTEGER",
        "Completion tokens: the server's usage if reported, else client_completion_tokens; in an imported row, the "
        "tool's count.",
    )
    token_count_source: str | None = col(
        "VARCHAR",
        "server when completion_tokens is the server's count (prompt_tokens falls back to the client's count when "
        "the server reports none, as TGI's /generate), else client. Null in an imported row (its tool does not "
        "record which, per request).",
    )
    client_prompt_tokens: int | None = col(
        "INTEGER",
        "Prompt tokens counted by the experiment's token counter, as the wire format sends the prompt: chat "
        "messages through the tokenizer's chat template (generation prompt included), text with its default "
        "special tokens; the built-in counter counts the text or the messages' contents. Null in an imported row.",
    )
    client_completion_tokens: int | None = col(
        "INTEGER",
        "Tokens of the received text, counted by the experiment's token counter (no special tokens). Null in an "
        "imported row.",
    )
    token_counter: str | None = col(
        "VARCHAR",
        "Counter of the client_* counts: 'transformers:<folder or hub id>' for a model's tokenizer, 'simple-regex' "
        "for the built-in counter, 'simple-regex (fallback: <reason>)' when the model_id's tokenizer could not be "
        "loaded. Null in an imported row.",
    )
    data_issue: str | None = col(
        "VARCHAR",
        "Null when every value the server sent was sane; else which value was set aside and why, with the raw "
        "value (e.g. a negative usage count: the client's count is used instead).",
        None,
    )
    server_prompt_tokens: int | None = col(
        "INTEGER", "Prompt tokens the server reported in its usage; null when it reported none (or before v3).", None
    )
    server_completion_tokens: int | None = col(
        "INTEGER",
        "Completion tokens the server reported in its usage; null when it reported none (or before v3).",
        None,
    )
    content_chunk_offsets_ns: list[int] | None = col(
        "BIGINT[]",
        "Send to each streamed chunk with content, ns, in arrival order (chunks read together share a time); "
        "the inter-token latency's gaps. Null when not streamed (or before v4); at most the first 100,000.",
        None,
    )
    schema_version: int = col("INTEGER", "Raw schema version.", SCHEMA_VERSION)
    # Imported runs (`collector import`, collector/importers/): null in tokenbench's own rows and before v5.
    source_tool: str | None = col(
        "VARCHAR",
        "Null for tokenbench's own requests; for an imported run, the tool whose per-request file the row came from: "
        "vllm, guidellm, aiperf or fmbench (raw.runs.source_file names the file).",
        None,
    )
    source_request_id: str | None = col(
        "VARCHAR",
        "The request's id in its tool's file (GuideLLM request_id, AIPerf x_request_id, FMBench uuid); null for our "
        "own rows and where the tool records none (vLLM).",
        None,
    )
    source_level_duration_ns: int | None = col(
        "BIGINT",
        "The level's duration as the source tool measured it, ns, carried on each row of the level only when the "
        "tool recorded no per-request send times (a vLLM result without start_times: its `duration`); the marts' "
        "level span falls back to it. Null otherwise, and for our own rows.",
        None,
    )
    # Open-loop levels (collector/load_models.py): null before v6 (read as closed-loop levels).
    load_model: str | None = col(
        "VARCHAR",
        "How the level sent its requests: closed (`concurrency` kept in flight) or rate (an open loop at "
        "target_rate_rps, `concurrency` being its cap on requests in flight). Null before v6 and in imported rows "
        "(read as closed).",
        None,
    )
    target_rate_rps: float | None = col(
        "DOUBLE", "The open-loop level's target request rate, per second; null for a closed-loop level.", None
    )
    intended_offset_ns: int | None = col(
        "BIGINT",
        "When the open-loop schedule meant to send it, ns since the run started (the clock of start_offset_ns, "
        "which is when it was sent: the difference is how late the client was). Null in a closed loop and for "
        "warm-up requests.",
        None,
    )
    # Managed AWS endpoints (type: bedrock / sagemaker, collector/aws/): null for every other kind and before v8.
    retry_count: int | None = col(
        "INTEGER",
        "Times the request was throttled (ThrottlingException, HTTP 429) and sent again after a backoff; 0 when "
        "never. Null for endpoint kinds that do not retry (all but bedrock and sagemaker).",
        None,
    )
    retry_wait_ns: int | None = col(
        "BIGINT",
        "Time spent in backoff between throttled attempts, ns (inside e2e_ns, which counts from the first send). "
        "Null where retry_count is.",
        None,
    )
    last_attempt_offset_ns: int | None = col(
        "BIGINT",
        "First send to the send of the final attempt, ns (0 when not retried): e2e_ns minus this is the final "
        "attempt's own latency. Null where retry_count is.",
        None,
    )
    server_latency_ms: int | None = col(
        "INTEGER",
        "The service's own latency of the request, ms, as it reported it (Bedrock's metrics.latencyMs); beside our "
        "e2e_ns, the difference is network and client time. Null when the service reports none.",
        None,
    )
    service_request_id: str | None = col(
        "VARCHAR",
        "The service's request id (x-amzn-RequestId), for matching CloudTrail or support cases. Null for other kinds.",
        None,
    )
    repeat_index: int | None = col(
        "INTEGER",
        "Which run of its level the request belongs to, 1 to the experiment's repeats_per_level (levels run that "
        "many times back to back). Null before v9 and in imported rows (read as 1).",
        None,
    )
    shard_index: int | None = col(
        "INTEGER",
        "Which client process sent it, 0-based across all the run's hosts and processes (host shard i of n with P "
        "client_processes each: (i - 1) * P + process); 0 in an unsharded run. Each one sends its share of every "
        "level, so the level keys stay the same. Null before v10 and in imported rows.",
        None,
    )
    shard_count: int | None = col(
        "INTEGER",
        "How many client processes shared the level (n hosts times client_processes); 1 unsharded. Null before "
        "v10 and in imported rows.",
        None,
    )


@dataclass
class TelemetrySample:
    """raw.telemetry_samples: one row per sampling instant and device (the host, or one GPU)."""

    # A row of another source (server, client, cloudwatch) leaves the host and GPU columns at their null defaults.

    run_id: str = col("VARCHAR", "Run being collected.")
    sampled_at: str = col("TIMESTAMPTZ", "Wall-clock time of the sample.")
    offset_ns: int = col("BIGINT", "Monotonic sample time, ns since the run started (same clock as requests).")
    hostname: str = col("VARCHAR", "Host that took the sample (where the collector runs).")
    device: str = col("VARCHAR", "host, gpu<N>, server (an engine's /metrics) or endpoint (CloudWatch).")
    gpu_index: int | None = col("INTEGER", "NVML index of the GPU; null for host rows.", None)
    gpu_name: str | None = col("VARCHAR", "GPU product name; null for host rows.", None)
    cpu_percent: float | None = col("DOUBLE", "Host CPU utilisation since the previous sample, % of all cores.", None)
    memory_used_bytes: int | None = col("BIGINT", "Host memory in use, bytes.", None)
    memory_total_bytes: int | None = col("BIGINT", "Host memory installed, bytes.", None)
    gpu_utilization_percent: float | None = col("DOUBLE", "GPU busy time over NVML's last sample period, %.", None)
    gpu_memory_used_bytes: int | None = col("BIGINT", "GPU memory in use, bytes.", None)
    gpu_memory_total_bytes: int | None = col("BIGINT", "GPU memory installed, bytes.", None)
    gpu_power_w: float | None = col("DOUBLE", "GPU power draw, watts.", None)
    gpu_energy_j: float | None = col(
        "DOUBLE", "GPU energy counter since driver load, joules (null if unsupported).", None
    )
    schema_version: int = col("INTEGER", "Raw schema version.", SCHEMA_VERSION)
    # The serving engine's own view (v7, collector/server_metrics.py): null in host and GPU rows and before v7.
    source: str | None = col(
        "VARCHAR",
        "Where the sample came from: host or gpu (psutil, NVML), server:<engine> (vllm, sglang, tgi, llamacpp, "
        "triton) for a scrape of the engine's Prometheus /metrics (device is then 'server'), or cloudwatch:sagemaker "
        "for a SageMaker endpoint's CloudWatch datapoints (device 'endpoint'). Null before v7 (a row with gpu_index "
        "is a GPU's, else the host's).",
        None,
    )
    experiment_name: str | None = col(
        "VARCHAR",
        "For a server or CloudWatch row, the experiment whose endpoint was read; null for host and GPU rows.",
        None,
    )
    level_boundary: str | None = col(
        "VARCHAR",
        "For a server row scraped at a level's measured-window edge, with no request in flight: measured_start "
        "(right after the warm-up requests ended) or measured_end (right after the last measured request ended); "
        "null for the once-a-second scrapes.",
        None,
    )
    server_requests_running: float | None = col(
        "DOUBLE", "Requests in the engine's running batch (vLLM num_requests_running and its peers).", None
    )
    server_requests_waiting: float | None = col("DOUBLE", "Requests queued in the engine, not yet running.", None)
    server_kv_cache_usage: float | None = col(
        "DOUBLE", "Fraction of the engine's KV cache in use, 0 to 1; null where the engine does not expose it.", None
    )
    server_prompt_tokens_total: float | None = col(
        "DOUBLE", "Engine counter: prompt tokens processed since it started.", None
    )
    server_generation_tokens_total: float | None = col(
        "DOUBLE", "Engine counter: tokens generated since it started.", None
    )
    server_ttft_sum_s: float | None = col(
        "DOUBLE", "Sum of the engine's time-to-first-token histogram since it started, s.", None
    )
    server_ttft_count: float | None = col("DOUBLE", "Observations in that TTFT histogram.", None)
    server_e2e_sum_s: float | None = col(
        "DOUBLE", "Sum of the engine's end-to-end request latency histogram since it started, s.", None
    )
    server_e2e_count: float | None = col("DOUBLE", "Observations in that end-to-end histogram.", None)
    server_queue_time_sum_s: float | None = col(
        "DOUBLE", "Sum of the engine's queue-time (waiting phase) histogram since it started, s.", None
    )
    server_queue_time_count: float | None = col("DOUBLE", "Observations in that queue-time histogram.", None)
    # The collector's own event loop (v9, source 'client'): null in every other row and before v9.
    event_loop_lag_s: float | None = col(
        "DOUBLE",
        "For a client row (source 'client', device 'event_loop', sampled every 0.1 s while a level runs): how much "
        "later than asked the collector's event loop woke up, s. A loop that lags sends late and reads replies "
        "late, so its figures carry client time; null in every other row.",
        None,
    )
    # A SageMaker endpoint's CloudWatch metrics (v9, collector/aws/cloudwatch.py): one row per period CloudWatch
    # returned a datapoint for; null in every other row and before v9.
    cloudwatch_period_s: float | None = col(
        "DOUBLE",
        "For a CloudWatch row (source cloudwatch:sagemaker): the period its datapoints aggregate, s; sampled_at and "
        "offset_ns are the period's start (offset_ns converted from CloudWatch's wall-clock timestamp, and negative "
        "for a period that began before the run).",
        None,
    )
    cloudwatch_invocations: float | None = col(
        "DOUBLE", "CloudWatch AWS/SageMaker Invocations (Sum) over the period: requests the endpoint received.", None
    )
    cloudwatch_invocations_per_instance: float | None = col(
        "DOUBLE", "CloudWatch InvocationsPerInstance (Sum): Invocations divided by the variant's instance count.", None
    )
    cloudwatch_model_latency_sum_s: float | None = col(
        "DOUBLE",
        "CloudWatch ModelLatency (Sum) over the period, s (published in microseconds): the container's time to "
        "respond as SageMaker saw it, summed over the period's invocations.",
        None,
    )
    cloudwatch_model_latency_count: float | None = col(
        "DOUBLE", "CloudWatch ModelLatency (SampleCount): the invocations that sum covers.", None
    )
    cloudwatch_overhead_latency_sum_s: float | None = col(
        "DOUBLE",
        "CloudWatch OverheadLatency (Sum), s: the time SageMaker added beyond the model's (request received to "
        "response returned, minus ModelLatency), summed over the period's invocations.",
        None,
    )
    cloudwatch_overhead_latency_count: float | None = col(
        "DOUBLE", "CloudWatch OverheadLatency (SampleCount): the invocations that sum covers.", None
    )
    cloudwatch_gpu_utilization_percent: float | None = col(
        "DOUBLE",
        "CloudWatch /aws/sagemaker/Endpoints GPUUtilization (Average), where the container publishes it: percent "
        "summed over the instance's GPUs (0 to 100 x GPUs), averaged over its instances.",
        None,
    )
    cloudwatch_gpu_memory_utilization_percent: float | None = col(
        "DOUBLE", "CloudWatch GPUMemoryUtilization (Average), where published: percent, summed over GPUs alike.", None
    )


@dataclass
class RunManifest:
    """raw.runs: one row per run; rewritten in place while the run goes on, final at its end."""

    run_id: str = col("VARCHAR", "Unique run id: UTC start time plus a random suffix.")
    run_name: str = col("VARCHAR", "run_name from the config.")
    status: str = col(
        "VARCHAR", "running, completed, interrupted, failed, or lost (the collector died without finishing)."
    )
    started_at: str = col(
        "TIMESTAMPTZ",
        "Wall-clock start of the run; for an imported run, the earliest wall-clock time its tool recorded, else when "
        "it was imported.",
    )
    ended_at: str | None = col(
        "TIMESTAMPTZ",
        "Wall-clock end; null while running or after a kill. For an imported run, the latest wall-clock time its "
        "tool recorded, else when it was imported.",
    )
    heartbeat_at: str = col("TIMESTAMPTZ", "Last time the running collector rewrote this manifest.")
    error_message: str | None = col("VARCHAR", "Why the run failed or was interrupted.")
    config_path: str = col(
        "VARCHAR", "Config file the run was started with (for an imported run, the one its budgets came from)."
    )
    config_json: dict[str, Any] = col(
        "JSON",
        "Resolved config, secrets redacted. For an imported run: its run_name, experiments (name, model_id, payloads, "
        "concurrency_levels: the levels the file implies) and report, in the config's shape, and `import` (tool, "
        "file, its sha256, the options given, each level taken with the tool's own name for it, each one skipped "
        "and why).",
    )
    experiments_json: list[dict[str, Any]] = col(
        "JSON",
        "Per experiment: experiment_name, model_id, endpoint_type, instance_type, instance_count, "
        "pricing_kind (instance|token|unpriced), price_source (pricing: from pricing/, config: given inline; "
        "null when unpriced), the prices applied (usd_per_hour, usd_per_1m_input_tokens, "
        "usd_per_1m_output_tokens, price_read_on) and telemetry_host (endpoint: telemetry describes the "
        "endpoint's host; collector: only the collector's host, the endpoint being remote).",
    )
    latency_budget_s: float = col("DOUBLE", "Latency budget from the config (compared with p95 latency), s.")
    cost_per_10k_txn_budget_usd: float = col("DOUBLE", "Cost budget per 10,000 transactions, USD.")
    error_rate_budget: float = col("DOUBLE", "Highest acceptable error rate (fraction).")
    dataset_of_interest: str = col("VARCHAR", "Payload bucket the recommendation is made for.")
    collector_version: str = col("VARCHAR", "tokenbench collector version.")
    package_versions_json: dict[str, str] = col("JSON", "Versions of the packages that shaped the run.")
    hostname: str = col("VARCHAR", "Host the collector ran on (for an imported run, the host that imported it).")
    platform: str = col("VARCHAR", "OS and machine of that host.")
    python_version: str = col("VARCHAR", "Python version of the collector.")
    cpu_count: int = col("INTEGER", "Logical CPUs of the collector's host.")
    engines_json: list[dict[str, Any]] | None = col(
        "JSON",
        "Per engine the collector started (type: container or process): stack, redacted launch command, container "
        "id or pid, image digest, engine version, log file. Written when the run ends.",
        None,
    )
    pid: int | None = col(
        "INTEGER", "Process id of the collector; with hostname and process_started_at, tells a live run.", None
    )
    process_started_at: str | None = col(
        "TIMESTAMPTZ", "Start time of the collector's process (tells a reused pid apart).", None
    )
    payloads_json: list[dict[str, Any]] | None = col(
        "JSON",
        "Per payload bucket the run sends: name, kind (file, prepared or synthetic), file and its sha256, and "
        "provenance: for a prepared file a copy of its provenance file (sources, template, instruction, filters, "
        "seed, tokenizer, rows kept, prompt token min/mean/max), for a synthetic bucket how it was generated.",
        None,
    )
    slo_ttft_s: float | None = col("DOUBLE", "SLO: highest TTFT of a good request, s; null when not set.", None)
    slo_tpot_s: float | None = col("DOUBLE", "SLO: highest TPOT of a good request, s; null when not set.", None)
    slo_e2e_s: float | None = col("DOUBLE", "SLO: highest end-to-end latency of a good request, s.", None)
    slo_attainment: float | None = col(
        "DOUBLE", "Share of a level's requests that must be good; null when the config sets no SLO.", None
    )
    schema_version: int = col("INTEGER", "Raw schema version.", SCHEMA_VERSION)
    # Imported runs (`collector import`): null for tokenbench's own runs and before v5.
    source_tool: str | None = col(
        "VARCHAR",
        "Null for a run tokenbench made; for an imported run, the tool that made it: vllm, guidellm, aiperf or "
        "fmbench. config_json.import then records what the import was given and the levels it took or skipped.",
        None,
    )
    source_file: str | None = col(
        "VARCHAR", "The imported file (absolute path when imported); null for a run tokenbench made.", None
    )
    shards_json: list[dict[str, Any]] | None = col(
        "JSON",
        "A sharded run's shards (client_processes > 1, or `collector run --shard i/n`): per host shard its shard "
        "(i/n), hostname, pid, status and error, clock (the wall-clock run epoch its offsets count from, its "
        "NTP state and max error, and its offset to shard 1's clock where both share one host) and per client "
        "process its shard_index, pid and measured clock offset to its parent (ns, with the bound of the "
        "measurement). Null for an unsharded run and before v10.",
        None,
    )


RAW_TABLES: dict[str, type] = {
    "runs": RunManifest,
    "requests": RequestRow,
    "telemetry_samples": TelemetrySample,
}


def columns(row_type: type) -> dict[str, str]:
    """Column name -> DuckDB type, in declaration order."""
    return {f.name: f.metadata["sql"] for f in fields(row_type)}


def column_docs(row_type: type) -> list[tuple[str, str, str]]:
    """(name, DuckDB type, description) per column, for documentation."""
    return [(f.name, f.metadata["sql"], f.metadata["doc"]) for f in fields(row_type)]


def schema_markdown() -> str:
    """The raw schema as Markdown tables (the README embeds this output)."""
    parts = []
    for table, row_type in RAW_TABLES.items():
        parts.append(f"#### `raw.{table}`\n\n{(row_type.__doc__ or '').split(':', 1)[1].strip()}\n")
        parts.append("| column | type | meaning |\n|---|---|---|")
        parts.extend(f"| `{n}` | {t} | {d} |" for n, t, d in column_docs(row_type))
        parts.append("")
    return "\n".join(parts)
