"""Payload buckets: prompts read from JSONL files, or generated from a seed (collector/synthetic.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from collector.config import MAX_TOKENS, Config, PayloadBucket
from collector.errors import ConfigError
from collector.jsonl import jsonl_objects
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


def _rows(path: Path) -> Iterator[tuple[int, Row]]:
    """(line number, (text, messages, max_tokens)) of each prompt; a fault is a ConfigError naming file and line."""
    found = False
    for lineno, obj in jsonl_objects(path, bad_row="bad payload row: "):
        try:
            parsed = parse_payload_row(obj)
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


class _Buckets:
    """Every bucket's prompts for a config: files read once, synthetic buckets generated once per tokenizer and
    wire form that sends them (exact lengths for each experiment's own tokenizer), with their provenance."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.index = {b.name: i for i, b in enumerate(config.payloads)}
        self.files: dict[str, list[Prompt]] = {}
        self.generated: dict[tuple[str, str, str], list[Prompt]] = {}
        self.provenance: dict[str, list[dict[str, Any]]] = {}

    def _fail(self, name: str, exc: ConfigError) -> ConfigError:
        return ConfigError(f"payloads[{self.index[name]}] ({name}): {exc}")

    def file(self, bucket: PayloadBucket) -> list[Prompt]:
        assert bucket.file is not None
        if bucket.name not in self.files:
            try:
                self.files[bucket.name] = read_jsonl(bucket.file)
            except ConfigError as exc:
                raise self._fail(bucket.name, exc) from exc
        return self.files[bucket.name]

    def prompts(self, bucket: PayloadBucket, counter: TokenCounter, api_style: str) -> list[Prompt]:
        """The bucket's prompts with `client_tokens` counted by `counter` as sent in `api_style`."""
        if bucket.synthetic is None:
            return counted_for(self.file(bucket), counter, api_style)
        key = (bucket.name, counter.name, api_style)
        if key not in self.generated:
            from collector.synthetic import generate  # synthetic builds Prompts of this module

            spec = bucket.synthetic
            lengths = None
            if spec.lengths_of is not None:
                source = self.config.payloads[self.index[spec.lengths_of]]
                lengths = [p.client_tokens for p in self.prompts(source, counter, api_style)]
            try:
                prompts, provenance = generate(spec, counter, api_style, lengths)
            except ConfigError as exc:
                raise self._fail(bucket.name, exc) from exc
            self.generated[key] = prompts
            self.provenance.setdefault(bucket.name, []).append(provenance)
        return self.generated[key]


def load_all(
    config: Config, counter: TokenCounter = DEFAULT_COUNTER, api_style: str = "completions"
) -> dict[str, list[Prompt]]:
    """Every bucket's prompts counted by one counter, by bucket name (raises ConfigError naming the bucket)."""
    buckets = _Buckets(config)
    return {b.name: buckets.prompts(b, counter, api_style) for b in config.payloads}


def experiment_prompts(
    config: Config, counters: dict[str, TokenCounter]
) -> tuple[dict[str, dict[str, list[Prompt]]], dict[str, list[dict[str, Any]]]]:
    """Each experiment's buckets counted by its own counter as its wire format sends them, and how each synthetic
    bucket was generated (one entry per tokenizer and wire form). Call before creating a run folder."""
    buckets = _Buckets(config)
    by_name = {b.name: b for b in config.payloads}
    prompts = {
        exp.name: {
            b: buckets.prompts(by_name[b], counters[exp.name], exp.endpoint.api_style or "chat") for b in exp.payloads
        }
        for exp in config.experiments
    }
    return prompts, buckets.provenance


def counted_for(prompts: list[Prompt], counter: TokenCounter, api_style: str) -> list[Prompt]:
    """The same prompts with `client_tokens` counted by `counter`, as sent in `api_style` (chat messages through
    the tokenizer's chat template); each experiment counts its prompts with its own tokenizer."""
    return [replace(p, client_tokens=count_prompt(counter, p.text, p.messages, api_style)) for p in prompts]
