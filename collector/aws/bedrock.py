"""Bedrock's Converse API: the request sent for a prompt, and the reply read from Converse's body or from
ConverseStream's events (the usage and the service's own latency come from its `usage` / `metadata`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from collector.apis.common import MalformedResponse, StreamStateBase, Usage, checked_usage, raw
from collector.config import InferenceParameters
from collector.payloads import Prompt


def converse_request(model_id: str, prompt: Prompt, params: InferenceParameters, system: str | None) -> dict[str, Any]:
    """Keyword arguments of converse / converse_stream. Bedrock takes temperature in [0, 1]; inference
    parameters' `extra` go to additionalModelRequestFields (e.g. top_k), as the model's own fields."""
    messages = [
        {"role": m.get("role", "user"), "content": [{"text": str(m.get("content", ""))}]}
        for m in prompt.as_messages()
        if m.get("role") != "system"
    ]
    systems = [str(m.get("content", "")) for m in prompt.as_messages() if m.get("role") == "system"]
    if system is not None:
        systems.insert(0, system)
    kwargs: dict[str, Any] = {
        "modelId": model_id,
        "messages": messages,
        "inferenceConfig": {"maxTokens": params.max_tokens, "temperature": params.temperature, "topP": params.top_p},
    }
    if systems:
        kwargs["system"] = [{"text": s} for s in systems]
    if params.extra:
        kwargs["additionalModelRequestFields"] = dict(params.extra)
    return kwargs


def _usage(obj: Any, where: str) -> Usage | None:
    if obj is None:
        return None
    if type(obj) is not dict:
        raise MalformedResponse(f"{where} is {raw(obj)}, expected an object")
    return checked_usage(
        (f"{where}.inputTokens", obj.get("inputTokens")), (f"{where}.outputTokens", obj.get("outputTokens"))
    )


def _latency_ms(obj: Any) -> int | None:
    value = obj.get("latencyMs") if type(obj) is dict else None
    return value if type(value) is int and value >= 0 else None


def parse_converse(reply: dict[str, Any]) -> tuple[str, str | None, Usage | None, int | None]:
    """(text, stopReason, usage, metrics.latencyMs) of a Converse reply."""
    try:
        content = reply["output"]["message"]["content"]
    except (KeyError, TypeError) as exc:
        raise MalformedResponse("no output.message.content") from exc
    if type(content) is not list:
        raise MalformedResponse(f"output.message.content is {raw(content)}, expected a list")
    text = "".join(block["text"] for block in content if type(block) is dict and type(block.get("text")) is str)
    reason = reply.get("stopReason")
    return (
        text,
        reason if type(reason) is str else None,
        _usage(reply.get("usage"), "usage"),
        _latency_ms(reply.get("metrics")),
    )


@dataclass
class ConverseStreamState(StreamStateBase):
    """What a ConverseStream has delivered so far; fed one parsed event at a time (botocore decodes the stream)."""

    latency_ms: int | None = None
    stopped: bool = False

    def feed_event(self, event: Any) -> bool:
        """Consume one event; True when it carried text."""
        self.chunk_count += 1
        if type(event) is not dict or len(event) != 1:
            raise MalformedResponse(f"event {self.chunk_count}: {raw(event)} is not one event")
        ((kind, body),) = event.items()
        if kind == "contentBlockDelta":
            delta = body.get("delta") if type(body) is dict else None
            text = delta.get("text") if type(delta) is dict else None
            if type(text) is str and text:
                self.pieces.append(text)
                self.content_chunk_count += 1
                return True
        elif kind == "messageStop":
            reason = body.get("stopReason") if type(body) is dict else None
            self.finish_reason = reason if type(reason) is str else self.finish_reason
            self.stopped = True
        elif kind == "metadata":
            if type(body) is not dict:
                raise MalformedResponse(f"metadata is {raw(body)}, expected an object")
            self.usage = _usage(body.get("usage"), "metadata.usage")
            self.latency_ms = _latency_ms(body.get("metrics"))
            self.done = True
        return False

    @property
    def complete(self) -> bool:
        """Whole once messageStop arrived (metadata, which carries usage, follows it)."""
        return self.stopped
