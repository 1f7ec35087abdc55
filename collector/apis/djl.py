"""DJL Serving's LMI API (api_style djl), rolling-batch schema: POST /invocations with `{"inputs", "parameters",
"stream"}`; a JSON `{"generated_text", "details"}` (or a list of one), or a jsonlines stream of
`{"token": {...}}` whose last line adds generated_text and details (SSE `data:` lines parse the same way).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from collector.apis import tgi
from collector.apis.common import Usage
from collector.config import InferenceParameters
from collector.payloads import Prompt

SSE = False  # jsonlines: every non-blank line is an event


def request_path(api_style: str, model: str, stream: bool) -> str:
    return "/invocations"


def sampling(params: InferenceParameters) -> dict[str, Any]:
    """LMI's `parameters`, always sent: FMBench 2.1.6 built them but posted the payload without them (§5.1)."""
    out: dict[str, Any] = {
        "max_new_tokens": params.max_tokens,
        # LMI <= 0.31 samples only with do_sample true, whatever temperature says
        "do_sample": params.temperature > 0,
        "temperature": params.temperature,
        "top_p": params.top_p,
        "details": True,  # finish_reason and generated_tokens: the server's own count
    }
    if params.ignore_eos:
        out["ignore_eos_token"] = True  # the vLLM rolling batch's name for it
    out.update(params.extra)
    return out


def request_body(
    api_style: str, model: str, prompt: Prompt, params: InferenceParameters, stream: bool
) -> dict[str, Any]:
    return {"inputs": prompt.as_text(), "parameters": sampling(params), "stream": stream}


def parse_completion(body: bytes, api_style: str) -> tuple[str, str | None, Usage | None]:
    return tgi.parse_completion(body, api_style)


@dataclass
class StreamState(tgi.StreamState):
    """The jsonlines stream has TGI's event shape, one JSON object per line."""

    what = "JSON line"
