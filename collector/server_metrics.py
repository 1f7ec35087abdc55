"""The serving engine's own view: scrape its Prometheus /metrics during a run into raw.telemetry_samples.

One mapping table (ENGINES) turns each engine's metric names (vLLM, SGLang, TGI, llama.cpp server, Triton) into
the same columns. Samples are taken once a second in a thread (queue depth, KV cache) and at each level's measured
window edges, when no request is in flight, so counters and histogram sums differ over exactly the measured requests.
"""

from __future__ import annotations

import logging
import math
import re
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from collector.clock import iso_utc
from collector.errors import EndpointError
from collector.schema import TelemetrySample

log = logging.getLogger(__name__)

SAMPLE_INTERVAL_S = 1.0
SCRAPE_TIMEOUT_S = 2.0
MAX_BODY_BYTES = 16 << 20  # a /metrics page with many models and buckets stays far below this

Boundary = Literal["measured_start", "measured_end"]


@dataclass(frozen=True)
class Sample:
    """One line of the text exposition: `name{labels} value`."""

    name: str
    labels: dict[str, str]
    value: float


_LINE = re.compile(r"^([A-Za-z_:][A-Za-z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+-?\d+)?\s*$")
_LABEL = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?')
_UNESCAPE = {"\\\\": "\\", '\\"': '"', "\\n": "\n"}


def _labels(text: str) -> dict[str, str] | None:
    out: dict[str, str] = {}
    pos = 0
    while pos < len(text):
        match = _LABEL.match(text, pos)
        if match is None:
            return None if text[pos:].strip() else out
        out[match.group(1)] = re.sub(r"\\[\\\"n]", lambda m: _UNESCAPE[m.group(0)], match.group(2))
        pos = match.end()
    return out


def parse(text: str) -> list[Sample]:
    """The samples of a Prometheus text exposition (format 0.0.4, which OpenMetrics' text is close to).

    Comments and lines that do not parse are skipped: a scrape never fails on one odd line.
    """
    out = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _LINE.match(line)
        if match is None:
            continue
        labels = _labels(match.group(2) or "")
        try:
            value = float(match.group(3))
        except ValueError:
            continue
        if labels is not None:
            out.append(Sample(match.group(1), labels, value))
    return out


@dataclass(frozen=True)
class Source:
    """Where one column comes from: a sample name, optional label values it must carry, and a unit scale."""

    metric: str
    where: tuple[tuple[str, str], ...] = ()
    scale: float = 1.0


# Our columns, each read from the first of its sources that the page has (several names across versions).
Column = Literal[
    "server_requests_running",
    "server_requests_waiting",
    "server_kv_cache_usage",
    "server_prompt_tokens_total",
    "server_generation_tokens_total",
    "server_ttft_sum_s",
    "server_ttft_count",
    "server_e2e_sum_s",
    "server_e2e_count",
    "server_queue_time_sum_s",
    "server_queue_time_count",
]
COLUMNS: tuple[Column, ...] = Column.__args__  # type: ignore[attr-defined]
# A fraction of a cache is not additive across models (a page serving several): the largest is kept.
_MAX_COLUMNS = frozenset({"server_kv_cache_usage"})


@dataclass(frozen=True)
class EngineMetrics:
    """One engine's metric names for our columns, the prefix that tells its page, and its model label."""

    name: str
    prefix: str
    model_label: str | None
    columns: dict[str, tuple[Source, ...]] = field(default_factory=dict)


def _histogram(name: str, scale: float = 1.0) -> tuple[tuple[Source, ...], tuple[Source, ...]]:
    return (Source(f"{name}_sum", scale=scale),), (Source(f"{name}_count"),)


def _latencies(ttft: str | None, e2e: str | None, queue: str | None) -> dict[str, tuple[Source, ...]]:
    out: dict[str, tuple[Source, ...]] = {}
    for stem, name in (("ttft", ttft), ("e2e", e2e), ("queue_time", queue)):
        if name is not None:
            out[f"server_{stem}_sum_s"], out[f"server_{stem}_count"] = _histogram(name)
    return out


# Names as each project documents them (pages read 2026-12): vLLM docs/design/metrics.md and
# vllm/v1/metrics/loggers.py; SGLang docs/references/production_metrics.md; TGI docs/source/reference/metrics.md;
# llama.cpp tools/server/README.md (GET /metrics, with --metrics); Triton docs/user_guide/metrics.md and
# tensorrtllm_backend's README (nv_trt_llm_*). Only vLLM's are exercised against a live server here (the simulator,
# which serves vLLM's names); the others are tested on fixture pages written from those documents.
ENGINES: tuple[EngineMetrics, ...] = (
    EngineMetrics(
        "vllm",
        "vllm:",
        "model_name",
        {
            "server_requests_running": (Source("vllm:num_requests_running"),),
            "server_requests_waiting": (Source("vllm:num_requests_waiting"),),
            # kv_cache_usage_perc since 0.10; gpu_cache_usage_perc before (a fraction despite the name)
            "server_kv_cache_usage": (Source("vllm:kv_cache_usage_perc"), Source("vllm:gpu_cache_usage_perc")),
            "server_prompt_tokens_total": (Source("vllm:prompt_tokens_total"),),
            "server_generation_tokens_total": (Source("vllm:generation_tokens_total"),),
            **_latencies(
                "vllm:time_to_first_token_seconds",
                "vllm:e2e_request_latency_seconds",
                "vllm:request_queue_time_seconds",
            ),
        },
    ),
    EngineMetrics(
        "sglang",
        "sglang:",
        "model_name",
        {
            "server_requests_running": (Source("sglang:num_running_reqs"),),
            "server_requests_waiting": (Source("sglang:num_queue_reqs"),),
            "server_kv_cache_usage": (Source("sglang:token_usage"),),  # KV pool tokens in use, fraction
            "server_prompt_tokens_total": (Source("sglang:prompt_tokens_total"),),
            "server_generation_tokens_total": (Source("sglang:generation_tokens_total"),),
            **_latencies(
                "sglang:time_to_first_token_seconds", "sglang:e2e_request_latency_seconds", "sglang:queue_time_seconds"
            ),
        },
    ),
    EngineMetrics(
        "tgi",
        "tgi_",
        None,
        {
            "server_requests_running": (Source("tgi_batch_current_size"),),
            "server_requests_waiting": (Source("tgi_queue_size"),),
            # TGI has no token counters: the sums of its per-request length histograms are the totals.
            "server_prompt_tokens_total": (Source("tgi_request_input_length_sum"),),
            "server_generation_tokens_total": (Source("tgi_request_generated_tokens_sum"),),
            **_latencies(None, "tgi_request_duration", "tgi_request_queue_duration"),
        },
    ),
    EngineMetrics(
        "llamacpp",
        "llamacpp:",
        None,
        {
            "server_requests_running": (Source("llamacpp:requests_processing"),),
            "server_requests_waiting": (Source("llamacpp:requests_deferred"),),
            "server_kv_cache_usage": (Source("llamacpp:kv_cache_usage_ratio"),),  # dropped by newer builds
            "server_prompt_tokens_total": (Source("llamacpp:prompt_tokens_total"),),
            "server_generation_tokens_total": (Source("llamacpp:tokens_predicted_total"),),
        },
    ),
    EngineMetrics(
        "triton",
        "nv_inference_",
        "model",
        {
            "server_requests_running": (Source("nv_trt_llm_request_metrics", (("request_type", "active"),)),),
            "server_requests_waiting": (
                Source("nv_trt_llm_request_metrics", (("request_type", "waiting"),)),
                Source("nv_inference_pending_request_count"),
            ),
            "server_kv_cache_usage": (
                Source("nv_trt_llm_kv_cache_block_metrics", (("kv_cache_block_type", "fraction"),)),
            ),
            "server_prompt_tokens_total": (Source("nv_llm_input_token_len_sum"),),
            "server_generation_tokens_total": (Source("nv_llm_output_token_len_sum"),),
            # Triton keeps cumulative microsecond counters per model rather than histograms; with the success
            # count they give the same means.
            "server_e2e_sum_s": (Source("nv_inference_request_duration_us", scale=1e-6),),
            "server_e2e_count": (Source("nv_inference_request_success"),),
            "server_queue_time_sum_s": (Source("nv_inference_queue_duration_us", scale=1e-6),),
            "server_queue_time_count": (Source("nv_inference_request_success"),),
        },
    ),
)
ENGINE_NAMES = tuple(engine.name for engine in ENGINES)


def detect(samples: list[Sample]) -> EngineMetrics | None:
    """The engine whose names the page carries (the first in ENGINES with a sample under its prefix)."""
    names = {s.name for s in samples}
    for engine in ENGINES:
        if any(name.startswith(engine.prefix) for name in names):
            return engine
    return None


def extract(engine: EngineMetrics, samples: list[Sample], served_model: str | None = None) -> dict[str, float]:
    """Our columns from one page: each the sum over its samples' label sets (the largest for a fraction), from the
    first source present. A metric that carries `served_model` under the engine's model label is read for that
    model only (another model on the same page is left out; Triton's ensemble counts, not its steps' again)."""
    by_name: dict[str, list[Sample]] = {}
    for s in samples:
        by_name.setdefault(s.name, []).append(s)
    label = engine.model_label
    if label is not None and served_model is not None:
        for name, group in by_name.items():
            mine = [s for s in group if s.labels.get(label) == served_model]
            if mine:
                by_name[name] = mine
    out: dict[str, float] = {}
    for column, sources in engine.columns.items():
        for source in sources:
            values = [
                s.value * source.scale
                for s in by_name.get(source.metric, [])
                if all(s.labels.get(k) == v for k, v in source.where) and math.isfinite(s.value)
            ]
            if values:
                out[column] = max(values) if column in _MAX_COLUMNS else sum(values)
                break
    return out


def metrics_url(setting: str, base_url: str) -> str:
    """The URL a `server_metrics` setting names: `auto` is /metrics at the endpoint's server root."""
    if setting != "auto":
        return setting
    root = base_url.rstrip("/").removesuffix("/v1")
    return root + "/metrics"


class ScrapeError(Exception):
    """The page could not be fetched or is no known engine's metrics."""


def fetch(url: str, headers: dict[str, str], timeout_s: float = SCRAPE_TIMEOUT_S) -> str:
    request = urllib.request.Request(url, headers={**headers, "Accept": "text/plain"})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            body: bytes = response.read(MAX_BODY_BYTES + 1)
    except urllib.error.HTTPError as exc:
        raise ScrapeError(f"HTTP {exc.code}") from exc
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ScrapeError(str(reason) or type(exc).__name__) from exc
    if len(body) > MAX_BODY_BYTES:
        raise ScrapeError(f"page longer than {MAX_BODY_BYTES} bytes")
    return body.decode("utf-8", errors="replace")


class ServerScraper:
    """Scrapes one experiment's engine: `sample` on demand (level edges), and once a second in a thread."""

    def __init__(
        self,
        url: str,
        engine: EngineMetrics,
        headers: dict[str, str],
        run_id: str,
        experiment_name: str,
        served_model: str | None,
        base_perf_ns: int,
        land: Callable[[TelemetrySample], None],
    ) -> None:
        self.url = url
        self.engine = engine
        self.headers = headers
        self.run_id = run_id
        self.experiment_name = experiment_name
        self.served_model = served_model
        self.base_perf_ns = base_perf_ns
        self.land = land
        self.hostname = socket.gethostname()
        self.failures = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def probe(
        cls,
        setting: str,
        base_url: str,
        where: str,
        headers: dict[str, str],
        run_id: str,
        experiment_name: str,
        served_model: str | None,
        base_perf_ns: int,
        land: Callable[[TelemetrySample], None],
        say: Callable[[str], None],
    ) -> ServerScraper | None:
        """The scraper for a `server_metrics` setting, or None: `off`; under `auto` a page that does not answer
        or is no known engine's (a note); an explicit URL that fails is an EndpointError naming the field."""
        if setting == "off":
            return None
        url = metrics_url(setting, base_url)
        try:
            engine = detect(parse(fetch(url, headers)))
            if engine is None:
                raise ScrapeError(f"no metrics of {', '.join(ENGINE_NAMES)}")
        except ScrapeError as exc:
            if setting == "auto":
                say(f"experiment {experiment_name}: no server metrics at {url} ({exc}); the server's view is skipped")
                return None
            raise EndpointError(f"{where}: {url} gave no engine metrics: {exc}") from exc
        say(f"experiment {experiment_name}: scraping {engine.name} metrics at {url}")
        return cls(url, engine, headers, run_id, experiment_name, served_model, base_perf_ns, land)

    def sample(self, boundary: Boundary | None = None) -> TelemetrySample | None:
        """Scrape once and land the row; None (counted, never raised) when the page did not answer."""
        perf_ns = time.perf_counter_ns()
        wall_ns = time.time_ns()
        try:
            values = extract(self.engine, parse(fetch(self.url, self.headers)), self.served_model)
        except ScrapeError as exc:
            if not self.failures:
                log.warning("server metrics scrape of %s failed (%s); scraping goes on", self.url, exc)
            self.failures += 1
            return None
        row = TelemetrySample(
            run_id=self.run_id,
            sampled_at=iso_utc(wall_ns),
            offset_ns=perf_ns - self.base_perf_ns,
            hostname=self.hostname,
            device="server",
            source=f"server:{self.engine.name}",
            experiment_name=self.experiment_name,
            level_boundary=boundary,
            **values,  # type: ignore[arg-type]
        )
        self.land(row)
        return row

    def _loop(self) -> None:
        next_at = time.monotonic()
        while not self._stop.is_set():
            self.sample()
            next_at += SAMPLE_INTERVAL_S
            if self._stop.wait(max(0.0, next_at - time.monotonic())):
                return

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="tokenbench-server-metrics", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
