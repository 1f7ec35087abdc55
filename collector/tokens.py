"""Token counting behind one small interface, so a model's own tokenizer can replace the default."""

from __future__ import annotations

import re
from typing import Protocol

_TOKEN_RE = re.compile(r"\w+|[^\w\s]")


class TokenCounter(Protocol):
    """Counts the tokens of a text; `name` is recorded with the counts."""

    name: str

    def count(self, text: str) -> int: ...


class SimpleTokenCounter:
    """Counts words and punctuation marks: deterministic, dependency-free, close to BPE for English prose."""

    name = "simple-regex"

    def count(self, text: str) -> int:
        return len(_TOKEN_RE.findall(text))


DEFAULT_COUNTER: TokenCounter = SimpleTokenCounter()
