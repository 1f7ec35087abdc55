"""Hardware and model profiles for the simulator: reviewed YAML data in `profiles/`, resolved into one
`ServerProfile` (the GPUs a server runs on, the model it serves, and the default efficiencies)."""

from __future__ import annotations

import difflib
import functools
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from collector.errors import ConfigError

PROFILES_DIR = Path(__file__).parent / "profiles"

_DTYPE_BYTES = {"bf16": 2, "fp16": 2}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GpuSpec(_Strict):
    """One GPU model's datasheet figures (per GPU)."""

    memory_gb: float = Field(gt=0, description="Memory per GPU, decimal GB (1e9 bytes).")
    bf16_dense_tflops: float = Field(gt=0, description="Peak dense BF16 tensor throughput per GPU, TFLOP/s.")
    memory_bandwidth_gb_per_s: float = Field(gt=0, description="Peak memory bandwidth per GPU, GB/s.")
    source: str = Field(min_length=1, description="Datasheet the figures were read from.")
    note: str | None = Field(default=None, description="Caveats about the figures.")


class EngineDefaults(_Strict):
    """Calibrated efficiencies and overheads used when the settings do not override them."""

    prefill_efficiency: float = Field(gt=0, le=1, description="Fraction of peak FLOP/s a prefill achieves.")
    decode_efficiency: float = Field(gt=0, le=1, description="Fraction of peak bandwidth a decode step achieves.")
    step_overhead_s: float = Field(ge=0, description="Fixed cost of every engine step, seconds.")
    request_overhead_s: float = Field(ge=0, description="Fixed cost per admitted request, seconds.")
    source: str = Field(min_length=1, description="Reference measurement the numbers were calibrated against.")


class InstanceSpec(_Strict):
    """One cloud instance type: which GPU and how many."""

    gpu: str = Field(description="Key into gpus.yml.")
    gpu_count: int = Field(ge=1, description="Number of GPUs on the instance.")
    source: str = Field(min_length=1, description="Instance-type page the row was read from.")


class ModelSpec(_Strict):
    """One model's architecture, as far as the cost model needs it."""

    model_id: str = Field(min_length=1, description="Hugging Face repository id.")
    parameters: float = Field(gt=0, description="Total parameter count.")
    num_layers: int = Field(ge=1, description="Transformer layers.")
    num_kv_heads: int = Field(ge=1, description="Key/value heads per layer.")
    head_dim: int = Field(ge=1, description="Dimension of one attention head.")
    num_attention_heads: int = Field(ge=1, description="Query heads per layer.")
    dtype: Literal["bf16", "fp16"] = Field(description="Weight and KV-cache dtype.")
    max_position_embeddings: int = Field(ge=1, description="Longest context the model accepts, tokens.")
    source: str = Field(min_length=1, description="config.json the row was read from.")

    @property
    def dtype_bytes(self) -> int:
        return _DTYPE_BYTES[self.dtype]

    @property
    def weight_bytes(self) -> float:
        return self.parameters * self.dtype_bytes

    @property
    def kv_bytes_per_token(self) -> int:
        """Bytes of KV cache one token occupies: K and V, for every layer and KV head."""
        return 2 * self.num_layers * self.num_kv_heads * self.head_dim * self.dtype_bytes


class _GpuFile(_Strict):
    defaults: EngineDefaults
    gpus: dict[str, GpuSpec]


class _InstanceFile(_Strict):
    instances: dict[str, InstanceSpec]


class _ModelFile(_Strict):
    models: dict[str, ModelSpec]


class ServerProfile(_Strict):
    """A model served on `tensor_parallel` GPUs of one instance; totals are aggregated over those GPUs."""

    instance_type: str = Field(description="Instance type key, e.g. g5.4xlarge.")
    gpu_name: str = Field(description="GPU key, e.g. A10G.")
    gpu: GpuSpec = Field(description="Per-GPU datasheet figures.")
    gpu_count: int = Field(ge=1, description="GPUs on the instance.")
    tensor_parallel: int = Field(ge=1, description="GPUs the server shards the model over.")
    model_key: str = Field(description="Model key in models.yml, e.g. llama-3.1-8b.")
    model: ModelSpec = Field(description="Model architecture.")
    defaults: EngineDefaults = Field(description="Calibrated efficiencies and overheads.")

    @property
    def memory_bytes(self) -> float:
        return self.gpu.memory_gb * 1e9 * self.tensor_parallel

    @property
    def peak_flops(self) -> float:
        return self.gpu.bf16_dense_tflops * 1e12 * self.tensor_parallel

    @property
    def memory_bandwidth_bytes_per_s(self) -> float:
        return self.gpu.memory_bandwidth_gb_per_s * 1e9 * self.tensor_parallel

    def describe(self) -> str:
        return (
            f"{self.model.model_id} on {self.instance_type} "
            f"({self.tensor_parallel} x {self.gpu_name}, {self.memory_bytes / 1e9:.0f} GB)"
        )


def _load(name: str, model: type[_Strict]) -> Any:
    path = PROFILES_DIR / name
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read profile data: {exc}".replace("\n", " ")) from exc
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise ConfigError(f"{path}: {where}: {first['msg']}") from exc


@functools.cache
def _catalog() -> tuple[_GpuFile, _InstanceFile, _ModelFile]:
    gpus = _load("gpus.yml", _GpuFile)
    instances = _load("instances.yml", _InstanceFile)
    models = _load("models.yml", _ModelFile)
    for name, instance in instances.instances.items():
        if instance.gpu not in gpus.gpus:
            raise ConfigError(f"{PROFILES_DIR / 'instances.yml'}: {name} names unknown GPU {instance.gpu!r}")
    return gpus, instances, models


def known_instance_types() -> list[str]:
    """Instance types the simulator has a profile for, in file order."""
    return list(_catalog()[1].instances)


def known_models() -> list[str]:
    """Model keys the simulator has a profile for, in file order."""
    return list(_catalog()[2].models)


def _unknown(kind: str, name: str, known: list[str]) -> ConfigError:
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.8)
    shown = close or known[:6]
    label = "did you mean" if close else "known ones include"
    more = "" if close or len(known) <= len(shown) else f" (and {len(known) - len(shown)} more)"
    return ConfigError(f"unknown {kind} {name!r}; {label}: {', '.join(shown)}{more}")


def _lookup_model(model: str, models: dict[str, ModelSpec]) -> tuple[str, ModelSpec]:
    wanted = model.strip().lower()
    for key, spec in models.items():
        if wanted in (key.lower(), spec.model_id.lower()):
            return key, spec
    raise _unknown("model", model, list(models))


def resolve_hardware(instance_type: str, model: str, tensor_parallel: int | None = None) -> ServerProfile:
    """Resolve an instance type and a model (key or Hugging Face id) into a `ServerProfile`.

    `tensor_parallel` defaults to all GPUs of the instance. Raises `ConfigError` for an unknown name,
    an impossible tensor-parallel degree, or weights that do not fit the GPUs' memory.
    """
    gpus, instances, models = _catalog()
    key = instance_type.strip().lower()
    key = key.removeprefix("ml.")  # SageMaker spells the same hardware "ml.g5.4xlarge"
    if key not in instances.instances:
        raise _unknown("instance type", instance_type, list(instances.instances))
    instance = instances.instances[key]
    model_key, model_spec = _lookup_model(model, models.models)

    tp = instance.gpu_count if tensor_parallel is None else tensor_parallel
    if not 1 <= tp <= instance.gpu_count:
        raise ConfigError(
            f"tensor_parallel {tp} is not possible on {key}: it has {instance.gpu_count} x {instance.gpu}"
        )
    if model_spec.num_attention_heads % tp:
        raise ConfigError(
            f"tensor_parallel {tp} does not divide the {model_spec.num_attention_heads} attention heads "
            f"of model {model_key}"
        )

    gpu = gpus.gpus[instance.gpu]
    available_gb = gpu.memory_gb * tp
    weights_gb = model_spec.weight_bytes / 1e9
    if weights_gb >= available_gb:
        where = f"{key} has {tp} x {instance.gpu} with {available_gb:.0f} GB"
        if tp < instance.gpu_count:
            where = f"{key} with tensor_parallel {tp} gives {tp} x {instance.gpu} with {available_gb:.0f} GB"
        raise ConfigError(f"model {model_key} needs {weights_gb:.0f} GB of weights; {where}")

    return ServerProfile(
        instance_type=key,
        gpu_name=instance.gpu,
        gpu=gpu,
        gpu_count=instance.gpu_count,
        tensor_parallel=tp,
        model_key=model_key,
        model=model_spec,
        defaults=gpus.defaults,
    )
