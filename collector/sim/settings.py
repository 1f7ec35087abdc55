"""Settings of one simulated LLM server: which hardware and model it imitates and how it schedules.

Declared once, here: a config's `type: simulated` endpoint keys, the `sim` command's options and the command line
that spawns a simulator are all derived from these fields (names, defaults, descriptions, bounds)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from collector.config_base import MAX_TOKENS


class SimEndpointSettings(BaseModel):
    """The simulator settings a config's `type: simulated` endpoint takes as keys of its own; the experiment gives
    the others (its instance_type, and its model_id as the served model name)."""

    # allow_inf_nan=False, as in every config model: `.inf` is an error, not a simulator that never answers.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    model: str = Field(
        default="llama-3.1-8b",
        description="Model to imitate: a key of collector/sim/profiles/models.yml or its Hugging Face id.",
    )
    mean_output_tokens: float = Field(
        default=40.0,
        gt=0,
        le=MAX_TOKENS,
        description=(
            "Mean natural completion length, tokens: each request's end-of-sequence point is drawn from a "
            "geometric distribution with this mean (seeded), then capped by max_tokens."
        ),
    )
    seed: int = Field(
        default=0, ge=0, lt=2**63, description="Seed of the per-request random draws (lengths and words)."
    )
    speedup: float = Field(
        default=1.0,
        ge=1.0,
        le=1e6,
        description="Every modeled duration is divided by this in real time; only for fast tests.",
    )


class SimSettings(SimEndpointSettings):
    """Everything the simulator needs; `None` on an override means "use the profile's calibrated default"."""

    instance_type: str = Field(
        default="g5.4xlarge", description="EC2 instance type to imitate, a key of collector/sim/profiles/instances.yml."
    )
    served_model_name: str | None = Field(
        default=None,
        description="Name clients must send as `model`; unset, the profile's Hugging Face model id.",
    )
    tensor_parallel: int | None = Field(
        default=None, ge=1, description="GPUs to shard the model over; unset, all GPUs of the instance."
    )
    prefill_efficiency: float | None = Field(
        default=None, gt=0, le=1, description="Fraction of peak BF16 FLOP/s a prefill achieves (override)."
    )
    decode_efficiency: float | None = Field(
        default=None, gt=0, le=1, description="Fraction of peak memory bandwidth a decode step achieves (override)."
    )
    step_overhead_s: float | None = Field(
        default=None, ge=0, description="Fixed cost of every engine step, seconds (override)."
    )
    request_overhead_s: float | None = Field(
        default=None, ge=0, description="Fixed cost per admitted request, paid in its prefill step, seconds (override)."
    )
    gpu_memory_utilization: float = Field(
        default=0.9,
        gt=0,
        le=1,
        description="Fraction of GPU memory the server may use; what the weights leave of it holds the KV cache.",
    )
    max_num_seqs: int = Field(default=256, ge=1, description="Most sequences running in one batch.")
    max_num_batched_tokens: int = Field(
        default=8192,
        ge=1,
        description="Most prompt tokens one prefill step takes (one longer prompt still runs alone).",
    )


# The settings `python -m collector sim` takes as options, in the order its help lists them; the others keep
# their defaults in a simulator started from the command line.
CLI_SETTINGS = (
    "instance_type",
    "model",
    "served_model_name",
    "mean_output_tokens",
    "seed",
    "speedup",
    "tensor_parallel",
)


def option(name: str) -> str:
    """The `sim` option of a setting: --instance-type for instance_type."""
    return "--" + name.replace("_", "-")


def command_args(settings: SimSettings) -> list[str]:
    """The `sim` options that start a server with exactly these settings (a setting left at None is not given).

    Each is written `--option=value`, so that a value starting with '-' cannot be read as an option.
    """
    lost = [
        name
        for name, field in SimSettings.model_fields.items()
        if name not in CLI_SETTINGS and getattr(settings, name) != field.default
    ]
    if lost:
        raise ValueError(f"the sim command has no option for {', '.join(lost)}")
    return [f"{option(name)}={value}" for name in CLI_SETTINGS if (value := getattr(settings, name)) is not None]
