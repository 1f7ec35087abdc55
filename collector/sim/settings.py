"""Settings of one simulated LLM server: which hardware and model it imitates and how it schedules."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class SimSettings(BaseModel):
    """Everything the simulator needs; `None` on an override means "use the profile's calibrated default"."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    instance_type: str = Field(
        default="g5.4xlarge", description="EC2 instance type to imitate, a key of profiles/instances.yml."
    )
    model: str = Field(
        default="llama-3.1-8b",
        description="Model to imitate: a key of profiles/models.yml or its Hugging Face id.",
    )
    served_model_name: str | None = Field(
        default=None,
        description="Name clients must send as `model`; None serves the profile's Hugging Face model id.",
    )
    mean_output_tokens: float = Field(
        default=40.0,
        gt=0,
        description=(
            "Mean natural completion length, tokens: each request's end-of-sequence point is drawn from a "
            "geometric distribution with this mean (seeded), then capped by max_tokens."
        ),
    )
    seed: int = Field(default=0, description="Seed of the per-request random draws (lengths and words).")
    speedup: float = Field(
        default=1.0,
        ge=1.0,
        description="Every modeled duration is divided by this in real time; only for fast tests.",
    )
    tensor_parallel: int | None = Field(
        default=None, ge=1, description="GPUs to shard the model over; None uses all GPUs of the instance."
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
