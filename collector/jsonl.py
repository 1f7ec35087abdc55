"""JSON lines read defensively: bytes decoded line by line, so every fault names the file and line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from collector.errors import ConfigError

MAX_LINE_BYTES = 64 * 1024 * 1024


def jsonl_objects(path: Path, bad_row: str = "") -> Iterator[tuple[int, Any]]:
    """(line number, parsed JSON value) of each non-blank line; read as bytes and decoded per line, so a non-UTF-8
    or binary file names the line at fault. `bad_row` prefixes the message of a line that is not JSON."""
    try:
        fh = path.open("rb")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    with fh:
        for lineno, raw in enumerate(fh, start=1):
            if lineno == 1:
                raw = raw.removeprefix(b"\xef\xbb\xbf")  # a UTF-8 byte-order mark, as some editors write
            if b"\x00" in raw:
                raise ConfigError(f"{path}:{lineno}: binary data (NUL byte), not JSON lines")
            if len(raw) > MAX_LINE_BYTES:
                raise ConfigError(f"{path}:{lineno}: line longer than {MAX_LINE_BYTES:,} bytes")
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise ConfigError(f"{path}:{lineno}: not UTF-8 text (byte {exc.start} of the line)") from exc
            if not line.strip():
                continue
            try:
                yield lineno, json.loads(line)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"{path}:{lineno}: {bad_row}not JSON ({exc.msg}, column {exc.colno})") from exc
            except RecursionError as exc:
                raise ConfigError(f"{path}:{lineno}: {bad_row}JSON nested too deeply") from exc
