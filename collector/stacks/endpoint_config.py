"""Config models of the endpoint kinds that start their own engine: `type: container` and `type: process`."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from collector.config_base import MAX_SECONDS, MAX_TOKENS, ApiStyle, Strict
from collector.stacks.catalog import STACK_NAMES, check_settings, stacks

ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
Dtype = Literal["auto", "float16", "bfloat16", "float32"]


class _EngineEndpoint(Strict):
    """What both kinds share: the stack, the engine settings built into its launch, and the waits."""

    stack: str | None = Field(
        default=None, description=f"Serving stack from collector/stacks/stacks.yml: {', '.join(STACK_NAMES)}."
    )
    model: str | None = Field(
        default=None,
        description="What the engine loads (Hugging Face id, local path, GGUF repo); default: the experiment's "
        "model_id. Requests always name the model as model_id.",
    )
    api_style: ApiStyle | None = Field(
        default=None, description="API the collector speaks to the engine; default: the stack's (see stacks.yml)."
    )
    stream: bool = Field(default=True, description="Stream responses; needed for TTFT and TPOT.")
    tensor_parallel: int | None = Field(
        default=None, ge=1, le=1024, description="GPUs to shard the model over; unset: the engine's default."
    )
    max_model_len: int | None = Field(
        default=None, ge=1, le=MAX_TOKENS, description="Longest prompt plus completion, in tokens; unset: default."
    )
    max_batch: int | None = Field(
        default=None, ge=1, le=1_000_000, description="Most sequences served at once; unset: the engine's default."
    )
    dtype: Dtype | None = Field(default=None, description="Weight and activation type; unset: the engine's default.")
    hf_token_env: str | None = Field(
        default=None,
        pattern=ENV_NAME,
        description="Name of the environment variable holding the Hugging Face token (never the token itself).",
    )
    port: int | None = Field(
        default=None, ge=1, le=65535, description="Host port the engine answers on (127.0.0.1); unset: a free one."
    )
    extra_args: list[str] = Field(default_factory=list, description="Further launch arguments, appended as they are.")
    health_path: str | None = Field(
        default=None, pattern=r"^/\S*$", description="GET path answered 2xx when up; default: the stack's."
    )

    @model_validator(mode="after")
    def _stack_settings(self) -> _EngineEndpoint:
        if self.stack is not None:
            if self.stack not in stacks():
                raise ValueError(f"unknown stack {self.stack!r} (known: {', '.join(STACK_NAMES)})")
            check_settings(stacks()[self.stack], self.model_dump())
        return self

    @model_validator(mode="before")
    @classmethod
    def _stack_defaults(cls, data: Any) -> Any:
        if isinstance(data, dict):
            stack = stacks().get(data.get("stack") or "")
            defaults = {"api_style": stack.api_style, "health_path": stack.health_path} if stack else {}
            # Without a stack (a command given): an OpenAI-compatible server with /health, unless said otherwise.
            data = {"api_style": "chat", "health_path": "/health", **defaults, **data}
        return data


class ContainerEndpoint(_EngineEndpoint):
    """A serving stack started with `docker run` on this host, waited for, measured, then stopped and removed."""

    type: Literal["container"] = Field(description="Endpoint kind.")
    stack: str = Field(description=f"Serving stack from collector/stacks/stacks.yml: {', '.join(STACK_NAMES)}.")
    image: str | None = Field(
        default=None, pattern=r"^[^\s-][^\s]*$", description="Image to run instead of the stack's (pin a tag)."
    )
    gpus: str | None = Field(
        default="all", pattern=r"^[^\s-][^\s]*$", description="docker --gpus value; null runs without GPUs."
    )
    shm_size: str | None = Field(
        default=None, pattern=r"^\d+[bkmg]?$", description="docker --shm-size; default: the stack's."
    )
    ipc_host: bool = Field(default=True, description="docker --ipc host (PyTorch shares tensors through it).")
    model_cache_dir: Path | None = Field(
        default=Path("~/.cache/huggingface"),
        description="Host folder mounted as the stack's model cache, so weights download once; null: no volume.",
    )
    startup_timeout_s: float = Field(
        default=2400,
        gt=0,
        le=MAX_SECONDS,
        description="How long to wait for the engine to be healthy and answer one real inference (pull and load).",
    )


class ProcessEndpoint(_EngineEndpoint):
    """An engine started as a local process (its process group), waited for, measured, then stopped."""

    type: Literal["process"] = Field(description="Endpoint kind.")
    command: list[str] | None = Field(
        default=None,
        min_length=1,
        description="Command that starts the engine, instead of the stack's; {port}, {host}, {model} and "
        "{served_model_name} are filled in.",
    )
    startup_timeout_s: float = Field(
        default=600,
        gt=0,
        le=MAX_SECONDS,
        description="How long to wait for the engine to be healthy and answer one real inference.",
    )

    @model_validator(mode="after")
    def _command_or_stack(self) -> ProcessEndpoint:
        if (self.command is None) == (self.stack is None):
            raise ValueError("give exactly one of 'stack' or 'command'")
        if self.stack is not None and stacks()[self.stack].process_command is None:
            raise ValueError(f"stack {self.stack} runs in a container only; use type: container")
        if self.command is not None and not re.search(r"\{port\}", " ".join(self.command)) and self.port is None:
            raise ValueError("command must take {port} or the endpoint must give port")
        return self

    def effective_api_style(self) -> str:
        return self.api_style or "chat"
