"""Prompt templates for `prepare`: a row's fields fill the instruction, and a model family's format wraps it.

Named formats leave out the begin-of-text token: the server's tokenizer adds it to a text prompt (vLLM, TGI and
llama.cpp do), and a prompt that carries it too is sent with two.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from typing import Any

from collector.errors import ConfigError
from collector.prepare.spec import QA_INSTRUCTION
from collector.tokens import TokenCounter, TransformersTokenCounter, messages_as_text

Messages = list[dict[str, str]]

_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*)\}")
# The field a plain text row's text is in, when it has no `input` field.
TEXT_FIELDS = ("text", "prompt", "inputs")


def placeholders(instruction: str) -> list[str]:
    return [m.group(1) for m in _PLACEHOLDER.finditer(instruction) if m.group(1)]


def default_instruction(fields: dict[str, Any]) -> str:
    """FMBench's question-answering instruction for rows with a context (LongBench), else the row's text."""
    return QA_INSTRUCTION if "context" in fields else "{input}"


def _field(fields: dict[str, Any], name: str, where: str) -> str:
    value = fields.get(name)
    if value is None and name == "input":
        value = next((fields[k] for k in TEXT_FIELDS if isinstance(fields.get(k), str)), None)
    if value is None:
        known = ", ".join(sorted(str(k) for k in fields)) or "none"
        raise ConfigError(f"{where}: the instruction's {{{name}}} is not a field of the row (fields: {known})")
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ConfigError(f"{where}: field {name!r} is {type(value).__name__}, not text")
    # NFC, as FMBench does: LongBench holds decomposed accents that would otherwise count as extra tokens.
    return unicodedata.normalize("NFC", str(value))


def fill(instruction: str, fields: dict[str, Any], where: str) -> str:
    """The instruction with each {field} replaced by the row's value; `{{` and `}}` are literal braces."""

    def one(m: re.Match[str]) -> str:
        if m.group(1) is None:
            return m.group(0)[0]
        return _field(fields, m.group(1), where)

    return _PLACEHOLDER.sub(one, instruction)


def chat_messages(fields: dict[str, Any], where: str) -> Messages | None:
    """A chat row's messages (NFC), or None when the row has no `messages` field."""
    messages = fields.get("messages")
    if messages is None:
        return None
    if not isinstance(messages, list | tuple) or not messages:
        raise ConfigError(f"{where}: 'messages' must be a non-empty list of {{role, content}}")
    out = []
    for j, m in enumerate(messages):
        if not isinstance(m, dict) or not isinstance(m.get("content"), str):
            raise ConfigError(f"{where}: messages[{j}] must be an object with a string 'content'")
        out.append({"role": str(m.get("role") or "user"), "content": unicodedata.normalize("NFC", m["content"])})
    return out


def _split_system(messages: Sequence[dict[str, str]]) -> tuple[str | None, list[dict[str, str]]]:
    if messages and messages[0]["role"] == "system":
        return messages[0]["content"], list(messages[1:])
    return None, list(messages)


def llama3(messages: Sequence[dict[str, str]]) -> str:
    turns = "".join(f"<|start_header_id|>{m['role']}<|end_header_id|>\n\n{m['content']}<|eot_id|>" for m in messages)
    return turns + "<|start_header_id|>assistant<|end_header_id|>\n\n"


def _inst(
    messages: Sequence[dict[str, str]], with_system: Callable[[str, str], str], answered: Callable[[str], str]
) -> str:
    """[INST] ... [/INST] turns (Llama 2, Mistral): the system message joins the first user turn."""
    system, turns = _split_system(messages)
    out, first = "", True
    for m in turns:
        if m["role"] == "assistant":
            out += answered(m["content"])
            continue
        content = with_system(system, m["content"]) if first and system is not None else m["content"]
        out += f"[INST] {content} [/INST]"
        first = False
    return out


def llama2(messages: Sequence[dict[str, str]]) -> str:
    return _inst(messages, lambda s, c: f"<<SYS>>\n{s}\n<</SYS>>\n\n{c}", lambda a: f" {a} </s><s>")


def mistral(messages: Sequence[dict[str, str]]) -> str:
    return _inst(messages, lambda s, c: f"{s}\n\n{c}", lambda a: f"{a}</s>")


FORMATS = {"llama3": llama3, "llama2": llama2, "mistral": mistral}


def _chat_template_text(counter: TokenCounter, messages: Messages) -> str:
    """Messages rendered to text by the tokenizer's chat template, less a leading begin-of-text token."""
    assert isinstance(counter, TransformersTokenCounter)
    text = counter.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    bos = getattr(counter.tokenizer, "bos_token", None)
    return text.removeprefix(bos) if bos else text


def render(
    template: str, instruction: str, fields: dict[str, Any], where: str, sends_as: str, counter: TokenCounter
) -> tuple[str | None, Messages | None]:
    """A row as the prompt sent: (text, None) for text endpoints, (None, messages) for chat endpoints."""
    messages = chat_messages(fields, where)
    if messages is None:
        messages = [{"role": "user", "content": fill(instruction, fields, where)}]
    if template in FORMATS:
        return FORMATS[template](messages), None
    if sends_as == "chat":
        return None, messages
    if template == "chat":
        return _chat_template_text(counter, messages), None
    return (messages[0]["content"] if len(messages) == 1 else messages_as_text(messages)), None
