"""Hugging Face TGI's native API (api_style tgi): POST /generate (JSON) and /generate_stream (SSE), each event
`{"token": {"text", "special"}, "generated_text": null|str, "details": null|{...}}`, the last one with details.
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
    finish_field,
    loads,
    raw,
    text_field,
    why,
)
from collector.config import InferenceParameters
from collector.payloads import Prompt

SSE = True


def request_path(api_style: str, model: str, stream: bool) -> str:
    return "/generate_stream" if stream else "/generate"


def sampling(params: InferenceParameters) -> dict[str, Any]:
    """TGI's `parameters`, always sent (FMBench once dropped them for DJL, so server defaults applied silently).

    TGI rejects temperature 0 and top_p outside (0, 1): temperature 0 is greedy (do_sample false, no temperature),
    and top_p 1 (no nucleus cut) is left out, which means the same to the server.
    """
    out: dict[str, Any] = {"max_new_tokens": params.max_tokens, "do_sample": params.temperature > 0}
    if params.temperature > 0:
        out["temperature"] = params.temperature
    if params.top_p < 1:
        out["top_p"] = params.top_p
    out["details"] = True  # finish_reason and generated_tokens: the server's own count
    out.update(params.extra)
    return out


def request_body(
    api_style: str, model: str, prompt: Prompt, params: InferenceParameters, stream: bool
) -> dict[str, Any]:
    return {"inputs": prompt.as_text(), "parameters": sampling(params)}


def details_of(obj: dict[str, Any], where: str) -> tuple[str | None, Usage | None]:
    """(finish_reason, usage) from a `details` object (absent or null: nothing)."""
    details = obj.get("details")
    if details is None:
        return None, None
    if type(details) is not dict:
        raise MalformedResponse(f"{where}details is {raw(details)}, expected an object")
    # DJL LMI's non-streaming reply spells it "finish reason"
    reason = finish_field(details, "finish_reason", f"{where}details.") or finish_field(
        details, "finish reason", f"{where}details."
    )
    if reason == "error":
        raise StreamError(f"the server ended generation with finish_reason error {raw(details)}"[:300])
    usage = checked_usage(
        ("details.input_length", details.get("input_length")),
        ("details.generated_tokens", details.get("generated_tokens")),
    )
    return reason, usage


def parse_object(obj: Any) -> tuple[str, str | None, Usage | None]:
    """(generated_text, finish_reason, usage) of one `{"generated_text", "details"}` object (or a list of one)."""
    if type(obj) is list and len(obj) == 1:  # TGI's / route, and DJL with tgi_compat, answer a list of one
        obj = obj[0]
    if type(obj) is not dict:
        raise MalformedResponse("JSON is not an object")
    if "error" in obj and "generated_text" not in obj:
        raise StreamError(str(obj["error"])[:300])
    if "generated_text" not in obj:
        raise MalformedResponse("no generated_text")
    text = text_field(obj, "generated_text", "")
    reason, usage = details_of(obj, "")
    return text, reason, usage


def parse_completion(body: bytes, api_style: str) -> tuple[str, str | None, Usage | None]:
    try:
        return parse_object(loads(body))
    except StreamError:
        raise
    except Exception as exc:
        raise MalformedResponse(f"response: {why(exc)}"[:300]) from exc


@dataclass
class StreamState(StreamStateBase):
    """What a TGI-style token stream has delivered so far; fed one line at a time (SSE `data:` or a JSON line)."""

    what = "SSE event"

    def feed(self, line: bytes) -> bool:
        """Consume one line; True when it carried a non-empty, non-special token."""
        payload = line[5:].strip() if line.startswith(b"data:") else line.strip()
        if not payload:
            return False
        self.chunk_count += 1
        try:
            obj = decode(payload.decode())
            if type(obj) is not dict:
                raise MalformedResponse("not a JSON object")
            if "error" in obj:
                raise StreamError(str(obj["error"])[:300])
            token = obj.get("token")
            text = ""
            if token is not None:
                if type(token) is not dict:
                    raise MalformedResponse(f"token is {raw(token)}, expected an object")
                text = text_field(token, "text", "token.")
                if token.get("special") is True or token.get("special_token") is True:
                    text = ""  # e.g. </s>: not content, and not the first token a user sees
            if obj.get("generated_text") is not None or obj.get("details") is not None:
                text_field(obj, "generated_text", "")
                reason, usage = details_of(obj, "")
                self.finish_reason = reason or self.finish_reason
                if usage is not None:
                    self.usage = usage
                self.done = True  # the last event carries generated_text and details
        except StreamError:
            raise
        except Exception as exc:
            raise MalformedResponse(f"{self.what} {self.chunk_count}: {why(exc)} {payload[:80]!r}"[:300]) from exc
        if text:
            self.pieces.append(text)
            self.content_chunk_count += 1
            return True
        return False

    @property
    def complete(self) -> bool:
        """Whole once the final event (generated_text or details) arrived."""
        return self.done
