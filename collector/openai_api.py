"""The OpenAI-compatible wire format: request bodies, and parsing of JSON and SSE responses."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from collector.config import InferenceParameters
from collector.payloads import Prompt

# Decoding str with a reused decoder skips json.loads' per-call encoding detection on bytes.
_decode = json.JSONDecoder().decode


class MalformedResponse(Exception):
    """The body or an SSE event is not the JSON the API promises."""


class StreamError(Exception):
    """The server reported an error inside an otherwise well-formed stream."""


def request_path(api_style: str) -> str:
    return "/chat/completions" if api_style == "chat" else "/completions"


def request_body(
    api_style: str, model: str, prompt: Prompt, params: InferenceParameters, stream: bool
) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model}
    if api_style == "chat":
        body["messages"] = prompt.as_messages()
    else:
        body["prompt"] = prompt.as_text()
    body["max_tokens"] = params.max_tokens
    body["temperature"] = params.temperature
    body["top_p"] = params.top_p
    if params.ignore_eos:
        body["ignore_eos"] = True
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    body.update(params.extra)
    return body


def _choice_text(choice: dict[str, Any], api_style: str) -> str:
    if api_style == "chat":
        delta = choice.get("delta") or choice.get("message") or {}
        content = delta.get("content")
    else:
        content = choice.get("text")
    if content is None:
        return ""
    if not isinstance(content, str):
        raise MalformedResponse(f"content is {type(content).__name__}, expected a string")
    return content


@dataclass
class Usage:
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


def _usage(obj: dict[str, Any]) -> Usage | None:
    usage = obj.get("usage")
    if not isinstance(usage, dict):
        return None
    p, c = usage.get("prompt_tokens"), usage.get("completion_tokens")
    return Usage(p if isinstance(p, int) else None, c if isinstance(c, int) else None)


def parse_completion(raw: bytes, api_style: str) -> tuple[str, str | None, Usage | None]:
    """(text, finish_reason, usage) of a non-streaming response body."""
    try:
        obj = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise MalformedResponse(f"response is not JSON: {exc}") from exc
    if not isinstance(obj, dict):
        raise MalformedResponse("response JSON is not an object")
    if "error" in obj and "choices" not in obj:
        raise StreamError(str(obj["error"])[:300])
    choices = obj.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise MalformedResponse("response has no choices")
    return _choice_text(choices[0], api_style), choices[0].get("finish_reason"), _usage(obj)


@dataclass
class StreamState:
    """What an SSE stream has delivered so far; fed one line at a time."""

    api_style: str
    pieces: list[str] = field(default_factory=list)
    chunk_count: int = 0
    content_chunk_count: int = 0
    finish_reason: str | None = None
    usage: Usage | None = None
    done: bool = False

    def feed(self, line: bytes) -> bool:
        """Consume one line; True when it carried non-empty content. This runs for every streamed token."""
        if not line.startswith(b"data:"):
            return False  # blank separators, comments (": ping"), event: and id: fields
        payload = line[5:].strip()
        if payload == b"[DONE]":
            self.done = True
            return False
        self.chunk_count += 1
        try:
            obj = _decode(payload.decode())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise MalformedResponse(f"SSE event {self.chunk_count} is not JSON: {payload[:80]!r}") from exc
        if not isinstance(obj, dict):
            raise MalformedResponse(f"SSE event {self.chunk_count} is not a JSON object")
        if "error" in obj:
            raise StreamError(str(obj["error"])[:300])
        if "usage" in obj:
            usage = _usage(obj)
            if usage is not None:
                self.usage = usage
        choices = obj.get("choices")
        if not choices:
            return False
        if not isinstance(choices, list) or not isinstance(choices[0], dict):
            raise MalformedResponse(f"SSE event {self.chunk_count} has malformed choices")
        choice = choices[0]
        if choice.get("finish_reason"):
            self.finish_reason = choice["finish_reason"]
        text = _choice_text(choice, self.api_style)
        if text:
            self.pieces.append(text)
            self.content_chunk_count += 1
            return True
        return False

    @property
    def complete(self) -> bool:
        """A stream is whole once [DONE] arrived, or a finish_reason did (some servers send no [DONE])."""
        return self.done or self.finish_reason is not None

    def text(self) -> str:
        return "".join(self.pieces)
