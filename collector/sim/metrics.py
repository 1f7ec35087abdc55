"""The simulator's Prometheus metrics under vLLM's names: scheduler gauges, token counters and the request
latency histograms, kept by the real-time engine as it runs, so a scraper sees what it would see on vLLM.

Counters count exactly what the engine produced: every prompt prefilled and every token generated (a request a
client abandons still counts what was generated for it, as on vLLM), so over a window with no request in flight
they equal the sums of the usage the server reported.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field

# vLLM's buckets (vllm/v1/metrics/loggers.py) for TTFT and for request-level latencies.
TTFT_BUCKETS_S = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
REQUEST_LATENCY_BUCKETS_S = (0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0)


@dataclass
class Histogram:
    """A cumulative Prometheus histogram: per-bucket counts, sum and count."""

    bounds: tuple[float, ...]
    counts: list[int] = field(default_factory=list)
    total: float = 0.0
    count: int = 0

    def __post_init__(self) -> None:
        self.counts = [0] * len(self.bounds)

    def observe(self, value: float) -> None:
        index = bisect.bisect_left(self.bounds, value)
        if index < len(self.counts):
            self.counts[index] += 1
        self.total += value
        self.count += 1

    def lines(self, name: str, label: str) -> list[str]:
        out = []
        cumulative = 0
        for bound, n in zip(self.bounds, self.counts, strict=True):
            cumulative += n
            out.append(f'{name}_bucket{{le="{bound}",{label}}} {cumulative}')
        out.append(f'{name}_bucket{{le="+Inf",{label}}} {self.count}')
        out += [f"{name}_sum{{{label}}} {self.total!r}", f"{name}_count{{{label}}} {self.count}"]
        return out


@dataclass
class SimMetrics:
    """Counters and histograms since the server started (gauges are read from the engine when scraped)."""

    prompt_tokens: int = 0
    generation_tokens: int = 0
    request_success: int = 0
    ttft: Histogram = field(default_factory=lambda: Histogram(TTFT_BUCKETS_S))
    e2e: Histogram = field(default_factory=lambda: Histogram(REQUEST_LATENCY_BUCKETS_S))
    queue: Histogram = field(default_factory=lambda: Histogram(REQUEST_LATENCY_BUCKETS_S))


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def exposition(metrics: SimMetrics, model_name: str, running: int, waiting: int, kv_usage: float) -> str:
    """The Prometheus text exposition (format 0.0.4) of the simulator's state, labelled with `model_name`."""
    label = f'model_name="{_escape(model_name)}"'
    lines: list[str] = []

    def family(name: str, kind: str, help_text: str, samples: list[str]) -> None:
        lines.extend([f"# HELP {name} {help_text}", f"# TYPE {name} {kind}", *samples])

    def one(name: str, value: float) -> list[str]:
        return [f"{name}{{{label}}} {value if math.isfinite(value) else 0}"]

    family(
        "vllm:num_requests_running",
        "gauge",
        "Number of requests in model execution batches.",
        one("vllm:num_requests_running", running),
    )
    family(
        "vllm:num_requests_waiting",
        "gauge",
        "Number of requests waiting to be processed.",
        one("vllm:num_requests_waiting", waiting),
    )
    family(
        "vllm:kv_cache_usage_perc",
        "gauge",
        "KV-cache usage. 1 means 100 percent usage.",
        one("vllm:kv_cache_usage_perc", kv_usage),
    )
    # The name before vLLM 0.10, still served by many deployments; the same value.
    family(
        "vllm:gpu_cache_usage_perc",
        "gauge",
        "GPU KV-cache usage. 1 means 100 percent usage.",
        one("vllm:gpu_cache_usage_perc", kv_usage),
    )
    family(
        "vllm:prompt_tokens_total",
        "counter",
        "Number of prefill tokens processed.",
        one("vllm:prompt_tokens_total", metrics.prompt_tokens),
    )
    family(
        "vllm:generation_tokens_total",
        "counter",
        "Number of generation tokens processed.",
        one("vllm:generation_tokens_total", metrics.generation_tokens),
    )
    family(
        "vllm:request_success_total",
        "counter",
        "Count of successfully processed requests.",
        [f'vllm:request_success_total{{finished_reason="any",{label}}} {metrics.request_success}'],
    )
    family(
        "vllm:time_to_first_token_seconds",
        "histogram",
        "Histogram of time to first token in seconds.",
        metrics.ttft.lines("vllm:time_to_first_token_seconds", label),
    )
    family(
        "vllm:e2e_request_latency_seconds",
        "histogram",
        "Histogram of e2e request latency in seconds.",
        metrics.e2e.lines("vllm:e2e_request_latency_seconds", label),
    )
    family(
        "vllm:request_queue_time_seconds",
        "histogram",
        "Histogram of time spent in WAITING phase for request.",
        metrics.queue.lines("vllm:request_queue_time_seconds", label),
    )
    return "\n".join(lines) + "\n"
