"""AWS event-stream encoding (`application/vnd.amazon.eventstream`), the framing of Bedrock's ConverseStream and
SageMaker's response streams, written from the format's definition so botocore's own decoder parses our loopback
servers' streams for real.

A message: prelude (total length u32, headers length u32, CRC32 of those 8 bytes), headers, payload, CRC32 of
everything before it; all integers big-endian. A header: name length u8, name, value type u8, then for a string
(type 7) a u16 length and the UTF-8 value.
"""

from __future__ import annotations

import json
import struct
import zlib
from typing import Any

STRING_TYPE = 7
CONTENT_TYPE = "application/vnd.amazon.eventstream"


def _header(name: str, value: str) -> bytes:
    raw_name, raw_value = name.encode(), value.encode()
    return struct.pack(">B", len(raw_name)) + raw_name + struct.pack(">BH", STRING_TYPE, len(raw_value)) + raw_value


def encode_message(headers: dict[str, str], payload: bytes) -> bytes:
    """One event-stream message with string headers."""
    raw_headers = b"".join(_header(name, value) for name, value in headers.items())
    total = 12 + len(raw_headers) + len(payload) + 4
    prelude = struct.pack(">II", total, len(raw_headers))
    prelude += struct.pack(">I", zlib.crc32(prelude) & 0xFFFFFFFF)
    message = prelude + raw_headers + payload
    return message + struct.pack(">I", zlib.crc32(message) & 0xFFFFFFFF)


def event(event_type: str, payload: bytes, content_type: str = "application/json") -> bytes:
    """An `event` message (ConverseStream's contentBlockDelta, SageMaker's PayloadPart, ...)."""
    headers = {":event-type": event_type, ":content-type": content_type, ":message-type": "event"}
    return encode_message(headers, payload)


def json_event(event_type: str, body: dict[str, Any]) -> bytes:
    return event(event_type, json.dumps(body, separators=(",", ":")).encode())


def exception(exception_type: str, message: str) -> bytes:
    """An in-stream `exception` message (e.g. modelStreamErrorException): botocore raises it as an EventStreamError
    whose code is the exception type."""
    headers = {":exception-type": exception_type, ":content-type": "application/json", ":message-type": "exception"}
    return encode_message(headers, json.dumps({"message": message}).encode())
