"""The OpenAI-compatible wire format (api_style completions and chat): request bodies, and defensive parsing
of JSON and SSE responses. Whatever a server sends either parses or raises MalformedResponse / StreamError.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from collector.apis.common import (
    MalformedResponse,
    StreamError,
    StreamStateBase,
    Usage,
    checked_usage,
    decode,
    loads,
    why,
)
from collector.apis.common import raw as _raw
from collector.config import InferenceParameters
from collector.payloads import Prompt

_decode = decode
_why = why
SSE = True  # the stream is server-sent events: only `data:` lines carry events


def request_path(api_style: str, model: str = "", stream: bool = False) -> str:
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
    if params.min_tokens is not None:
        body["min_tokens"] = params.min_tokens
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    body.update(params.extra)
    return body


def _choice_text(choice: dict[str, Any], api_style: str) -> str:
    if api_style == "chat":
        delta = choice.get("delta")
        if delta is None:
            delta = choice.get("message")
            if delta is None:
                return ""
        if type(delta) is not dict:
            raise MalformedResponse(f"delta/message is {_raw(delta)}, expected an object")
        content = delta.get("content")
    else:
        content = choice.get("text")
    if content is None:
        return ""
    if type(content) is not str:
        raise MalformedResponse(f"content is {type(content).__name__}, expected a string")
    return content


def _bad_finish_reason(reason: object) -> MalformedResponse:
    return MalformedResponse(f"finish_reason is {_raw(reason)}, expected a string")


def _usage(obj: dict[str, Any]) -> Usage | None:
    usage = obj.get("usage")
    if usage is None:
        return None  # OpenAI sends "usage": null on every chunk but the last
    if type(usage) is not dict:
        raise MalformedResponse(f"usage is {_raw(usage)}, expected an object")
    get = usage.get
    return checked_usage(
        ("usage.prompt_tokens", get("prompt_tokens")), ("usage.completion_tokens", get("completion_tokens"))
    )


def parse_completion(raw: bytes, api_style: str) -> tuple[str, str | None, Usage | None]:
    """(text, finish_reason, usage) of a non-streaming response body."""
    try:
        obj = loads(raw)
        if type(obj) is not dict:
            raise MalformedResponse("JSON is not an object")
        if "error" in obj and "choices" not in obj:
            raise StreamError(str(obj["error"])[:300])
        choices = obj.get("choices")
        if type(choices) is not list or not choices or type(choices[0]) is not dict:
            raise MalformedResponse("no choices")
        choice = choices[0]
        reason = choice.get("finish_reason")
        if reason is not None and type(reason) is not str:
            raise _bad_finish_reason(reason)
        return _choice_text(choice, api_style), reason or None, _usage(obj)
    except StreamError:
        raise
    except Exception as exc:  # whatever the shape (deep nesting raises RecursionError): the server's fault
        raise MalformedResponse(f"response: {_why(exc)}"[:300]) from exc


@dataclass
class StreamState(StreamStateBase):
    """What an SSE stream has delivered so far; fed one line at a time."""

    def feed(self, line: bytes) -> bool:
        """Consume one line; True when it carried non-empty content. This runs for every streamed token.

        Raises MalformedResponse or StreamError only, whatever the line holds; the checks cost a few type tests.
        """
        if not line.startswith(b"data:"):
            return False  # blank separators, comments (": ping"), event: and id: fields
        payload = line[5:].strip()
        if payload == b"[DONE]":
            self.done = True
            return False
        self.chunk_count += 1
        try:  # free until it catches (3.11+)
            obj = _decode(payload.decode())
            if type(obj) is not dict:
                raise MalformedResponse("not a JSON object")
            if "error" in obj:
                raise StreamError(str(obj["error"])[:300])
            if "usage" in obj:
                usage = _usage(obj)
                if usage is not None:
                    self.usage = usage
            choices = obj.get("choices")
            if not choices:
                return False
            if type(choices) is not list or type(choices[0]) is not dict:
                raise MalformedResponse("malformed choices")
            choice = choices[0]
            reason = choice.get("finish_reason")
            if reason is not None:
                if type(reason) is not str:
                    raise _bad_finish_reason(reason)
                if reason:
                    self.finish_reason = reason
            text = _choice_text(choice, self.api_style)
        except StreamError:
            raise
        except Exception as exc:
            raise MalformedResponse(f"SSE event {self.chunk_count}: {_why(exc)} {payload[:80]!r}"[:300]) from exc
        if text:
            self.pieces.append(text)
            self.content_chunk_count += 1
            return True
        return False

    @property
    def complete(self) -> bool:
        """A stream is whole once [DONE] arrived, or a finish_reason did (some servers send no [DONE])."""
        return self.done or self.finish_reason is not None
