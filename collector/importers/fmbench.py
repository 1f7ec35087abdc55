"""FMBench's per-request results CSV (`per_inference_request_results.csv`) as imported rows, as far as its columns go.

Read from ../shared/reference/fmbench-notes.md (FMBench 2.1.6, aws-samples/foundation-model-benchmarking-tool at
39ce6b9): §8.3 lists the columns (`... completion, prompt_tokens, completion_tokens, latency, time_to_first_token,
time_per_output_token, time_to_last_token, uuid, experiment_name, concurrency`, then `instance_type, instance_count`,
with the payload_file column earlier), §1.1 what they mean (latency: client wall time of one request, in seconds;
tokens counted by FMBench's tokenizer; an error is a response whose completion or completion_tokens is None) and its
Bedrock streaming quirk (latency stops when the stream opens; time_to_last_token is the end-to-end time).

The CSV names each row's experiment, payload file and concurrency (FMBench's barrier batches of `concurrency`
requests), so one file can hold several experiments and levels. It records no send times and no level durations:
start offsets, level spans and so throughput and per-hour cost stay null. A failed request has no message in the
file.
"""

from __future__ import annotations

import csv
import io
import math
import sys
from pathlib import Path

from collector.importers.records import (
    ExperimentFacts,
    ImportedFile,
    ImportedLevel,
    ImportedRequest,
    ImportOptions,
    LevelKey,
    fault,
    read_bytes,
    seconds_ns,
)

TOOL = "fmbench"
WHAT = "FMBench's per-request results CSV (per_inference_request_results.csv)"
REQUIRED = ("experiment_name", "concurrency", "payload_file", "latency", "prompt_tokens", "completion_tokens")
MISSING_CELLS = ("", "None", "nan", "NaN", "null")  # how pandas and Python write a missing value


def looks_like(header: list[str]) -> bool:
    return {"latency", "completion_tokens", "concurrency", "experiment_name"} <= set(header)


def read(path: Path, options: ImportOptions) -> ImportedFile:
    data = read_bytes(path)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise fault(path, f"not UTF-8 text (byte {exc.start}), not {WHAT}") from exc
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # prompts and completions are long cells
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = reader.fieldnames or []
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise fault(path, f"not {WHAT}: no column {', '.join(missing)} (columns: {', '.join(header[:12]) or 'none'})")
    rows = []
    try:
        for row in reader:
            rows.append((reader.line_num, row))
    except csv.Error as exc:
        raise fault(path, f"line {reader.line_num}: not CSV ({exc})") from exc
    if not rows:
        raise fault(path, "no rows under the header")
    experiments = {row["experiment_name"] for _, row in rows}
    payloads = {row["payload_file"] for _, row in rows}
    for option, values, what in (
        (options.experiment_name, experiments, "experiments"),
        (options.payload_file, payloads, "payload files"),
    ):
        if option is not None and len(values) > 1:
            raise fault(
                path,
                f"the file holds {len(values)} {what} ({', '.join(sorted(values))}); one name given on the command "
                "line would merge them",
            )
    levels: dict[LevelKey, ImportedLevel] = {}
    facts: dict[str, ExperimentFacts] = {}
    requests = []
    for order, (line, row) in enumerate(rows):
        where = f"line {line}: "
        if None in row or any(v is None for v in row.values()):
            raise fault(path, f"{where}{'more' if None in row else 'fewer'} cells than the header has columns")
        experiment = options.experiment_name or _required(row, "experiment_name", path, where)
        payload = options.payload_file or _required(row, "payload_file", path, where)
        key = LevelKey(experiment, payload, _concurrency(row, path, where))
        levels.setdefault(key, ImportedLevel(key, f"concurrency {key.concurrency}, payload {row['payload_file']}"))
        instance_type = _cell(row, "instance_type")
        facts.setdefault(experiment, ExperimentFacts(instance_type, _int(row, "instance_count", path, where)))
        completion_tokens = _int(row, "completion_tokens", path, where)
        # FMBench's rule is `completion is None or completion_tokens is None`; the CSV cannot tell an empty
        # completion from none, but a failed request never has a completion token count.
        ok = completion_tokens is not None
        latency = _number(row, "latency", path, where)
        last = _number(row, "time_to_last_token", path, where)
        # time_to_last_token is the end-to-end time where FMBench records it (streaming; its Bedrock latency
        # stops when the stream opens), else latency.
        e2e = last if last is not None else latency
        requests.append(
            ImportedRequest(
                level=key,
                file_order=order,
                is_success=ok,
                e2e_ns=seconds_ns(e2e),
                first_content_ns=seconds_ns(_number(row, "time_to_first_token", path, where)),
                last_content_ns=seconds_ns(last),
                prompt_tokens=_int(row, "prompt_tokens", path, where),
                completion_tokens=completion_tokens if ok else None,
                error_type=None if ok else "tool_error",
                error_message=None if ok else "no completion (FMBench records no error message)",
                source_request_id=_cell(row, "uuid"),
            )
        )
    return ImportedFile(
        tool=TOOL,
        path=path,
        levels=list(levels.values()),
        requests=requests,
        experiments=facts,
        facts={"columns": header},
    )


def _cell(row: dict[str, str], column: str) -> str | None:
    value = row.get(column)
    return None if value is None or value.strip() in MISSING_CELLS else value.strip()


def _required(row: dict[str, str], column: str, path: Path, where: str) -> str:
    value = _cell(row, column)
    if value is None:
        raise fault(path, f"{where}{column}: empty (FMBench always writes it)")
    return value


def _number(row: dict[str, str], column: str, path: Path, where: str) -> float | None:
    value = _cell(row, column)
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        raise fault(path, f"{where}{column}: not a number: {value!r}") from None
    return number if math.isfinite(number) else None


def _int(row: dict[str, str], column: str, path: Path, where: str) -> int | None:
    value = _number(row, column, path, where)
    if value is None:
        return None
    if value != int(value):
        raise fault(path, f"{where}{column}: not a whole number: {row[column]!r}")
    return int(value)


def _concurrency(row: dict[str, str], path: Path, where: str) -> int:
    value = _int(row, "concurrency", path, where)
    if value is None or value < 1:
        raise fault(path, f"{where}concurrency: expected a whole number >= 1, found {row.get('concurrency')!r}")
    return value
