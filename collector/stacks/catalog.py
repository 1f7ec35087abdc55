"""Load the reviewed stack entries and build an engine's launch command and environment from an experiment.

Secrets never enter a command line: the token's variable is named to docker (`--env NAME`) and its value is
handed to the child's environment only.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

STACKS_FILE = Path(__file__).with_name("stacks.yml")
SETTINGS = ("tensor_parallel", "max_model_len", "max_batch", "dtype")
OPENAI_STYLES = ("chat", "completions")


@dataclass(frozen=True)
class Stack:
    name: str
    image: str
    container_port: int
    container_command: list[str]
    process_command: list[str] | None
    args: list[list[str]]
    env: dict[str, str]
    dtypes: dict[str, str | None]
    token_env: list[str]
    cache_mount: str | None
    shm_size: str
    health_path: str
    version_path: str | None
    api_style: str
    api_base_path: str
    source: str
    read_on: str

    def settings_used(self) -> set[str]:
        text = " ".join(a for group in self.args for a in group) + " " + " ".join(self.env.values())
        return {s for s in SETTINGS if "{" + s + "}" in text}


@functools.cache
def stacks() -> dict[str, Stack]:
    data = yaml.safe_load(STACKS_FILE.read_text())["stacks"]
    return {name: Stack(name=name, **{"process_command": None, **entry}) for name, entry in data.items()}


STACK_NAMES = tuple(sorted(yaml.safe_load(STACKS_FILE.read_text())["stacks"]))


@dataclass
class Launch:
    """What starts one engine: the command, plain environment, and the secret variables it gets by name."""

    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    secret_env: dict[str, str] = field(default_factory=dict)  # name inside the engine -> name in our environment


def check_settings(stack: Stack, values: dict[str, Any]) -> None:
    """ValueError naming the setting when the stack cannot be asked for it."""
    used = stack.settings_used()
    for name in SETTINGS:
        value = values.get(name)
        if name == "dtype":
            if value is not None and value not in stack.dtypes:
                known = ", ".join(stack.dtypes)
                raise ValueError(f"stack {stack.name} cannot set dtype {value!r} (it takes: {known})")
            continue
        if value is not None and name not in used:
            raise ValueError(f"stack {stack.name} has no launch setting for {name}; leave it unset")


def _fill(template: str, values: dict[str, Any]) -> str | None:
    """The template with placeholders filled; None when it names a setting left unset."""
    out = template
    for key, value in values.items():
        token = "{" + key + "}"
        if token in out:
            if value is None:
                return None
            out = out.replace(token, str(value))
    return out


def launch_values(stack: Stack, ep: Any, model_id: str, host: str, port: int) -> dict[str, Any]:
    dtype = getattr(ep, "dtype", None)
    return {
        "model": ep.model or model_id,
        "served_model_name": model_id,
        "host": host,
        "port": port,
        "tensor_parallel": ep.tensor_parallel,
        "max_model_len": ep.max_model_len,
        "max_batch": ep.max_batch,
        "dtype": stack.dtypes.get(dtype) if dtype is not None else None,
    }


def build_args(stack: Stack, values: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for group in stack.args:
        filled = [_fill(a, values) for a in group]
        if all(f is not None for f in filled):
            out.extend(f for f in filled if f is not None)
    return out


def build_env(stack: Stack, values: dict[str, Any]) -> dict[str, str]:
    env = {}
    for key, template in stack.env.items():
        filled = _fill(template, values)
        if filled is not None:
            env[key] = filled
    return env


def process_launch(stack: Stack, ep: Any, model_id: str, port: int) -> Launch:
    if stack.process_command is None:
        raise ValueError(f"stack {stack.name} cannot run as a local process (container only)")
    values = launch_values(stack, ep, model_id, "127.0.0.1", port)
    argv = [*stack.process_command, *build_args(stack, values), *ep.extra_args]
    return Launch(argv, build_env(stack, values), _secrets(stack, ep))


def docker_run_argv(stack: Stack, ep: Any, model_id: str, host_port: int, image: str | None = None) -> Launch:
    """`docker run -d ...` for the stack; the token appears as `--env NAME` (docker reads the value itself)."""
    values = launch_values(stack, ep, model_id, "0.0.0.0", stack.container_port)
    env = build_env(stack, values)
    secrets = _secrets(stack, ep)
    argv = ["docker", "run", "-d"]
    if ep.gpus:
        argv += ["--gpus", ep.gpus]
    if ep.ipc_host:
        argv += ["--ipc", "host"]
    argv += ["--shm-size", ep.shm_size or stack.shm_size]
    argv += ["-p", f"127.0.0.1:{host_port}:{stack.container_port}"]
    if ep.model_cache_dir is not None and stack.cache_mount:
        argv += ["-v", f"{Path(ep.model_cache_dir).expanduser()}:{stack.cache_mount}"]
    for key, value in env.items():
        argv += ["--env", f"{key}={value}"]
    for inner in secrets:
        argv += ["--env", inner]
    argv += ["--label", "tokenbench=1", image or ep.image or stack.image]
    argv += [*stack.container_command, *build_args(stack, values), *ep.extra_args]
    return Launch(argv, {}, secrets)


def _secrets(stack: Stack, ep: Any) -> dict[str, str]:
    return {inner: ep.hf_token_env for inner in stack.token_env} if ep.hf_token_env else {}
