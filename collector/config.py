"""Experiment configuration: YAML loaded into strict pydantic models (unknown keys are errors).

`load_config` is the only entry point; every error it raises is one line naming the file and field.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import yaml
from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from collector.aws.endpoint_config import BedrockEndpoint, SageMakerEndpoint
from collector.config_base import (  # noqa: F401 - re-exported: the names config users import from here
    API_STYLE_DOC,
    BUCKET_NAME_RE,
    MAX_CLIENT_PROCESSES,
    MAX_CONCURRENCY,
    MAX_CONFIG_BYTES,
    MAX_INSTANCES,
    MAX_PROMPTS,
    MAX_REPEATS_PER_LEVEL,
    MAX_REQUESTS_PER_LEVEL,
    MAX_SECONDS,
    MAX_TOKENS,
    NAME_RE,
    NAME_RULE,
    ApiStyle,
    SafeName,
    Strict,
    _finite,
)
from collector.errors import ConfigError
from collector.launch.settings import LaunchSettings
from collector.lengths import LengthDistribution
from collector.load_models import ClosedLoad, LoadModel, RateLoad
from collector.prepare.spec import PrepareSpec
from collector.settings import DEFAULT_PRICING_DIR, INSTANCE_PRICES_FILE, TOKEN_PRICES_FILE
from collector.sim.settings import SimEndpointSettings
from collector.stacks.endpoint_config import ContainerEndpoint, ProcessEndpoint


class SyntheticPayload(LengthDistribution):
    """Prompts generated from a seed (no download needed), their token lengths as sent drawn from a distribution."""

    # Widened from the output lengths' choices: only a prompt length can follow a real bucket's lengths.
    distribution: Literal["uniform", "fixed", "normal", "lengths_of"] = Field(  # type: ignore[assignment]
        default="uniform",
        description="Shape of the prompt lengths: uniform, fixed, normal, or lengths_of (the lengths of the prompts "
        "of the file bucket named by `lengths_of`, sampled with the seed).",
    )
    lengths_of: str | None = Field(
        default=None,
        description="With distribution: lengths_of, the name of a file bucket whose prompts' token counts the "
        "target lengths are drawn from.",
    )
    count: int = Field(default=50, ge=1, le=MAX_PROMPTS, description="How many distinct prompts to generate.")
    seed: int = Field(
        default=0, ge=0, lt=2**63, description="Seed of the generator; the same seed gives the same prompts."
    )
    prefix_tokens: int = Field(
        default=0,
        ge=0,
        le=MAX_TOKENS,
        description="Every prompt of the bucket starts with the same prefix of this many tokens (seeded), counted "
        "within its length: a prefix-cache workload.",
    )
    output_tokens: LengthDistribution | None = Field(
        default=None,
        description="Draw each prompt's own max_tokens from this distribution (uniform, fixed or normal, same keys); "
        "it replaces inference_parameters.max_tokens for that prompt. Unset: every prompt uses the experiment's.",
    )

    @model_validator(mode="after")
    def _prefix_fits(self) -> SyntheticPayload:
        shortest = self.shortest()
        if shortest is not None and self.prefix_tokens > shortest:
            raise ValueError(
                f"prefix_tokens ({self.prefix_tokens}) is longer than the shortest prompt ({shortest} tokens)"
            )
        return self


class PayloadBucket(Strict):
    """A named bucket of prompts: a JSONL file, or a synthetic generator."""

    name: SafeName = Field(
        description="Bucket name, recorded as payload_file (e.g. en_500-1000): letters, digits, '_', '.', '-', "
        "not starting with '.'."
    )
    file: Path | None = Field(
        default=None,
        description="JSONL file, one prompt per line: {'inputs': ...}, {'prompt': ...} or {'messages': [...]}. "
        "Relative paths are resolved against the config file's folder. With `prepare`, the file it writes.",
    )
    prepare: PrepareSpec | None = Field(
        default=None,
        description="Make `file` from a dataset (`collector prepare`; `collector run` does it when the file is "
        "missing or was prepared from other settings).",
    )
    synthetic: SyntheticPayload | None = Field(default=None, description="Generate prompts instead of reading a file.")

    @model_validator(mode="after")
    def _one_source(self) -> PayloadBucket:
        if (self.file is None) == (self.synthetic is None):
            raise ValueError("give exactly one of 'file' or 'synthetic'")
        if self.prepare is not None and self.file is None:
            raise ValueError("prepare needs 'file': the JSONL file it writes")
        return self


class InferenceParameters(Strict):
    """Sampling parameters sent with every request."""

    max_tokens: int = Field(default=100, ge=1, le=MAX_TOKENS, description="Most tokens to generate per request.")
    temperature: float = Field(default=0.1, ge=0, le=100, description="Sampling temperature.")
    top_p: float = Field(default=0.92, gt=0, le=1, description="Nucleus sampling mass.")
    ignore_eos: bool = Field(
        default=False, description="Ask the server to ignore end-of-sequence and always generate max_tokens (vLLM)."
    )
    min_tokens: int | None = Field(
        default=None,
        ge=1,
        le=MAX_TOKENS,
        description="Ask the server to generate at least this many tokens before it may stop (vLLM's min_tokens; "
        "sent by the OpenAI-compatible wire formats, completions and chat, only). A prompt whose own max_tokens "
        "is lower asks for that many instead.",
    )
    extra: dict[str, Any] = Field(
        default_factory=dict, description="Further fields merged into the request body as they are (e.g. top_k)."
    )

    @model_validator(mode="after")
    def _finite_extra(self) -> InferenceParameters:
        _finite(self.extra, "extra")
        if self.min_tokens is not None and self.min_tokens > self.max_tokens:
            raise ValueError(f"min_tokens ({self.min_tokens}) must not exceed max_tokens ({self.max_tokens})")
        return self


# The wire formats whose request carries min_tokens (collector/apis/openai.py); the others have no such field.
MIN_TOKENS_STYLES = frozenset({"completions", "chat"})

# Where each wire format's servers answer a health probe (OpenAI-compatible servers: the model list).
DEFAULT_HEALTH_PATHS = {
    "chat": "/models",
    "completions": "/models",
    "tgi": "/health",
    "djl": "/ping",
    "triton": "/v2/health/ready",
}


class OpenAIEndpoint(Strict):
    """Any OpenAI-compatible server (vLLM, SGLang, TGI, llama.cpp, a hosted API)."""

    type: Literal["openai"] = Field(description="Endpoint kind.")
    base_url: str = Field(description="Base URL up to and including /v1, e.g. http://127.0.0.1:8000/v1.")
    api_style: ApiStyle = Field(default="chat", description=API_STYLE_DOC)
    served_model_name: str = Field(description="The `model` field sent with each request.")
    stream: bool = Field(default=True, description="Stream responses (SSE); needed for TTFT and TPOT.")
    api_key_env: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="Name of the environment variable holding the API key (never the key itself).",
    )
    health_path: str | None = Field(
        default=None,
        pattern=r"^/\S*$",
        description="Path under base_url polled (GET, 2xx) before the sweep starts. Default by api_style: "
        + ", ".join(f"{path} ({style})" for style, path in DEFAULT_HEALTH_PATHS.items())
        + ".",
    )
    startup_timeout_s: float = Field(
        default=30, gt=0, le=MAX_SECONDS, description="How long to wait for the endpoint to be healthy."
    )

    @model_validator(mode="after")
    def _url(self) -> OpenAIEndpoint:
        if not re.match(r"^https?://[^/\s]+\S*$", self.base_url):
            raise ValueError(f"base_url {self.base_url!r} must start with http:// or https://")
        return self


class SimulatedEndpoint(Strict, SimEndpointSettings):
    """The built-in simulated GPU server, started on 127.0.0.1 for the run."""

    # The simulator's own keys are SimEndpointSettings' fields, declared once in collector/sim/settings.py.
    type: Literal["simulated"] = Field(description="Endpoint kind.")
    api_style: ApiStyle = Field(default="chat", description=API_STYLE_DOC)
    stream: bool = Field(default=True, description="Stream responses (SSE).")
    startup_timeout_s: float = Field(
        default=30, gt=0, le=MAX_SECONDS, description="How long to wait for the simulator to start."
    )


Endpoint = Annotated[
    OpenAIEndpoint | SimulatedEndpoint | ContainerEndpoint | ProcessEndpoint | BedrockEndpoint | SageMakerEndpoint,
    Field(discriminator="type"),
]
# Managed endpoint kinds: sent through boto3 (collector/aws), priced by token, model-unit-hour or ml. instance-hour.
MANAGED_ENDPOINT_TYPES = frozenset({"bedrock", "sagemaker"})


class InlinePrice(Strict):
    """An hourly price given in the config, for a server pricing/ does not list (local or on-premises)."""

    usd_per_hour: float = Field(ge=0, description="USD per hour of one instance (multiplied by instance_count).")


def telemetry_host(endpoint_type: str) -> str:
    """Whose host the run's telemetry describes: the collector samples the machine it runs on, which is the
    endpoint's host when tokenbench starts the endpoint there (simulated, process, container, and `collector
    launch`, whose collector runs on the GPU instance); a remote `type: openai` endpoint's host is not sampled."""
    return "collector" if endpoint_type in ("openai", "bedrock", "sagemaker") else "endpoint"


class Experiment(Strict):
    """One serving setup to sweep: a model on an endpoint, over concurrency levels and payload buckets."""

    name: SafeName = Field(
        description="Experiment name, unique within the config: letters, digits, '_', '.', '-', not starting "
        "with '.' (it names files)."
    )
    model_id: str = Field(description="Model id (e.g. meta-llama/Llama-3.1-8B-Instruct); the token-price key.")
    endpoint: Endpoint = Field(description="Where requests go.")
    instance_type: str | None = Field(
        default=None,
        description="Instance type serving the model (the hourly-price key in pricing/). Leave empty for "
        "token-priced APIs; it may be empty or unknown to pricing/ when `price` or `unpriced` is given.",
    )
    price: InlinePrice | None = Field(
        default=None,
        description="An hourly price given here instead of pricing/, e.g. {usd_per_hour: 3.2}, for a local or "
        "on-premises server; recorded in the run manifest with price source `config`.",
    )
    unpriced: bool = Field(
        default=False,
        description="Benchmark without any price: cost columns are null, the cost budget is not judged "
        "(verdicts and recommendations use latency and errors only), and the report says so.",
    )
    instance_count: int = Field(
        default=1, ge=1, le=MAX_INSTANCES, description="Number of instances behind the endpoint."
    )
    concurrency_levels: list[Annotated[int, Field(ge=1, le=MAX_CONCURRENCY)]] = Field(
        default_factory=list,
        description=f"Requests kept in flight, one closed-loop level at a time (1 to {MAX_CONCURRENCY:,}); "
        "needed unless `load` is a rate model.",
    )
    load: LoadModel = Field(
        default_factory=ClosedLoad,
        description="How levels send requests: {model: closed} (the default), {model: rate, rates_per_s: [...]} "
        "(open loop) or {model: sweep} (closed levels, then a ladder of rates up to their ceiling); see "
        "collector/load_models.py.",
    )
    requests_per_level: int = Field(
        ge=1, le=MAX_REQUESTS_PER_LEVEL, description="Measured requests per bucket and level."
    )
    warmup_requests_per_level: int = Field(
        default=1,
        ge=0,
        le=MAX_REQUESTS_PER_LEVEL,
        description="Extra requests sent first at each level, recorded with is_warmup = true.",
    )
    repeats_per_level: int = Field(
        default=1,
        ge=1,
        le=MAX_REPEATS_PER_LEVEL,
        description="Times each level runs, back to back (each with its warm-up); the marts pool the repeats' "
        "requests and give the spread of throughput and p95 latency across them.",
    )
    client_processes: int = Field(
        default=1,
        ge=1,
        le=MAX_CLIENT_PROCESSES,
        description="Client processes that send each level's load together, each with its own event loop and HTTP "
        "session (one Python process drives about 2-3k streamed requests/s): a closed loop's concurrency is split "
        "as evenly as possible across them, an open loop's schedule dealt round-robin. At most the smallest "
        "concurrency level (an open loop's max_in_flight); about one per CPU core the collector may use.",
    )
    payloads: list[str] = Field(min_length=1, description="Names of the payload buckets to send.")
    inference_parameters: InferenceParameters = Field(
        default_factory=InferenceParameters, description="Sampling parameters."
    )
    request_timeout_s: float = Field(
        default=120, gt=0, le=MAX_SECONDS, description="Time limit of one whole request (finite)."
    )
    tokenizer: str | None = Field(
        default=None,
        min_length=1,
        description="Tokenizer counting this experiment's prompts and replies (transformers): a folder (relative "
        "paths are resolved against the config file's folder) or a hub id. One that cannot be loaded is an error. "
        "Default: the model_id's tokenizer if it is in the local Hugging Face cache, else the built-in counter, "
        "recorded as 'simple-regex (fallback: <reason>)'.",
    )
    tokenizer_download: bool = Field(
        default=False,
        description="Allow downloading the tokenizer from the Hugging Face hub; by default it is loaded offline.",
    )
    server_metrics: str = Field(
        default="auto",
        description="The engine's own Prometheus metrics, scraped every second and at each level's measured-window "
        "edges into raw.telemetry_samples: auto (<server root>/metrics when it answers with vLLM, SGLang, TGI, "
        "llama.cpp or Triton metrics; else a note), off, or an http(s) URL (one that fails stops the run).",
    )

    @field_validator("server_metrics")
    @classmethod
    def _metrics_setting(cls, value: str) -> str:
        if value not in ("auto", "off") and not re.match(r"^https?://[^/\s]+", value):
            raise ValueError(f"must be auto, off or an http(s) URL, not {value!r}")
        return value

    @model_validator(mode="after")
    def _levels(self) -> Experiment:
        if len(set(self.concurrency_levels)) != len(self.concurrency_levels):
            raise ValueError("concurrency_levels has duplicates")
        if not self.concurrency_levels and self.load.model != "rate":
            raise ValueError(f"concurrency_levels: needed with load model {self.load.model} (give at least one)")
        if self.unpriced and self.price is not None:
            raise ValueError("give either price or unpriced: true, not both")
        _check_client_processes(self)
        _check_managed(self)
        style = getattr(self.endpoint, "api_style", None) or "chat"
        if self.inference_parameters.min_tokens is not None and style not in MIN_TOKENS_STYLES:
            raise ValueError(
                f"inference_parameters.min_tokens: api_style {style} has no such parameter (only completions and "
                "chat send it); pass the server's own name for it in inference_parameters.extra"
            )
        return self


def _check_client_processes(exp: Experiment) -> None:
    """Every client process needs at least one worker (a closed loop's) or slot (an open loop's) of every level,
    and the managed kinds send through boto3 threads in the collector's own process."""
    n = exp.client_processes
    if n == 1:
        return
    if exp.endpoint.type in MANAGED_ENDPOINT_TYPES:
        raise ValueError(
            f"client_processes: {n} is not supported for endpoint type {exp.endpoint.type} (its requests go through "
            "boto3 in the collector's own process); leave it at 1"
        )
    load = exp.load
    caps = [] if isinstance(load, ClosedLoad) else [("max_in_flight", load.max_in_flight)]
    if exp.concurrency_levels and not isinstance(load, RateLoad):
        caps.append(("smallest concurrency level", min(exp.concurrency_levels)))
    what, smallest = min(caps, key=lambda cap: cap[1])
    if n > smallest:
        raise ValueError(
            f"client_processes: {n} is more than the {what} ({smallest}); each process needs at least one "
            "request in flight"
        )


def _check_managed(exp: Experiment) -> None:
    """A Bedrock experiment is priced per token (no instance type) unless it runs on provisioned throughput, priced
    per model-unit-hour by a price row its instance_type names; a SageMaker one names its ml. instance type."""
    ep = exp.endpoint
    if isinstance(ep, BedrockEndpoint):
        if ep.is_provisioned and exp.instance_type is None and exp.price is None and not exp.unpriced:
            raise ValueError(
                "instance_type: a provisioned model is priced per model-unit-hour: name its price row in "
                "instance_prices.csv (e.g. bedrock-pt:meta.llama3-1-8b-instruct-v1:0:no-commitment) and give its "
                "model units as instance_count"
            )
        if not ep.is_provisioned and exp.instance_type is not None:
            raise ValueError(
                "instance_type: Bedrock on-demand is priced per token by model_id; leave instance_type empty "
                "(it names a price row only for a provisioned model ARN)"
            )
    elif isinstance(ep, SageMakerEndpoint) and not (exp.instance_type or "").startswith("ml."):
        raise ValueError(
            f"instance_type: a SageMaker endpoint runs on an ml. instance type (e.g. ml.g5.2xlarge), not "
            f"{exp.instance_type!r}"
        )


class Slo(Strict):
    """Service-level objectives a request must meet to count as good (goodput, as vLLM's --goodput and
    DistServe define it: every objective given, at once), and the share of good requests a level must reach."""

    ttft_s: float | None = Field(default=None, gt=0, description="Highest time to first token of a good request, s.")
    tpot_s: float | None = Field(
        default=None,
        gt=0,
        description="Highest time per output token of a good request, s (met by a one-token reply, which has none).",
    )
    e2e_s: float | None = Field(default=None, gt=0, description="Highest end-to-end latency of a good request, s.")
    attainment: float = Field(
        default=0.9,
        gt=0,
        le=1,
        description="Share of a level's measured requests that must be good for the level to meet its SLOs.",
    )

    @model_validator(mode="after")
    def _one_objective(self) -> Slo:
        if self.ttft_s is None and self.tpot_s is None and self.e2e_s is None:
            raise ValueError("give at least one of ttft_s, tpot_s, e2e_s")
        return self

    def settings(self) -> dict[str, float | None]:
        """As the warehouse records them (config.run_settings and the run manifest)."""
        return {
            "slo_ttft_s": self.ttft_s,
            "slo_tpot_s": self.tpot_s,
            "slo_e2e_s": self.e2e_s,
            "slo_attainment": self.attainment,
        }


NO_SLO: dict[str, float | None] = dict.fromkeys(("slo_ttft_s", "slo_tpot_s", "slo_e2e_s", "slo_attainment"))


class Report(Strict):
    """Budgets that decide which results pass, and the bucket the recommendation is for."""

    latency_budget_s: float = Field(gt=0, description="Highest acceptable p95 end-to-end latency, seconds.")
    cost_per_10k_txn_budget_usd: float = Field(gt=0, description="Highest acceptable cost of 10,000 requests, USD.")
    error_rate_budget: float = Field(default=0, ge=0, le=1, description="Highest acceptable error rate (fraction).")
    dataset_of_interest: str = Field(description="Payload bucket (or part of its name) to recommend for.")
    slo: Slo | None = Field(
        default=None,
        description="Objectives a request must meet to be good: goodput, SLO attainment and the price per good "
        "request come from them, a level must reach the attainment to meet every budget, and the best price "
        "performance is then the lowest cost per 10k good requests.",
    )

    def slo_settings(self) -> dict[str, float | None]:
        return self.slo.settings() if self.slo is not None else dict(NO_SLO)


class Config(Strict):
    """A tokenbench run: experiments, payload buckets, budgets and prices."""

    run_name: SafeName = Field(
        description="Name shared by the runs of this config (budgets are kept per run name): letters, digits, "
        "'_', '.', '-', not starting with '.'."
    )
    payloads: list[PayloadBucket] = Field(min_length=1, description="Payload buckets the experiments can use.")
    experiments: list[Experiment] = Field(min_length=1, description="Serving setups to benchmark, in order.")
    report: Report = Field(description="Budgets and dataset of interest.")
    pricing_dir: Path = Field(
        default=DEFAULT_PRICING_DIR,
        description=f"Folder with {INSTANCE_PRICES_FILE} and {TOKEN_PRICES_FILE}; a relative path is resolved "
        "against the config file's folder. Default: the project's pricing/.",
    )
    launch: LaunchSettings | None = Field(
        default=None,
        description="EC2 provisioning for `collector launch` (an instance per experiment); `collector run` ignores it.",
    )

    @model_validator(mode="after")
    def _references(self) -> Config:
        buckets = [b.name for b in self.payloads]
        if len(set(buckets)) != len(buckets):
            raise ValueError("payloads: bucket names must be unique")
        names = [e.name for e in self.experiments]
        if len(set(names)) != len(names):
            raise ValueError("experiments: names must be unique")
        for i, bucket in enumerate(self.payloads):
            source = bucket.synthetic.lengths_of if bucket.synthetic is not None else None
            if source is None:
                continue
            named = next((b for b in self.payloads if b.name == source), None)
            if named is None:
                raise ValueError(
                    f"payloads[{i}].synthetic.lengths_of: unknown bucket {source!r} (known: {', '.join(buckets)})"
                )
            if named.file is None:
                raise ValueError(f"payloads[{i}].synthetic.lengths_of: bucket {source!r} is not a file bucket")
        for i, exp in enumerate(self.experiments):
            for p in exp.payloads:
                if p not in buckets:
                    raise ValueError(f"experiments[{i}].payloads: unknown bucket {p!r} (known: {', '.join(buckets)})")
        if not any(self.report.dataset_of_interest in b for b in buckets):
            raise ValueError(
                f"report.dataset_of_interest: {self.report.dataset_of_interest!r} matches no payload bucket"
            )
        return self


def _format_location(loc: tuple[Any, ...]) -> str:
    out = ""
    for i, part in enumerate(loc):
        if isinstance(part, int):
            out += f"[{part}]"
        elif i and any(part == _tag(m) for m in _models_in(_annotation_at(loc[:i]))):
            continue  # a tagged union's branch (the endpoint's type, the load's model), not a key
        else:
            out += f".{part}" if out else str(part)
    return out


def _annotation_at(loc: tuple[Any, ...]) -> Any:
    """The annotation of the value at `loc` (None where the path leaves the models)."""
    current: Any = Config
    for part in loc:
        if isinstance(part, int):
            continue
        models = _models_in(current)
        tagged = [m for m in models if part == _tag(m)]
        if tagged:
            current = tagged[0]
            continue
        owner = next((m for m in models if part in m.model_fields), None)
        if owner is None:
            return None
        current = owner.model_fields[part].annotation
    return current


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The config model holding the key at `loc` (the last part), following fields, lists and the endpoint
    union (whose branch pydantic names by its `type` tag); None where the path leaves the models."""
    models = _models_in(_annotation_at(loc[:-1]))
    return models[0] if len(models) == 1 else None


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models an annotation can hold (through lists, optionals, unions and Annotated)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in get_args(annotation) for m in _models_in(arg)]


def _tag(model: type[BaseModel]) -> str | None:
    """The tag naming a model in its union: its `type` (endpoints) or `model` (load models) literal."""
    for name in ("type", "model"):
        field = model.model_fields.get(name)
        args = get_args(field.annotation) if field is not None else ()
        if len(args) == 1:
            return str(args[0])
    return None


def _unknown_key(loc: tuple[Any, ...]) -> str:
    """`unknown key`, with the closest known key of that model when one is close (a typo)."""
    model = _model_at(loc)
    if model is None or not isinstance(loc[-1], str):
        return "unknown key"
    close = difflib.get_close_matches(loc[-1], list(model.model_fields), n=1, cutoff=0.6)
    return f"unknown key (did you mean {close[0]!r}?)" if close else "unknown key"


def _one_line(path: Path, exc: ValidationError) -> str:
    errors = exc.errors()
    # A mistyped key is the cause of the "required field is missing" error beside it: name the key first.
    err = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    where = _format_location(err["loc"])
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        msg = _unknown_key(tuple(err["loc"]))
    elif err["type"] == "missing":
        msg = "required field is missing"
    more = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
    return f"{path}: {where}: {msg}{more}" if where else f"{path}: {msg}{more}"


def load_config(path: Path | str) -> Config:
    """Read, validate and resolve a config file; raise ConfigError with one line on any fault."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    text = read_text(path, "config file", MAX_CONFIG_BYTES)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{path}:{where}: not valid YAML ({problem})") from exc
    except RecursionError as exc:
        raise ConfigError(f"{path}: not valid YAML (nested too deeply)") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of settings at the top level")
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_one_line(path, exc)) from exc
    from collector.pricing import check_prices  # pricing imports this module

    config = _resolve_files(config, path)
    check_prices(config, path)
    check_simulated(config, path)
    check_payload_files(config, path)
    return config


def read_text(path: Path, what: str, max_bytes: int) -> str:
    """A text file's content; binary, non-UTF-8 or oversized files are one-line errors naming the byte."""
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise ConfigError(f"{path}: {what} is {size:,} bytes, more than {max_bytes:,}: not a {what}?")
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the {what}: {exc.strerror or exc}") from exc
    nul = raw.find(b"\x00")
    if nul >= 0:
        raise ConfigError(f"{path}: binary file (NUL byte at offset {nul}), not a {what}")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ConfigError(f"{path}: line {line}: not UTF-8 text (byte {exc.start}: {raw[exc.start]:#04x})") from exc


def check_payload_files(config: Config, path: Path) -> None:
    """Parse every payload file now, so a bad one fails before any run folder exists."""
    from collector.payloads import check_jsonl  # payloads imports this module

    for i, bucket in enumerate(config.payloads):
        if bucket.file is not None and bucket.prepare is None:  # a prepared file is checked when it is read
            try:
                check_jsonl(bucket.file)
            except ConfigError as exc:
                raise ConfigError(f"{path}: payloads[{i}].file: {exc}") from exc


def _resolve_files(config: Config, path: Path) -> Config:
    """Make payload and pricing paths absolute (relative to the config's folder); payload files must exist."""
    buckets = []
    for i, bucket in enumerate(config.payloads):
        if bucket.file is not None:
            file = bucket.file if bucket.file.is_absolute() else (path.parent / bucket.file)
            if bucket.prepare is None and not file.is_file():
                raise ConfigError(f"{path}: payloads[{i}].file: file not found: {file}")
            bucket = bucket.model_copy(update={"file": file.resolve()})
        if bucket.prepare is not None:
            bucket = bucket.model_copy(update={"prepare": _resolve_prepare(bucket.prepare, path, f"payloads[{i}]")})
        buckets.append(bucket)
    experiments = []
    for i, exp in enumerate(config.experiments):
        tokenizer = _resolve_tokenizer(exp.tokenizer, path, f"experiments[{i}].tokenizer")
        experiments.append(exp.model_copy(update={"tokenizer": tokenizer}))
    pricing = config.pricing_dir if config.pricing_dir.is_absolute() else (path.parent / config.pricing_dir)
    return config.model_copy(update={"payloads": buckets, "experiments": experiments, "pricing_dir": pricing.resolve()})


def _resolve_tokenizer(tokenizer: str | None, path: Path, where: str) -> str | None:
    """A tokenizer folder made absolute (relative to the config's folder); a hub id as it is."""
    if tokenizer is None or not _is_path(tokenizer, path.parent):
        return tokenizer
    folder = (path.parent / Path(tokenizer).expanduser()).resolve()
    if not folder.is_dir():
        raise ConfigError(f"{path}: {where}: tokenizer folder not found: {folder}")
    return str(folder)


def _resolve_prepare(spec: PrepareSpec, path: Path, where: str) -> PrepareSpec:
    """Local dataset files made absolute and checked to exist; `hf:` sources kept as they are."""
    sources = []
    for j, source in enumerate(spec.source):
        if not source.startswith("hf:"):
            file = (path.parent / Path(source).expanduser()).resolve()
            if not file.is_file():
                raise ConfigError(f"{path}: {where}.prepare.source[{j}]: dataset file not found: {file}")
            source = str(file)
        sources.append(source)
    tokenizer = _resolve_tokenizer(spec.tokenizer, path, f"{where}.prepare.tokenizer")
    return spec.model_copy(update={"source": sources, "tokenizer": tokenizer})


def _is_path(value: str, base: Path) -> bool:
    """A tokenizer given as a folder, not a hub id: it starts like a path, or names a folder that exists."""
    return value.startswith((".", "/", "~")) or (base / value).is_dir()


def check_simulated(config: Config, path: Path) -> None:
    """A simulated endpoint must name hardware and a model the simulator has profiles for."""
    from collector.sim.profiles import resolve_hardware

    for i, exp in enumerate(config.experiments):
        if not isinstance(exp.endpoint, SimulatedEndpoint):
            continue
        if exp.instance_type is None:
            raise ConfigError(f"{path}: experiments[{i}].instance_type: a simulated endpoint needs an instance type")
        try:
            resolve_hardware(exp.instance_type, exp.endpoint.model)
        except ConfigError as exc:
            field = {"unknown instance type": ".instance_type", "unknown model": ".endpoint.model"}
            where = next((f for prefix, f in field.items() if str(exc).startswith(prefix)), "")
            raise ConfigError(f"{path}: experiments[{i}]{where}: simulator: {exc}") from exc


def redacted_dump(config: Config) -> dict[str, Any]:
    """The resolved config as plain data; it holds env var *names* only, never secret values."""
    return config.model_dump(mode="json")
