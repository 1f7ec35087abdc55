"""Building blocks of every config model: the strict base class, safe names and sane maxima.

Kept apart from collector.config so that endpoint kinds defined in their own modules can share them.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict

# Names end up in file names, SQL values and the report, so they are kept to a plain set: no path
# separators, no leading dot (hidden files, `..`), nothing Markdown or HTML would read as markup.
NAME_RE = re.compile(r"^[A-Za-z0-9_\-][A-Za-z0-9_.\-]{0,99}$")
BUCKET_NAME_RE = NAME_RE
NAME_RULE = "may only hold letters, digits, '_', '.', '-' (at most 100, not starting with '.')"

# Sane maxima: far beyond any real sweep, but small enough that every count fits the raw tables'
# 32-bit integer columns and a typo (an extra zero or three) is caught before a run starts.
MAX_CONCURRENCY = 100_000
MAX_REQUESTS_PER_LEVEL = 10_000_000
MAX_REPEATS_PER_LEVEL = 100
MAX_CLIENT_PROCESSES = 256  # client processes of one collector (experiments[].client_processes)
MAX_TOKENS = 10_000_000
MAX_INSTANCES = 10_000
MAX_SECONDS = 7 * 24 * 3600
MAX_PROMPTS = 1_000_000
MAX_CONFIG_BYTES = 10 * 1024 * 1024


class Strict(BaseModel):
    # allow_inf_nan=False: `.inf` or `.nan` in any float field is an error, not a timeout that never fires.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def _check_name(value: str) -> str:
    if not NAME_RE.match(value):
        raise ValueError(f"{value!r} {NAME_RULE}")
    return value


SafeName = Annotated[str, AfterValidator(_check_name)]


def _finite(value: Any, where: str = "") -> None:
    """Reject inf and nan anywhere in free-form data (JSON cannot carry them to a server)."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{where or 'value'} must be a finite number, not {value}")
    if isinstance(value, dict):
        for key, item in value.items():
            _finite(item, f"{where}.{key}" if where else str(key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _finite(item, f"{where}[{i}]")


# The wire formats the load path speaks (collector/apis/), one Literal for every endpoint kind.
ApiStyle = Literal["completions", "chat", "tgi", "djl", "triton"]
API_STYLE_DOC = (
    "Wire format: completions or chat (OpenAI /completions, /chat/completions under base_url), tgi (TGI /generate, "
    "/generate_stream), djl (DJL LMI /invocations) or triton (Triton /v2/models/<model>/generate, /generate_stream); "
    "those three under the server root (a trailing /v1 of base_url is dropped)."
)
