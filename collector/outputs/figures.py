"""Every figure the outputs show, defined once: the mart column it reads, its label and unit, how it is scaled
for display, and the one precision rule the app, the report and the terminal summary all apply.

The rule itself is in `precision` (pandas-free, so the collector's live progress line uses it too); a share
(error rate) is shown as a percentage by it, TTFT and TPOT in milliseconds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any, Literal

import pandas as pd

from collector.outputs.precision import NO_VALUE, missing, plain, rounded, rounded_usd

Kind = Literal["measure", "count", "usd", "share"]


@dataclass(frozen=True)
class Figure:
    """One figure: `column` of a mart, shown as `label` in `unit` after multiplying by `scale`."""

    column: str
    label: str
    unit: str = ""
    scale: float = 1.0
    kind: Kind = "measure"
    help: str = ""

    @property
    def header(self) -> str:
        """The column header and axis title: `TTFT p50 (ms)`, `Cost per 10k transactions ($)`."""
        unit = "$" if self.kind == "usd" else self.unit
        return f"{self.label} ({unit})" if unit else self.label

    def value(self, raw: Any) -> float | int | None:
        """The number shown (scaled and rounded; a count as an int), so tables stay numeric and sortable."""
        if missing(raw):
            return None
        if self.kind == "count":
            return round(float(raw))
        if self.kind == "usd":
            return rounded_usd(float(raw) * self.scale)
        return rounded(float(raw) * self.scale)

    def text(self, raw: Any) -> str:
        """The figure as text, with its unit where a header does not carry it."""
        v = self.value(raw)
        if v is None:
            return NO_VALUE
        if self.kind == "count":
            return f"{int(v):,}"
        if self.kind == "usd":
            amount = f"{abs(v):,.2f}" if abs(v) >= 1 or v == 0 else plain(abs(v))
            return f"-${amount}" if v < 0 else f"${amount}"
        return plain(v)

    def shown_text(self, shown: Any) -> str:
        """A value already scaled for display (a display frame's cell) as text by the rule."""
        return replace(self, scale=1.0).text(shown)

    def with_unit(self, raw: Any) -> str:
        """The figure as text with its unit, for sentences and the Information | Value tables: `35.2 ms`."""
        text = self.text(raw)
        if text == NO_VALUE or self.kind == "usd" or not self.unit:
            return text
        return f"{text}{self.unit}" if self.unit == "%" else f"{text} {self.unit}"

    @property
    def app_format(self) -> str:
        """A printf format for Streamlit's NumberColumn over `value()`s (already rounded, so %g shows them)."""
        if self.kind == "count":
            return "%d"
        return "$%g" if self.kind == "usd" else "%g"


def _percentiles(prefix: str, label: str, unit: str, scale: float, help: str) -> list[Figure]:
    return [Figure(f"{prefix}_{p}", f"{label} {p}", unit, scale, help=help) for p in ("p50", "p95", "p99")]


LATENCY_HELP = "End-to-end latency of the successful requests: request sent to last byte received."
TTFT_HELP = "Time to first token of the successful streamed requests: request sent to first content."
TPOT_HELP = "Time per output token after the first, per request: (latency - TTFT) / (output tokens - 1)."
FIRST_EVENT_HELP = "Time to the first streamed event of any kind (vLLM's TTFT; on chat often an empty role chunk)."
ITL_HELP = "Inter-token latency: every gap between consecutive content chunks of the level, pooled (vLLM's ITL)."

FIGURES: tuple[Figure, ...] = (
    # A level's identity and counts (fct_concurrency_metrics).
    Figure("concurrency", "Concurrency", kind="count", help="Requests kept in flight (an open loop's cap on them)."),
    Figure("target_rate_rps", "Target rate", "req/s", help="An open-loop level's target request rate."),
    Figure("offered_request_rate", "Offered rate", "req/s", help="The rate the open-loop schedule offered, as drawn."),
    Figure("send_lag_p99", "Send lag p99", "ms", 1000, help="How late the client sent against its schedule (p99)."),
    Figure("first_third_ttft_p50", "TTFT p50, first third", "ms", 1000),
    Figure("last_third_ttft_p50", "TTFT p50, last third", "ms", 1000),
    Figure("request_count", "Requests", kind="count", help="Measured requests of the level (warm-up excluded)."),
    Figure("success_count", "Succeeded", kind="count"),
    Figure("error_count", "Errors", kind="count"),
    Figure("error_rate", "Error rate", "%", 100, kind="share", help="Failed requests / measured requests."),
    Figure("instance_count", "Instances", kind="count"),
    # Latency.
    *_percentiles("latency", "Latency", "s", 1, LATENCY_HELP),
    *_percentiles("ttft", "TTFT", "ms", 1000, TTFT_HELP),
    *_percentiles("tpot", "TPOT", "ms", 1000, TPOT_HELP),
    Figure("latency_mean", "Mean latency", "s", help=LATENCY_HELP),
    *_percentiles("ttft_first_event", "TTFT (first event)", "ms", 1000, FIRST_EVENT_HELP),
    Figure("tpot_mean", "Mean TPOT", "ms", 1000, help=TPOT_HELP),
    *_percentiles("itl", "ITL", "ms", 1000, ITL_HELP),
    Figure("itl_mean", "Mean ITL", "ms", 1000, help=ITL_HELP),
    Figure("content_chunk_count_mean", "Mean content chunks", "chunks"),
    # Tokens and throughput.
    Figure("prompt_token_count_mean", "Mean prompt", "tokens"),
    Figure("completion_token_count_mean", "Mean completion", "tokens"),
    Figure("prompt_token_throughput", "Prompt throughput", "tokens/s"),
    Figure("completion_token_throughput", "Output throughput", "tokens/s"),
    Figure("transactions_per_minute", "Transactions/min", help="Successful requests per minute of the level."),
    # Spread across a level's repeats (repeats_per_level): each repeat's own figure, lowest and highest.
    Figure("repeat_count", "Repeats", kind="count", help="Times the level ran; its figures pool every repeat."),
    Figure("transactions_per_minute_repeat_min", "Transactions/min, lowest repeat"),
    Figure("transactions_per_minute_repeat_max", "Transactions/min, highest repeat"),
    Figure("completion_token_throughput_repeat_min", "Output throughput, lowest repeat", "tokens/s"),
    Figure("completion_token_throughput_repeat_max", "Output throughput, highest repeat", "tokens/s"),
    Figure("latency_p95_repeat_min", "Latency p95, lowest repeat", "s"),
    Figure("latency_p95_repeat_max", "Latency p95, highest repeat", "s"),
    Figure(
        "event_loop_lag_p99", "Client loop lag p99", "ms", 1000, help="How late the collector's event loop woke (p99)."
    ),
    # Price and cost.
    Figure("price_per_txn", "Price per transaction", kind="usd"),
    Figure("price_per_token", "Price per 1M tokens", scale=1e6, kind="usd", help="Prompt and output tokens."),
    Figure("cost_per_10k_txn", "Cost per 10k transactions", kind="usd"),
    Figure("cost_usd", "Cost", kind="usd"),
    Figure("slo_attainment", "SLO attainment", "%", 100, kind="share", help="Good requests / measured requests."),
    Figure("goodput_rps", "Goodput", "good requests/s", help="Requests that succeeded and met every SLO, per second."),
    Figure("price_per_good_request", "Price per good request", kind="usd"),
    Figure("cost_per_10k_good_requests", "Cost per 10k good requests", kind="usd"),
    Figure("price_per_1m_good_output_tokens", "Price per 1M good output tokens", kind="usd"),
    Figure("duration_s", "Duration", "s"),
    Figure("usd_per_hour", "Price per hour", kind="usd"),
    # Telemetry (fct_endpoint_metrics and fct_telemetry_samples).
    Figure("cpu_percent", "Host CPU", "%"),
    Figure("host_memory_used_gib", "Host memory used", "GiB"),
    Figure("gpu_utilization_percent", "GPU utilisation", "%"),
    Figure("gpu_memory_used_gib", "GPU memory used", "GiB"),
    Figure("gpu_memory_total_gib", "GPU memory installed", "GiB"),
    Figure("gpu_power_w", "GPU power", "W"),
    Figure("gpu_energy_j", "GPU energy", "J"),
    Figure("gpu_energy_per_output_token_j", "GPU energy per output token", "J"),
    Figure("window_duration_s", "Window", "s"),
    Figure("sample_count", "Samples", kind="count"),
    # The server's own view (fct_level_server_view): the engine's Prometheus metrics, a SageMaker endpoint's
    # CloudWatch metrics or Bedrock's reported latency, over a level's window.
    Figure("client_mean_e2e_s", "Client mean latency", "s", help="Mean end-to-end latency of the measured successes."),
    Figure(
        "server_mean_e2e_s",
        "Server mean latency",
        "s",
        help="The server's own mean latency: the engine's histogram, SageMaker's model + overhead latency "
        "(CloudWatch), or the latency Bedrock reported.",
    ),
    Figure(
        "e2e_gap_s", "Latency gap", "ms", 1000, help="Client mean latency - server mean latency: network and client."
    ),
    Figure("server_mean_ttft_s", "Server mean TTFT", "ms", 1000, help="The engine's own mean time to first token."),
    Figure("server_mean_queue_time_s", "Server mean queue time", "ms", 1000, help="Time requests waited in its queue."),
    Figure("mean_requests_waiting", "Mean queue depth", "requests", help="Requests waiting in the engine, mean."),
    Figure("max_requests_waiting", "Max queue depth", "requests", help="Requests waiting in the engine, largest."),
    Figure("mean_requests_running", "Mean running batch", "requests", help="Requests the engine ran at once, mean."),
    Figure("mean_kv_cache_usage", "Mean KV cache", "%", 100, kind="share", help="The engine's KV cache in use, mean."),
    Figure("max_kv_cache_usage", "Max KV cache", "%", 100, kind="share", help="The engine's KV cache in use, largest."),
    Figure(
        "server_mean_model_latency_s",
        "Model latency",
        "ms",
        1000,
        help="CloudWatch ModelLatency, mean: the container's time as SageMaker saw it.",
    ),
    Figure(
        "server_mean_overhead_latency_s",
        "Overhead latency",
        "ms",
        1000,
        help="CloudWatch OverheadLatency, mean: the time SageMaker added beyond the container's.",
    ),
    Figure(
        "cloudwatch_period_count",
        "CloudWatch periods",
        kind="count",
        help="CloudWatch periods wholly inside the level's measured window (the figures' span).",
    ),
    Figure(
        "server_mean_gpu_utilization_percent",
        "Endpoint GPU utilisation",
        "%",
        help="CloudWatch GPUUtilization, mean (percent summed over the instance's GPUs).",
    ),
    Figure(
        "server_mean_gpu_memory_utilization_percent",
        "Endpoint GPU memory",
        "%",
        help="CloudWatch GPUMemoryUtilization, mean (percent summed over the instance's GPUs).",
    ),
    # Requests (fct_requests).
    Figure("e2e_latency_s", "Latency", "s", help=LATENCY_HELP),
    Figure("ttft_s", "TTFT", "ms", 1000, help=TTFT_HELP),
    Figure("tpot_s", "TPOT", "ms", 1000, help=TPOT_HELP),
    Figure("prompt_tokens", "Prompt tokens", kind="count"),
    Figure("completion_tokens", "Output tokens", kind="count"),
)

# Columns that name things rather than measure them, as every table heads them.
NAMES: dict[str, str] = {
    "run_id": "Run",
    "run_name": "Run name",
    "experiment_name": "Experiment",
    "model_id": "Model",
    "payload_file": "Payload bucket",
    "instance_type": "Instance type",
    "pricing_kind": "Pricing",
    "pricing_model": "Pricing model",
    "server_view_source": "Server's view from",
    "price_source": "Price source",
    "error_type": "Error type",
    "example_message": "Most frequent message",
    "telemetry_host": "Host sampled",
    "engine": "Engine",
    "status": "Status",
}

BY_COLUMN: dict[str, Figure] = {f.column: f for f in FIGURES}
BY_HEADER: dict[str, Figure] = {f.header: f for f in FIGURES}
assert len(BY_COLUMN) == len(FIGURES) and len(BY_HEADER) == len(FIGURES), "a column or header is defined twice"

# The telemetry measures of fct_endpoint_metrics, in the order every output lists them.
TELEMETRY: tuple[Figure, ...] = tuple(
    BY_COLUMN[c]
    for c in (
        "cpu_percent",
        "host_memory_used_gib",
        "gpu_utilization_percent",
        "gpu_memory_used_gib",
        "gpu_memory_total_gib",
        "gpu_power_w",
    )
)


def figure(column: str) -> Figure:
    return BY_COLUMN[column]


def header(column: str) -> str:
    return BY_COLUMN[column].header


def label(column: str) -> str:
    """The header of any mart column: a figure's header, a name column's label, else the column itself."""
    return BY_COLUMN[column].header if column in BY_COLUMN else NAMES.get(column, column)


def frame(rows: pd.DataFrame, columns: Iterable[str | tuple[str, str]]) -> pd.DataFrame:
    """A display frame of mart rows: a figure column becomes its header with numeric `value()`s; a name
    column its label; a `(header, column)` pair copies the column as text under that header."""
    out: dict[str, Any] = {}
    for spec in columns:
        if isinstance(spec, tuple):
            title, column = spec
            out[title] = rows[column].map(lambda v: NO_VALUE if missing(v) else str(v)).to_numpy()
        elif spec in BY_COLUMN:
            fig = BY_COLUMN[spec]
            out[fig.header] = pd.array(
                [fig.value(v) for v in rows[spec]], dtype="Int64" if fig.kind == "count" else "Float64"
            )
        else:
            out[label(spec)] = rows[spec].map(lambda v: NO_VALUE if missing(v) else str(v)).to_numpy()
    return pd.DataFrame(out).reset_index(drop=True)


def cell_text(header: str, column: pd.Series) -> Callable[[Any], str] | None:
    """How a display frame's column is written: its figure's rule, the measure rule for other numbers (a
    column of mixed measures, each named in its row), or None for text."""
    fig = BY_HEADER.get(str(header))
    if fig is not None:
        return fig.shown_text
    if pd.api.types.is_integer_dtype(column.dtype):
        return lambda v: NO_VALUE if missing(v) else f"{int(v):,}"
    if pd.api.types.is_float_dtype(column.dtype):
        return plain
    return None


def as_text(display: pd.DataFrame) -> pd.DataFrame:
    """A display frame with every number written as text by the precision rule (report, terminal)."""
    out = display.copy()
    for title in out.columns:
        write = cell_text(str(title), out[title])
        if write is not None:
            out[title] = [write(v) for v in out[title]]
    return out
