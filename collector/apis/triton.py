"""Triton's generate extension (api_style triton): POST /v2/models/<model>/generate (JSON) and /generate_stream
(SSE), `{"text_input", "max_tokens", ...}` in, `{"text_output", ...}` out. The stream has no end marker: it is
whole when the body ends cleanly. Token counts come from the vLLM backend's optional num_input_tokens and
num_output_tokens outputs when the server adds them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from collector.apis.common import (
    MalformedResponse,
    StreamError,
    StreamStateBase,
    Usage,
    checked_usage,
    decode,
    finish_field,
    loads,
    text_field,
    why,
)
from collector.config import InferenceParameters
from collector.payloads import Prompt

SSE = True


def request_path(api_style: str, model: str, stream: bool) -> str:
    return f"/v2/models/{quote(model, safe='')}/{'generate_stream' if stream else 'generate'}"


def request_body(
    api_style: str, model: str, prompt: Prompt, params: InferenceParameters, stream: bool
) -> dict[str, Any]:
    # Top-level fields are the model's input tensors where it has them (TensorRT-LLM's ensemble takes max_tokens,
    # temperature, top_p, stream) and request parameters where not (the vLLM backend reads them from there).
    body: dict[str, Any] = {
        "text_input": prompt.as_text(),
        "max_tokens": params.max_tokens,
        "temperature": params.temperature,
        "top_p": params.top_p,
        "stream": stream,
        "exclude_input_in_output": True,  # the vLLM backend echoes the prompt otherwise
    }
    if params.ignore_eos:
        body["ignore_eos"] = True
    body.update(params.extra)
    return body


def _usage(obj: dict[str, Any]) -> Usage | None:
    return checked_usage(
        ("num_input_tokens", obj.get("num_input_tokens")), ("num_output_tokens", obj.get("num_output_tokens"))
    )


def _finish(obj: dict[str, Any]) -> str | None:
    reason = obj.get("finish_reason")
    if type(reason) is list and len(reason) == 1:  # an output tensor of one element
        reason = reason[0]
    return finish_field({"finish_reason": reason}, "finish_reason", "")


def parse_completion(body: bytes, api_style: str) -> tuple[str, str | None, Usage | None]:
    try:
        obj = loads(body)
        if type(obj) is not dict:
            raise MalformedResponse("JSON is not an object")
        if "error" in obj:
            raise StreamError(str(obj["error"])[:300])
        if "text_output" not in obj:
            raise MalformedResponse("no text_output")
        return text_field(obj, "text_output", ""), _finish(obj), _usage(obj)
    except StreamError:
        raise
    except Exception as exc:
        raise MalformedResponse(f"response: {why(exc)}"[:300]) from exc


@dataclass
class StreamState(StreamStateBase):
    """What a generate_stream SSE stream has delivered so far; each event holds the new text_output."""

    def feed(self, line: bytes) -> bool:
        if not line.startswith(b"data:"):
            return False
        payload = line[5:].strip()
        self.chunk_count += 1
        try:
            obj = decode(payload.decode())
            if type(obj) is not dict:
                raise MalformedResponse("not a JSON object")
            if "error" in obj:
                raise StreamError(str(obj["error"])[:300])
            if "text_output" not in obj:
                raise MalformedResponse("no text_output")
            text = text_field(obj, "text_output", "")
            self.finish_reason = _finish(obj) or self.finish_reason
            usage = _usage(obj)
            if usage is not None:
                self.usage = usage
        except StreamError:
            raise
        except Exception as exc:
            raise MalformedResponse(f"SSE event {self.chunk_count}: {why(exc)} {payload[:80]!r}"[:300]) from exc
        if text:
            self.pieces.append(text)
            self.content_chunk_count += 1
            return True
        return False

    @property
    def complete(self) -> bool:
        """Triton sends no end marker: a stream whose body ended cleanly is whole (a cut one raised already)."""
        return True
