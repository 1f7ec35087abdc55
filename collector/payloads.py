"""Payload buckets: prompts read from JSONL files or generated from a seed within a token range."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from collector.config import Config, PayloadBucket, SyntheticPayload
from collector.errors import ConfigError
from collector.tokens import DEFAULT_COUNTER, TokenCounter, count_prompt

# Plain English words: each is one token for the default counter, and common enough to be a single
# BPE token for real tokenizers too, so synthetic lengths stay close under either.
_WORDS = (  # noqa: SIM905 (one readable block of words)
    "the of and to in is was for on that with as by at from his her it an were are which this be or has "
    "had not but their first one new after also two they its who been other when time year into more all "
    "during only over most city would some school there up may state between about world him such where "
    "years three used made national part well many then these later while under south team north people "
    "both west since known war early second through before being high including government east work "
    "until each however life several end family music house three game name being four film same age "
    "best often river small large old series number public following around group members based court "
    "law party history received local island church center day place season own field area general "
    "system began released long will water form library model server token request budget latency price "
    "performance answer question context document "
).split()


@dataclass(frozen=True)
class Prompt:
    """One prompt: plain text, or chat messages; `client_tokens` is counted once per experiment, up front
    (`counted_for`), with that experiment's counter."""

    index: int
    text: str | None
    messages: tuple[dict[str, str], ...] | None
    client_tokens: int

    def as_text(self) -> str:
        if self.text is not None:
            return self.text
        return "\n".join(f"{m.get('role', 'user')}: {m.get('content', '')}" for m in self.messages or ())

    def as_messages(self) -> list[dict[str, str]]:
        if self.messages is not None:
            return [dict(m) for m in self.messages]
        return [{"role": "user", "content": self.text or ""}]


def parse_payload_row(row: Any) -> tuple[str | None, tuple[dict[str, str], ...] | None]:
    """Accept FMBench rows {'inputs': ...}, {'prompt': ...} and chat rows {'messages': [...]}."""
    if not isinstance(row, dict):
        raise ValueError("each line must be a JSON object")
    for key in ("inputs", "prompt"):
        if isinstance(row.get(key), str):
            return row[key], None
    messages = row.get("messages")
    if (
        isinstance(messages, list)
        and messages
        and all(isinstance(m, dict) and isinstance(m.get("content"), str) for m in messages)
    ):
        return None, tuple({"role": str(m.get("role", "user")), "content": m["content"]} for m in messages)
    raise ValueError("expected a string 'inputs' or 'prompt', or 'messages' as a list of {role, content}")


MAX_PAYLOAD_LINE_BYTES = 64 * 1024 * 1024


def _rows(path: Path) -> Iterator[tuple[int, str | None, tuple[dict[str, str], ...] | None]]:
    """(line number, text, messages) of each prompt; every fault is a ConfigError naming the file and line.

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
                text, messages = parse_payload_row(json.loads(line))
            except json.JSONDecodeError as exc:
                why = f"not JSON ({exc.msg}, column {exc.colno})"
                raise ConfigError(f"{path}:{lineno}: bad payload row: {why}") from exc
            except RecursionError as exc:
                raise ConfigError(f"{path}:{lineno}: bad payload row: JSON nested too deeply") from exc
            except ValueError as exc:
                raise ConfigError(f"{path}:{lineno}: bad payload row: {exc}") from exc
            found = True
            yield lineno, text, messages
    if not found:
        raise ConfigError(f"{path}: payload file has no prompts (one JSON object per line expected)")


def check_jsonl(path: Path) -> int:
    """Parse a payload file without counting tokens; return its number of prompts (ConfigError if bad)."""
    return sum(1 for _ in _rows(path))


def read_jsonl(path: Path, counter: TokenCounter = DEFAULT_COUNTER) -> list[Prompt]:
    prompts: list[Prompt] = []
    for _, text, messages in _rows(path):
        prompts.append(Prompt(len(prompts), text, messages, count_prompt(counter, text, messages, "completions")))
    return prompts


def _text_of_length(rng: random.Random, target: int, counter: TokenCounter) -> str:
    """Prose of exactly `target` tokens when the counter allows it (else the longest below it)."""
    words: list[str] = []
    while len(words) < target * 2:
        sentence = [rng.choice(_WORDS) for _ in range(rng.randint(6, 18))]
        sentence[0] = sentence[0].capitalize()
        sentence[-1] += "."
        words.extend(sentence)
    lo, hi = 1, len(words)  # largest word count whose text has <= target tokens
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if counter.count(" ".join(words[:mid])) <= target:
            lo = mid
        else:
            hi = mid - 1
    text = " ".join(words[:lo])
    # A sentence end can make the next word cost two tokens; top up with single words to hit the target.
    count = counter.count(text)
    tries = 0
    while count < target and tries < 50:
        candidate = f"{text} {rng.choice(_WORDS)}"
        new_count = counter.count(candidate)
        if new_count <= target:
            text, count = candidate, new_count
        else:
            tries += 1
    return text


def generate(spec: SyntheticPayload, counter: TokenCounter = DEFAULT_COUNTER) -> list[Prompt]:
    """`spec.count` prompts with token lengths drawn uniformly from [min_tokens, max_tokens)."""
    rng = random.Random(spec.seed)
    prompts = []
    for i in range(spec.count):
        target = rng.randrange(spec.min_tokens, spec.max_tokens)
        text = _text_of_length(rng, target, counter)
        prompts.append(Prompt(i, text, None, counter.count(text)))
    return prompts


def load_bucket(bucket: PayloadBucket, counter: TokenCounter = DEFAULT_COUNTER) -> list[Prompt]:
    if bucket.file is not None:
        return read_jsonl(bucket.file, counter)
    assert bucket.synthetic is not None
    return generate(bucket.synthetic, counter)


def load_all(config: Config, counter: TokenCounter = DEFAULT_COUNTER) -> dict[str, list[Prompt]]:
    """Every bucket's prompts, by bucket name; call before creating a run folder (raises ConfigError)."""
    out = {}
    for i, bucket in enumerate(config.payloads):
        try:
            out[bucket.name] = load_bucket(bucket, counter)
        except ConfigError as exc:
            raise ConfigError(f"payloads[{i}] ({bucket.name}): {exc}") from exc
    return out


def counted_for(prompts: list[Prompt], counter: TokenCounter, api_style: str) -> list[Prompt]:
    """The same prompts with `client_tokens` counted by `counter`, as sent in `api_style` (chat messages through
    the tokenizer's chat template); each experiment counts its prompts with its own tokenizer."""
    return [replace(p, client_tokens=count_prompt(counter, p.text, p.messages, api_style)) for p in prompts]
