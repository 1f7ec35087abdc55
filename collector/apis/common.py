"""What every wire format shares: the two exceptions a reply may raise, the server's token counts and their checks.

Whatever a server sends either parses or raises MalformedResponse / StreamError, never anything else.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

# Usage counts outside [0, 1e9] are not token counts (and would not fit the INTEGER column).
MAX_TOKEN_COUNT = 1_000_000_000

# Decoding str with a reused decoder skips json.loads' per-call encoding detection on bytes.
_decode_str = json.JSONDecoder().decode
# JSON this short cannot nest near the recursion limit (~1000) and is parsed at once (most streamed events are);
# longer JSON is measured first.
SHALLOW_CHARS = 512
MAX_NESTING = 200  # real replies nest a handful of levels; the parser's own limit is the recursion limit (~1000)
_STRUCTURE = re.compile(r'[\[\]{}"\\]')


def nesting_exceeds(text: str, limit: int = MAX_NESTING) -> bool:
    """Whether JSON text nests arrays/objects deeper than `limit` (brackets inside strings do not count).

    Checked before parsing, so absurd nesting never takes the parser to the interpreter's recursion limit, where
    anything else that runs (a finalizer, a warning) would fail too, out of reach of our error handling.
    """
    depth = 0
    in_string = False
    skip_at = -1  # position of a character escaped by a backslash
    for match in _STRUCTURE.finditer(text):
        pos, char = match.start(), match.group()
        if pos == skip_at:
            continue
        if in_string:
            if char == "\\":
                skip_at = pos + 1
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > limit:
                return True
        elif char in "]}":
            depth -= 1
    return False


def decode(text: str) -> Any:
    """Parse JSON text; RecursionError (caught as malformed by every caller) when it nests absurdly deep."""
    if len(text) > SHALLOW_CHARS and nesting_exceeds(text):
        raise RecursionError(f"JSON nested deeper than {MAX_NESTING} levels")
    return _decode_str(text)


def loads(raw: bytes) -> Any:
    """Parse a JSON body (bytes, any UTF encoding json accepts), as `decode` does."""
    if len(raw) > SHALLOW_CHARS and nesting_exceeds(raw.decode("utf-8", "replace")):
        raise RecursionError(f"JSON nested deeper than {MAX_NESTING} levels")
    return json.loads(raw)


class MalformedResponse(Exception):
    """The body or a streamed event is not the JSON the API promises."""


class StreamError(Exception):
    """The server reported an error inside an otherwise well-formed reply."""


@dataclass
class Usage:
    """The server's token counts; `issue` says which value was set aside (and the counts are then not used)."""

    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    issue: str | None = None


def raw(value: object) -> str:
    """A server value as it looked on the wire, short enough for a message."""
    try:
        return json.dumps(value)[:80]
    except (TypeError, ValueError, RecursionError):
        return repr(value)[:80]


def checked_usage(prompt: tuple[str, object], completion: tuple[str, object]) -> Usage | None:
    """Usage from (wire name, value) pairs; None when the server gave neither count."""
    if prompt[1] is None and completion[1] is None:
        return None
    counts: list[int | None] = []
    for name, value in (prompt, completion):
        if value is None:
            counts.append(None)
        elif type(value) is not int:  # bool is an int subclass, 3e9 a float: neither is a count
            return Usage(issue=f"{name}={raw(value)} is not an integer; client count used")
        elif not 0 <= value <= MAX_TOKEN_COUNT:
            return Usage(issue=f"{name}={raw(value)} out of range [0, 1e9]; client count used")
        else:
            counts.append(value)
    return Usage(counts[0], counts[1])


def why(exc: Exception) -> str:
    if isinstance(exc, MalformedResponse):
        return str(exc)
    if isinstance(exc, RecursionError):
        return "JSON nested too deeply to parse"
    if isinstance(exc, ValueError):  # JSONDecodeError, UnicodeDecodeError
        return f"not JSON ({exc})"
    return f"{type(exc).__name__}: {exc}"


def text_field(obj: dict, key: str, where: str) -> str:
    """obj[key] as a string ('' when absent or null); MalformedResponse for any other type."""
    value = obj.get(key)
    if value is None:
        return ""
    if type(value) is not str:
        raise MalformedResponse(f"{where}{key} is {raw(value)}, expected a string")
    return value


def finish_field(obj: dict, key: str, where: str) -> str | None:
    value = obj.get(key)
    if value is not None and type(value) is not str:
        raise MalformedResponse(f"{where}{key} is {raw(value)}, expected a string")
    return value or None


@dataclass
class StreamStateBase:
    """What a streamed reply has delivered so far, in every format; each format's `feed(line) -> bool` fills it."""

    api_style: str
    pieces: list[str] = field(default_factory=list)
    chunk_count: int = 0
    content_chunk_count: int = 0
    finish_reason: str | None = None
    usage: Usage | None = None
    done: bool = False

    def text(self) -> str:
        return "".join(self.pieces)
