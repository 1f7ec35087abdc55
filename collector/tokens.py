"""Token counting behind one small interface: a model's own tokenizer (transformers) or the built-in counter.

Which counter an experiment uses is decided once, before a run starts (`counter_for`); each request row
records its `name`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from collector.errors import ConfigError

if TYPE_CHECKING:
    from collector.config import Config

_TOKEN_RE = re.compile(r"\w+|[^\w\s]")

# Wire formats whose servers render chat messages through the model's chat template.
CHAT_STYLES = frozenset({"chat", "converse"})  # converse: Bedrock sends messages, the model applies its template


class TokenCounter(Protocol):
    """Counts the tokens of a text; `name` is recorded with the counts."""

    name: str

    def count(self, text: str) -> int: ...


class SimpleTokenCounter:
    """Counts words and punctuation marks: deterministic, dependency-free, close to BPE for English prose."""

    def __init__(self, name: str = "simple-regex") -> None:
        self.name = name

    def count(self, text: str) -> int:
        return len(_TOKEN_RE.findall(text))


class TransformersTokenCounter:
    """A model's tokenizer (transformers, fast tokenizers only: no torch).

    `count` is for generated text: no special tokens added. Prompts are counted as a server counts them
    (`count_prompt`): chat messages through the tokenizer's chat template with the generation prompt, plain
    text with the tokenizer's default special tokens (a BOS token for most models), as vLLM does.
    """

    def __init__(self, source: str, tokenizer: Any) -> None:
        self.name = f"transformers:{source}"
        self.source = source
        self.tokenizer = tokenizer

    def count(self, text: str) -> int:
        return len(self.tokenizer.encode(text, add_special_tokens=False))

    def count_text_prompt(self, text: str) -> int:
        return len(self.tokenizer.encode(text, add_special_tokens=True))

    def count_chat_prompt(self, messages: Sequence[dict[str, str]]) -> int:
        if not getattr(self.tokenizer, "chat_template", None):
            # No template to render: count the messages joined as text, as the payload's text form is sent.
            return self.count_text_prompt(messages_as_text(messages))
        ids = self.tokenizer.apply_chat_template(list(messages), tokenize=True, add_generation_prompt=True)
        if not isinstance(ids, list):  # transformers 5 returns a BatchEncoding
            ids = ids["input_ids"]
        return len(ids)


def messages_as_text(messages: Sequence[dict[str, str]]) -> str:
    """Chat messages as the text a prompt without a chat template sends: 'role: content' lines."""
    return "\n".join(f"{m.get('role', 'user')}: {m.get('content', '')}" for m in messages)


def count_prompt(
    counter: TokenCounter, text: str | None, messages: Sequence[dict[str, str]] | None, api_style: str
) -> int:
    """Tokens of a prompt as sent in `api_style`: chat styles send messages (a text prompt as one user message),
    the others send text (messages joined as 'role: content' lines)."""
    if isinstance(counter, TransformersTokenCounter):
        if api_style in CHAT_STYLES:
            return counter.count_chat_prompt(messages or [{"role": "user", "content": text or ""}])
        return counter.count_text_prompt(text if text is not None else messages_as_text(messages or ()))
    # The built-in counter counts what the user wrote: the text, or the messages' contents (no template).
    if text is not None:
        return counter.count(text)
    return sum(counter.count(str(m.get("content", ""))) for m in messages or ())


_CACHE: dict[str, TransformersTokenCounter] = {}
# Files one of which a transformers tokenizer folder holds (fast tokenizer, its config, or a slow vocabulary).
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json", "vocab.txt")


def load_tokenizer(source: str, download: bool = False) -> TransformersTokenCounter:
    """The tokenizer of a local folder or a hub id, loaded once per process.

    Offline unless `download`: a hub id must already be in the local Hugging Face cache. Raises
    ConfigError with one line on any fault.
    """
    key = f"{source}\0{download}"
    if key in _CACHE:
        return _CACHE[key]
    folder = Path(source) if Path(source).is_absolute() else None
    if folder is not None and not folder.is_dir():
        raise ConfigError(f"tokenizer folder not found: {source}")
    if folder is not None and not any((folder / f).is_file() for f in _TOKENIZER_FILES):
        raise ConfigError(f"no tokenizer in folder {source} (none of {', '.join(_TOKENIZER_FILES)})")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")  # no advisory banner (no torch) on each run
    try:
        from transformers import AutoTokenizer
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise ConfigError(f"transformers is not installed: {exc}") from exc
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=not download)
    except Exception as exc:  # transformers raises OSError, ValueError, KeyError... for unreadable folders
        if folder is None and not download and isinstance(exc, OSError):
            raise ConfigError(
                f"tokenizer {source!r} is not in the local Hugging Face cache (tokenizer_download: true allows "
                "downloading it)"
            ) from exc
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        where = "folder" if folder is not None else "hub id"
        raise ConfigError(f"cannot load a tokenizer from {where} {source!r}: {first[:300]}") from exc
    if not getattr(tokenizer, "is_fast", False):
        raise ConfigError(f"tokenizer {source!r} is not a fast (tokenizers) tokenizer")
    counter = TransformersTokenCounter(source, tokenizer)
    _CACHE[key] = counter
    return counter


def fallback_counter(reason: str) -> SimpleTokenCounter:
    """The built-in counter, named with why the model's tokenizer is not used."""
    return SimpleTokenCounter(f"simple-regex (fallback: {reason})")


def default_counter_for(model_id: str, download: bool = False) -> TokenCounter:
    """The model's tokenizer from the local cache (or the hub when `download`), else the named fallback."""
    try:
        return load_tokenizer(model_id, download)
    except ConfigError:
        where = "on the hub" if download else "in the local Hugging Face cache"
        return fallback_counter(f"no tokenizer for {model_id} {where}")


DEFAULT_COUNTER: TokenCounter = SimpleTokenCounter()


def experiment_counters(config: Config, config_path: Path) -> dict[str, TokenCounter]:
    """Each experiment's token counter, by name: its `tokenizer` (an error if it cannot be loaded), else its
    model_id's tokenizer from the local cache, else the named fallback. Tokenizers load once per process."""
    out: dict[str, TokenCounter] = {}
    for i, exp in enumerate(config.experiments):
        if exp.tokenizer is None:
            out[exp.name] = default_counter_for(exp.model_id, exp.tokenizer_download)
            continue
        try:
            out[exp.name] = load_tokenizer(exp.tokenizer, exp.tokenizer_download)
        except ConfigError as exc:
            raise ConfigError(f"{config_path}: experiments[{i}].tokenizer: {exc}") from exc
    return out
