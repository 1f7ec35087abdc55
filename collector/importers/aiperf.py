"""AIPerf's per-request export (`artifacts/<run>/profile_export.jsonl`) as one level of imported rows.

Read from ai-dynamo/aiperf: `docs/tutorials/working-with-profile-exports.md` and `aiperf/common/models/record_models.py`
(MetricRecordInfo: metadata, metrics as {value, unit} in display units, error as ErrorDetails {code, type, message})
at db4f6397 (v0.1.1 era), the newer `src/aiperf/common/models/record_export_models.py` at 745695dd and
`src/aiperf/common/metric_records_wire.py` at 017c63d2 (same keys; defaults such as a null error are omitted), the
metric definitions in `aiperf/metrics/types/` (request_latency: request start to the last response;
time_to_first_token: to the first response; output_sequence_length: output plus reasoning tokens;
input_sequence_length, and error_isl for a failed request) and `aiperf/exporters/json_exporter.py` with
`aiperf/common/config/loadgen_config.py` (profile_export_aiperf.json's input_config: loadgen.concurrency and
request_rate, endpoint.model_names, type, streaming).

The JSONL does not say at which concurrency it ran: it is taken from profile_export_aiperf.json beside it, or from
--concurrency. A run at a request rate is an open-loop level and is refused. A record's metadata times (ns) are on
one clock: send offsets are their differences, and they are wall-clock (the documented time.time_ns) when they
read as a date after 2001. A failed request's e2e is its metadata's send-to-error time.
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
    read_bytes,
    read_json,
    require,
    scaled_ns,
)
from collector.jsonl import jsonl_objects

TOOL = "aiperf"
WHAT = "AIPerf's per-request export (profile_export.jsonl)"
AGGREGATE_FILE = "profile_export_aiperf.json"
NS_PER_UNIT = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 1_000_000_000, "sec": 1_000_000_000}
EPOCH_NS_AFTER = 1_000_000_000 * 10**9  # 2001-09-09: a larger time_ns is a wall-clock date, not a perf counter
API_STYLES = {"chat": "chat", "completions": "completions"}
ERROR_MESSAGE_CHARS = 500


def looks_like(data: Any) -> bool:
    metadata = data.get("metadata") if isinstance(data, dict) else None
    return isinstance(metadata, dict) and "request_start_ns" in metadata and "metrics" in data


def read(path: Path, options: ImportOptions) -> ImportedFile:
    read_bytes(path)  # an empty or unreadable file is named as such before its lines are read
    settings = _aggregate(path)
    concurrency, source_level = _level(path, settings, options)
    key = LevelKey(options.experiment_name or TOOL, options.payload_file or DEFAULT_PAYLOAD_FILE, concurrency)
    requests: list[ImportedRequest] = []
    for lineno, record in jsonl_objects(path, bad_row=f"{WHAT}: "):
        if not looks_like(record):
            raise fault(path, f"line {lineno}: not an AIPerf record (no metadata.request_start_ns and metrics)")
        requests.append(_request(record, key, len(requests), path, f"line {lineno}: "))
    if not requests:
        raise fault(path, "no records")
    endpoint: dict[str, Any] = settings["endpoint"] if isinstance(settings.get("endpoint"), dict) else {}
    names = endpoint.get("model_names")
    streaming = endpoint.get("streaming")
    return ImportedFile(
        tool=TOOL,
        path=path,
        levels=[ImportedLevel(key, source_level)],
        requests=requests,
        model_id=names[0] if isinstance(names, list) and names and isinstance(names[0], str) else None,
        api_style=API_STYLES.get(str(endpoint.get("type"))),
        is_streaming=streaming if isinstance(streaming, bool) else None,
        facts={
            "aggregate_file": str(path.parent / AGGREGATE_FILE) if settings else None,
            "loadgen": _loadgen(settings),
        },
    )


def _aggregate(path: Path) -> dict[str, Any]:
    """input_config of the profile_export_aiperf.json beside the JSONL (AIPerf writes both), {} without one."""
    aggregate = path.parent / AGGREGATE_FILE
    if not aggregate.is_file():
        return {}
    data = read_json(aggregate, f"AIPerf's {AGGREGATE_FILE}")
    config = data.get("input_config") if isinstance(data, dict) else None
    return config if isinstance(config, dict) else {}


def _loadgen(settings: dict[str, Any]) -> dict[str, Any]:
    loadgen = settings.get("loadgen")
    return loadgen if isinstance(loadgen, dict) else {}


def _level(path: Path, settings: dict[str, Any], options: ImportOptions) -> tuple[int, str]:
    loadgen = _loadgen(settings)
    rate, recorded = loadgen.get("request_rate"), loadgen.get("concurrency")
    if rate is not None:
        capped = f" capped at concurrency {recorded}" if recorded is not None else ""
        raise fault(
            path,
            f"AIPerf ran at request_rate {rate} req/s{capped} ({path.parent / AGGREGATE_FILE}): an open-loop rate "
            "level; the marts key levels by concurrency (a closed loop), so it cannot be imported yet",
        )
    if recorded is not None and (isinstance(recorded, bool) or not isinstance(recorded, int) or recorded < 1):
        raise fault(path.parent / AGGREGATE_FILE, f"input_config.loadgen.concurrency: not a count: {recorded!r}")
    if options.concurrency is not None:
        if recorded is not None and recorded != options.concurrency:
            raise fault(
                path,
                f"--concurrency {options.concurrency}, but {path.parent / AGGREGATE_FILE} says AIPerf ran at "
                f"concurrency {recorded}",
            )
        return options.concurrency, f"concurrency={options.concurrency} (given with --concurrency)"
    if recorded is None:
        raise fault(
            path,
            f"AIPerf's per-request export does not record the concurrency it ran at: pass --concurrency N (or keep "
            f"{AGGREGATE_FILE} beside it)",
        )
    return recorded, f"concurrency={recorded}"


def _metric_ns(metrics: dict[str, Any], tag: str, path: Path, where: str) -> int | None:
    value = metrics.get(tag)
    if value is None:
        return None
    if not isinstance(value, dict) or "value" not in value:
        raise fault(path, f"{where}metrics.{tag}: expected {{value, unit}}")
    unit = value.get("unit")
    if unit not in NS_PER_UNIT:
        raise fault(path, f"{where}metrics.{tag}.unit: {unit!r} is not a time unit ({', '.join(NS_PER_UNIT)})")
    return scaled_ns(number(value["value"], path, f"{where}metrics.{tag}.value"), NS_PER_UNIT[unit])


def _metric_count(metrics: dict[str, Any], tag: str, path: Path, where: str) -> int | None:
    value = metrics.get(tag)
    if value is None:
        return None
    if not isinstance(value, dict) or "value" not in value:
        raise fault(path, f"{where}metrics.{tag}: expected {{value, unit}}")
    return count(value["value"], path, f"{where}metrics.{tag}.value")


def _request(record: dict[str, Any], key: LevelKey, order: int, path: Path, where: str) -> ImportedRequest:
    metadata = record["metadata"]
    start = count(require(metadata, "request_start_ns", path, f"{where}metadata.", int), path, where)
    end = count(require(metadata, "request_end_ns", path, f"{where}metadata.", int), path, where)
    metrics = require(record, "metrics", path, where, (dict, type(None))) or {}
    error = record.get("error")
    if error is not None and not isinstance(error, dict):
        raise fault(path, f"{where}error: expected an object or null")
    ok = error is None
    cancelled = bool(metadata.get("was_cancelled"))
    e2e = _metric_ns(metrics, "request_latency", path, where) if ok else None
    if e2e is None and start is not None and end is not None:
        e2e = end - start  # send to last response, or to the error
    code = error.get("code") if error else None
    # AIPerf files a cancellation under code 499: no HTTP status came back then.
    is_http = isinstance(code, int) and not isinstance(code, bool) and 100 <= code <= 599 and not cancelled
    status = code if is_http else None
    message = kind = None
    if error:
        kind, text = error.get("type"), str(error.get("message") or "AIPerf recorded no error message")
        message = (f"{kind}: {text}" if kind else text)[:ERROR_MESSAGE_CHARS]
    return ImportedRequest(
        level=key,
        file_order=order,
        is_success=ok,
        start_ns=start,
        wall_start_ns=start if start is not None and start > EPOCH_NS_AFTER else None,
        e2e_ns=e2e,
        first_content_ns=_metric_ns(metrics, "time_to_first_token", path, where) if ok else None,
        prompt_tokens=_metric_count(metrics, "input_sequence_length" if ok else "error_isl", path, where),
        completion_tokens=_metric_count(metrics, "output_sequence_length", path, where) if ok else None,
        http_status=status,
        error_type=None if ok else error_kind(message, http_status=status, exception_type=kind, cancelled=cancelled),
        error_message=message,
        is_warmup=metadata.get("benchmark_phase") == "warmup",
        source_request_id=str(metadata["x_request_id"]) if metadata.get("x_request_id") else None,
    )
