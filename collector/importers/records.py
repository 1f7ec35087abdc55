"""What every importer makes of a tool's file: the levels it implies and one record per request, times in ns on the
tool's own clock; and the readers and checks the importers share (each fault is one line naming the file)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any

from collector.errors import ConfigError

MAX_IMPORT_BYTES = 2 * 1024**3  # a detailed result of a very long run; far beyond that is not a result file
DEFAULT_PAYLOAD_FILE = "imported"
TRUNCATION_SLACK = 16  # the bucket of a file that does not name its prompts' (see --payload-file)


@dataclass(frozen=True)
class LevelKey:
    """The grain of a level in the marts: experiment, payload bucket and concurrency."""

    experiment_name: str
    payload_file: str
    concurrency: int


@dataclass
class ImportedLevel:
    """One level the file implies, with the tool's own name for it."""

    key: LevelKey
    source_level: str
    duration_ns: int | None = None  # carried only when the tool recorded no per-request send times


@dataclass
class ImportedRequest:
    """One request as its tool recorded it; None wherever the tool recorded nothing."""

    level: LevelKey
    file_order: int
    is_success: bool
    start_ns: int | None = None  # send time on the tool's clock (any origin): only differences are used
    wall_start_ns: int | None = None  # send time as Unix epoch ns, where the tool's clock is the wall clock
    e2e_ns: int | None = None
    first_content_ns: int | None = None
    last_content_ns: int | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    http_status: int | None = None
    error_type: str | None = None
    error_message: str | None = None
    is_warmup: bool = False
    source_request_id: str | None = None


@dataclass
class ExperimentFacts:
    """What the file says about an experiment's serving setup (FMBench records it per row)."""

    instance_type: str | None = None
    instance_count: int | None = None


@dataclass
class ImportedFile:
    """A tool's file read and checked: nothing is landed until the whole file has been read."""

    tool: str
    path: Path
    levels: list[ImportedLevel]
    requests: list[ImportedRequest]
    skipped: list[str] = field(default_factory=list)  # levels left out, each with why
    model_id: str | None = None  # as the file names it
    api_style: str | None = None
    is_streaming: bool | None = None
    endpoint_url: str | None = None
    experiments: dict[str, ExperimentFacts] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)  # the tool's version and settings, for the manifest


@dataclass(frozen=True)
class ImportOptions:
    """What the user said about the file (command-line options); None where they left it to the file."""

    experiment_name: str | None = None
    payload_file: str | None = None
    concurrency: int | None = None


class FileFault(ConfigError):
    """The file is not what its tool writes: one line naming the file and what is wrong."""


def fault(path: Path, what: str) -> FileFault:
    return FileFault(f"{path}: {what}")


def read_bytes(path: Path) -> bytes:
    """The whole file; an unreadable, empty or absurdly large one is a fault."""
    try:
        size = path.stat().st_size
        if size > MAX_IMPORT_BYTES:
            raise fault(path, f"{size:,} bytes, more than a result file holds (limit {MAX_IMPORT_BYTES:,})")
        data = path.read_bytes()
    except OSError as exc:
        raise fault(path, f"cannot read: {exc.strerror or exc}") from exc
    if not data.strip():
        raise fault(path, "empty file")
    return data


def read_json(path: Path, tool: str) -> Any:
    """One JSON document (a truncated or non-JSON file names where parsing stopped); `tool` names the file wanted."""
    data = read_bytes(path)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise fault(path, f"not UTF-8 text (byte {exc.start}), not {tool}") from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        # A parse that stops within the last few characters (a number or name cut short) is a cut-off file.
        truncated = " (truncated?)" if exc.pos >= len(text.rstrip()) - TRUNCATION_SLACK else ""
        raise fault(
            path, f"not JSON{truncated}: {exc.msg} at line {exc.lineno} column {exc.colno}; expected {tool}"
        ) from exc
    except RecursionError as exc:
        raise fault(path, "JSON nested too deeply") from exc


def require(value: Any, key: str, path: Path, where: str, kind: type | tuple[type, ...]) -> Any:
    """`value[key]`, which the tool always writes, of the given JSON kind."""
    if not isinstance(value, dict) or key not in value:
        raise fault(path, f"{where}{key}: missing (the tool always writes it)")
    item = value[key]
    if not isinstance(item, kind) or (isinstance(item, bool) and bool not in _kinds(kind)):
        raise fault(path, f"{where}{key}: expected {_kind_name(kind)}, found {_json_kind(item)}")
    return item


def _kinds(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _kind_name(kind: type | tuple[type, ...]) -> str:
    names = {dict: "an object", list: "a list", str: "a string", int: "a number", float: "a number", bool: "true/false"}
    return " or ".join(dict.fromkeys(names.get(k, k.__name__) for k in _kinds(kind)))


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    return {dict: "an object", list: "a list", str: "a string", bool: "true/false"}.get(type(value), "a number")


def number(value: Any, path: Path, where: str) -> float | None:
    """A JSON number as float; null, NaN and infinities (Python's json writes them) mean not recorded."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise fault(path, f"{where}: expected a number, found {_json_kind(value)}")
    number_ = float(value)
    return number_ if math.isfinite(number_) else None


def count(value: Any, path: Path, where: str) -> int | None:
    """A count (or ns): a whole number, exact however large (a float such as 12.0 is accepted), or null."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    found = number(value, path, where)
    if found is None:
        return None
    if found != int(found):
        raise fault(path, f"{where}: expected a whole number, found {value!r}")
    return int(found)


def scaled_ns(value: float | None, ns_per_unit: int) -> int | None:
    """A time in some unit as whole ns, from the decimal the file wrote (the float's shortest repr), not from the
    binary float: a Unix time in seconds times 1e9 would lose the last few hundred ns to rounding."""
    if value is None:
        return None
    return int((Decimal(repr(value)) * ns_per_unit).to_integral_value(ROUND_HALF_EVEN))


def seconds_ns(seconds: float | None) -> int | None:
    return scaled_ns(seconds, 1_000_000_000)


def error_kind(
    message: str | None,
    *,
    http_status: int | None = None,
    exception_type: str | None = None,
    cancelled: bool = False,
) -> str:
    """RequestRow.error_type of a failure a tool recorded: cancelled, http_error (an HTTP status), timeout and
    connect_error where its exception says so, else tool_error (its message says what)."""
    if cancelled:
        return "cancelled"
    if http_status is not None and 400 <= http_status <= 599:
        return "http_error"
    said = f"{exception_type or ''} {message or ''}"
    if "TimeoutError" in said or "ServerTimeoutError" in said or (exception_type or "").lower().endswith("timeout"):
        return "timeout"
    if "ClientConnectorError" in said or "ConnectionRefusedError" in said or "ConnectError" in said:
        return "connect_error"
    return "tool_error"
