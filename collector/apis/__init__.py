"""The wire formats the load path speaks, one module each, chosen by the endpoint's api_style.

Each module gives SSE (whether only `data:` lines carry events), request_path, request_body, parse_completion
and a StreamState whose feed(line) returns True when the line carried content.
"""

from __future__ import annotations

from types import ModuleType

from collector.apis import djl, openai, tgi, triton
from collector.apis.common import MalformedResponse, StreamError, Usage

__all__ = ["MalformedResponse", "StreamError", "Usage", "request_url", "wire_format"]

OPENAI_STYLES = frozenset({"completions", "chat"})
_FORMATS: dict[str, ModuleType] = {"completions": openai, "chat": openai, "tgi": tgi, "djl": djl, "triton": triton}


def wire_format(api_style: str) -> ModuleType:
    try:
        return _FORMATS[api_style]
    except KeyError:
        raise ValueError(f"unknown api_style {api_style!r}; known: {', '.join(_FORMATS)}") from None


def request_url(base_url: str, api_style: str, model: str, stream: bool) -> str:
    """The URL a request goes to. OpenAI paths hang under base_url (…/v1); the native APIs under the server's
    root, so a base_url ending in /v1 (as the simulator's does, and TGI's Messages API needs) loses it."""
    base = base_url.rstrip("/")
    if api_style not in OPENAI_STYLES:
        base = base.removesuffix("/v1")
    return base + wire_format(api_style).request_path(api_style, model, stream)
