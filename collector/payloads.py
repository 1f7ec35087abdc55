"""Payload buckets: prompts read from JSONL files, or generated from a seed (collector/synthetic.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from collector.config import MAX_TOKENS, Config, PayloadBucket
from collector.errors import ConfigError
from collector.tokens import DEFAULT_COUNTER, TokenCounter, count_prompt


@dataclass(frozen=True)
class Prompt:
    """One prompt: plain text, or chat messages; `client_tokens` is counted once per experiment, up front
    (`counted_for`), with that experiment's counter. `max_tokens`, when set, is this prompt's own output limit,
    sent instead of the experiment's inference_parameters.max_tokens."""

    index: int
    text: str | None
    messages: tuple[dict[str, str], ...] | None
    client_tokens: int
    max_tokens: int | None = None

    def as_text(self) -> str:
        if self.text is not None:
            return self.text
        return "\n".join(f"{m.get('role', 'user')}: {m.get('content', '')}" for m in self.messages or ())

    def as_messages(self) -> list[dict[str, str]]:
        if self.messages is not None:
            return [dict(m) for m in self.messages]
        return [{"role": "user", "content": self.text or ""}]


Row = tuple[str | None, tuple[dict[str, str], ...] | None, int | None]


def parse_payload_row(row: Any) -> Row:
    """(text, messages, max_tokens) of a row: FMBench rows {'inputs': ...}, {'prompt': ...} and chat rows
    {'messages': [...]}, each with an optional positive integer 'max_tokens' (that prompt's own output limit)."""
    if not isinstance(row, dict):
        raise ValueError("each line must be a JSON object")
    max_tokens = row.get("max_tokens")
    if max_tokens is not None and (
        type(max_tokens) is not int or not 1 <= max_tokens <= MAX_TOKENS  # bool is an int: not a length
    ):
        raise ValueError(f"'max_tokens' must be an integer from 1 to {MAX_TOKENS:,}, not {json.dumps(max_tokens)[:40]}")
    for key in ("inputs", "prompt"):
        if isinstance(row.get(key), str):
            return row[key], None, max_tokens
    messages = row.get("messages")
    if (
        isinstance(messages, list)
        and messages
        and all(isinstance(m, dict) and isinstance(m.get("content"), str) for m in messages)
    ):
        chat = tuple({"role": str(m.get("role", "user")), "content": m["content"]} for m in messages)
        return None, chat, max_tokens
    raise ValueError("expected a string 'inputs' or 'prompt', or 'messages' as a list of {role, content}")


MAX_PAYLOAD_LINE_BYTES = 64 * 1024 * 1024


def _rows(path: Path) -> Iterator[tuple[int, Row]]:
    """(line number, (text, messages, max_tokens)) of each prompt; a fault is a ConfigError naming file and line.

    Read as bytes and decoded per line, so a non-UTF-8 or binary file names the line at fault.
    """
    try:
        fh = path.open("rb")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the payload file: {exc.strerror or exc}") from exc
    found = False
    with fh:
        for lineno, raw in enumerate(fh, start=1):
            if lineno == 1:
                raw = raw.removeprefix(b"\xef\xbb\xbf")  # a UTF-8 byte-order mark, as some editors write
            if b"\x00" in raw:
                raise ConfigError(f"{path}:{lineno}: binary data (NUL byte), not a JSONL payload file")
            if len(raw) > MAX_PAYLOAD_LINE_BYTES:
                raise ConfigError(f"{path}:{lineno}: line longer than {MAX_PAYLOAD_LINE_BYTES:,} bytes")
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise ConfigError(f"{path}:{lineno}: not UTF-8 text (byte {exc.start} of the line)") from exc
            if not line.strip():
                continue
            try:
                parsed = parse_payload_row(json.loads(line))
            except json.JSONDecodeError as exc:
                why = f"not JSON ({exc.msg}, column {exc.colno})"
                raise ConfigError(f"{path}:{lineno}: bad payload row: {why}") from exc
            except RecursionError as exc:
                raise ConfigError(f"{path}:{lineno}: bad payload row: JSON nested too deeply") from exc
            except ValueError as exc:
                raise ConfigError(f"{path}:{lineno}: bad payload row: {exc}") from exc
            found = True
            yield lineno, parsed
    if not found:
        raise ConfigError(f"{path}: payload file has no prompts (one JSON object per line expected)")


def check_jsonl(path: Path) -> int:
    """Parse a payload file without counting tokens; return its number of prompts (ConfigError if bad)."""
    return sum(1 for _ in _rows(path))


def read_jsonl(path: Path, counter: TokenCounter = DEFAULT_COUNTER) -> list[Prompt]:
    prompts: list[Prompt] = []
    for _, (text, messages, max_tokens) in _rows(path):
        count = count_prompt(counter, text, messages, "completions")
        prompts.append(Prompt(len(prompts), text, messages, count, max_tokens))
    return prompts


def load_bucket(
    bucket: PayloadBucket, counter: TokenCounter = DEFAULT_COUNTER, lengths: Sequence[int] | None = None
) -> list[Prompt]:
    """A bucket's prompts; `lengths` are the prompt lengths a `lengths_of` synthetic bucket draws from."""
    if bucket.file is not None:
        return read_jsonl(bucket.file, counter)
    assert bucket.synthetic is not None
    from collector.synthetic import generate  # synthetic builds Prompts of this module

    return generate(bucket.synthetic, counter, "completions", lengths)[0]


def load_all(config: Config, counter: TokenCounter = DEFAULT_COUNTER) -> dict[str, list[Prompt]]:
    """Every bucket's prompts, by bucket name; call before creating a run folder (raises ConfigError)."""
    out: dict[str, list[Prompt]] = {}
    by_name = {b.name: b for b in config.payloads}
    for i, bucket in enumerate(config.payloads):
        try:
            source = bucket.synthetic.lengths_of if bucket.synthetic is not None else None
            lengths = None
            if source is not None:
                lengths = [p.client_tokens for p in out.get(source) or load_bucket(by_name[source], counter)]
            out[bucket.name] = load_bucket(bucket, counter, lengths)
        except ConfigError as exc:
            raise ConfigError(f"payloads[{i}] ({bucket.name}): {exc}") from exc
    return out


def counted_for(prompts: list[Prompt], counter: TokenCounter, api_style: str) -> list[Prompt]:
    """The same prompts with `client_tokens` counted by `counter`, as sent in `api_style` (chat messages through
    the tokenizer's chat template); each experiment counts its prompts with its own tokenizer."""
    return [replace(p, client_tokens=count_prompt(counter, p.text, p.messages, api_style)) for p in prompts]
