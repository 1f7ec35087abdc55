"""Tables in the reference report's shape, built from mart frames; shared by the app and the report.

Pure pandas (no streamlit): each function takes rows of one mart and returns a display frame of strings, so
the page and report.md show the same figures with the same rounding.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pandas as pd

NO_VALUE = "–"


def _missing(value: Any) -> bool:
    if value is None or value is pd.NA:
        return True
    try:
        return bool(math.isnan(value))
    except TypeError:
        return False


def fmt(value: Any, digits: int = 2) -> str:
    """A number with `digits` decimals (a dash when missing)."""
    return NO_VALUE if _missing(value) else f"{float(value):.{digits}f}"


def fmt_int(value: Any) -> str:
    """A count or a mean rounded to a whole number, as the reference prints token counts and throughputs."""
    return NO_VALUE if _missing(value) else f"{float(value):.0f}"


def fmt_budget(value: Any) -> str:
    """A budget as the user wrote it: 2, 0.3, 20 (no trailing zeros)."""
    return NO_VALUE if _missing(value) else f"{float(value):g}"


def fmt_triple(row: pd.Series | dict, prefix: str, digits: int = 2) -> str:
    """`<prefix>_p50, _p95, _p99` merged into one cell, as the reference's "latency p50, p95, p99"."""
    return ", ".join(fmt(row[f"{prefix}_{p}"], digits) for p in ("p50", "p95", "p99"))


def fmt_usd(value: Any) -> str:
    """Dollars with cents, or with six decimals below a cent (a short benchmark costs fractions of one)."""
    if _missing(value):
        return NO_VALUE
    v = float(value)
    return f"${v:,.2f}" if abs(v) >= 0.01 or v == 0 else f"${v:.6f}"


def serving(row: pd.Series | dict) -> str:
    """Instance type with its count (`2 × g5.4xlarge`), the model's API when token-priced, or `unpriced
    endpoint` for an endpoint benchmarked without a price and without an instance type."""
    instance = row.get("instance_type")
    if _missing(instance) or not instance:
        if row.get("pricing_kind") == "unpriced":
            return "unpriced endpoint"
        return f"{row.get('model_id')} API"
    count = row.get("instance_count")
    if count is not None and not _missing(count) and int(count) > 1:
        return f"{int(count)} × {instance}"
    return str(instance)


def simulated(run: pd.Series | dict) -> str:
    """`simulated`, `partly simulated` or '' for a run whose experiments were sent to the built-in simulator:
    its timings come from a model of a GPU server, not a measurement, and every title says so."""
    count = run.get("simulated_experiment_count")
    if _missing(count) or not count:
        return ""
    total = run.get("experiment_count")
    if total is None or _missing(total) or int(count) >= int(total):
        return "simulated"
    return "partly simulated"


def title(models: list[str], run: pd.Series | dict) -> str:
    """The report's and the Summary page's title: the models benchmarked, and whether the run was simulated."""
    label = simulated(run)
    return f"Results for performance benchmarking {', '.join(models)}" + (f" ({label})" if label else "")


def information_table(best: pd.Series | dict) -> pd.DataFrame:
    """The Summary's Information | Value table for one fct_recommendations (or fct_concurrency_metrics) row."""
    rows = [
        ("experiment_name", str(best["experiment_name"])),
        ("model_id", str(best["model_id"])),
        ("payload_file", str(best["payload_file"])),
        ("instance_type", NO_VALUE if _missing(best.get("instance_type")) else str(best["instance_type"])),
        ("instance_count", fmt_int(best.get("instance_count"))),
        ("concurrency", fmt_int(best["concurrency"])),
        ("error_rate", fmt(best["error_rate"], 2)),
        ("prompt_token_count_mean", fmt_int(best["prompt_token_count_mean"])),
        ("prompt_token_throughput", fmt_int(best["prompt_token_throughput"])),
        ("completion_token_count_mean", fmt_int(best["completion_token_count_mean"])),
        ("completion_token_throughput", fmt_int(best["completion_token_throughput"])),
        ("transactions_per_minute", fmt_int(best["transactions_per_minute"])),
        ("price_per_txn", fmt(best["price_per_txn"], 6)),
        ("price_per_token", fmt(best["price_per_token"], 8)),
        ("cost_per_10k_txn", fmt(best["cost_per_10k_txn"], 2)),
        ("latency p50, p95, p99", fmt_triple(best, "latency", 2)),
        ("TTFT p50, p95, p99", fmt_triple(best, "ttft", 3)),
        ("TPOT p50, p95, p99", fmt_triple(best, "tpot", 4)),
    ]
    return pd.DataFrame(rows, columns=["Information", "Value"])


def criteria_sentence(budgets: pd.Series | dict) -> str:
    """The configured criteria in the reference's words (markdown with code spans)."""
    return (
        f"`Latency` (p95) ≤ `{fmt_budget(budgets['latency_budget_s'])}s`, "
        f"`cost per 10k transactions`: `${fmt_budget(budgets['cost_per_10k_txn_budget_usd'])}`, "
        f"`error rate`: `{fmt_budget(budgets['error_rate_budget'])}`"
    )


FAILED_COLUMNS = [
    "experiment_name",
    "payload_file",
    "concurrency",
    "error_rate_text",
    "latency_p95_text",
    "price_per_10k_txn_text",
    "missed_budgets",
]


def failed_table(failed: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """fct_failed_experiments as the reference's table, plus a same-shaped frame of booleans: which cell fails."""
    shown = pd.DataFrame(
        {
            "experiment_name": failed["experiment_name"].astype(str),
            "payload_file": failed["payload_file"].astype(str),
            "concurrency": failed["concurrency"].map(fmt_int),
            "error_rate_text": failed["error_rate"].map(lambda v: fmt(v, 2)),
            "latency_p95_text": failed["latency_p95"].map(lambda v: fmt(v, 2)),
            "price_per_10k_txn_text": failed["cost_per_10k_txn"].map(lambda v: fmt(v, 2)),
            "missed_budgets": failed["missed_budgets"].astype(str),
        },
        columns=FAILED_COLUMNS,
    ).reset_index(drop=True)
    flags = pd.DataFrame(False, index=shown.index, columns=FAILED_COLUMNS)
    flags["error_rate_text"] = failed["misses_error_budget"].astype(bool).to_numpy()
    flags["latency_p95_text"] = failed["misses_latency_budget"].astype(bool).to_numpy()
    # misses_cost_budget is null (not judged) for an experiment benchmarked unpriced: not a miss.
    flags["price_per_10k_txn_text"] = [not _missing(v) and bool(v) for v in failed["misses_cost_budget"]]
    return shown, flags


def recommendation_table(recs: pd.DataFrame) -> pd.DataFrame:
    """Per instance results: Dataset | Experiment | Instance type | Recommendation."""
    return pd.DataFrame(
        {
            "Dataset": recs["payload_file"].astype(str),
            "Experiment": recs["experiment_name"].astype(str),
            "Instance type": [serving(row) for _, row in recs.iterrows()],
            "Recommendation": recs["recommendation_sentence"].astype(str),
        }
    ).reset_index(drop=True)


def cost_table(costs: pd.DataFrame) -> pd.DataFrame:
    """Experiment cost: one row per experiment, as the reference's Model Benchmarking Cost."""
    return pd.DataFrame(
        {
            "experiment_name": costs["experiment_name"].astype(str),
            "instance_type": [serving(row) for _, row in costs.iterrows()],
            "pricing": costs["pricing_kind"].fillna(NO_VALUE).astype(str)
            + " ("
            + costs["price_source"].fillna("none").astype(str)
            + ")",
            "request_count": costs["request_count"].map(fmt_int),
            "duration_in_seconds": costs["duration_s"].map(lambda v: fmt(v, 2)),
            "cost": costs["cost_usd"].map(lambda v: fmt(v, 6)),
        }
    ).reset_index(drop=True)


def total_cost(costs: pd.DataFrame) -> float:
    return float(costs["cost_usd"].fillna(0).sum())


ENDPOINT_MEASURES = (
    ("cpu_percent", "cpu_percent"),
    ("host_memory_used_gib", "host_memory_used_gib"),
    ("gpu_utilization_percent", "gpu_utilization_percent"),
    ("gpu_memory_used_gib", "gpu_memory_used_gib"),
    ("gpu_memory_total_gib", "gpu_memory_total_gib"),
    ("gpu_power_w", "gpu_power_w"),
)


def _host(level: pd.Series) -> str:
    """Whose host a level's samples describe (fct_endpoint_metrics.telemetry_host)."""
    host = level.get("telemetry_host")
    return "collector" if host == "collector" else "endpoint"


def endpoint_table(metrics: pd.DataFrame) -> pd.DataFrame:
    """Endpoint metrics: one row per experiment, concurrency and measure with min, 25%, 50%, 75%, max, and
    whose host the samples describe (`endpoint`, or `collector` for a remote endpoint whose host was not sampled).

    Measures with no sample in any window (GPU measures on a host without NVML) are left out.
    """
    rows = []
    for _, level in metrics.iterrows():
        head = [str(level["experiment_name"]), fmt_int(level["concurrency"]), _host(level)]
        for prefix, label in ENDPOINT_MEASURES:
            values = [level[f"{prefix}_{s}"] for s in ("min", "p25", "p50", "p75", "max")]
            if all(_missing(v) for v in values):
                continue
            rows.append([*head, label] + [fmt(v, 2) for v in values] + [fmt_int(level["sample_count"])])
        if not _missing(level.get("gpu_energy_per_output_token_j")):
            rows.append(
                [*head, "gpu_energy_per_output_token_j"]
                + [NO_VALUE] * 2
                + [fmt(level["gpu_energy_per_output_token_j"], 3)]
                + [NO_VALUE] * 2
                + [fmt_int(level["sample_count"])]
            )
    return pd.DataFrame(
        rows,
        columns=["experiment_name", "concurrency", "host", "measure", "min", "25%", "50%", "75%", "max", "samples"],
    )


def _backticks(name: str) -> str:
    return f"`{name}`"


def remote_telemetry_note(metrics: pd.DataFrame, code: Callable[[str], str] = _backticks) -> str | None:
    """The sentence warning that some experiments' telemetry is the collector's own host (their endpoint is
    remote, `type: openai`), or None when every sample describes the endpoint's host. `code` formats a name."""
    if metrics.empty or "telemetry_host" not in metrics:
        return None
    remote = sorted({str(n) for n in metrics.loc[metrics["telemetry_host"] == "collector", "experiment_name"]})
    if not remote:
        return None
    names = ", ".join(code(n) for n in remote)
    return (
        f"For {names} the endpoint is remote: those samples (host `collector`) describe the machine the collector "
        "ran on, not the endpoint's host, whose load tokenbench cannot see."
    )


def unpriced_note(levels: pd.DataFrame, code: Callable[[str], str] = _backticks) -> str | None:
    """The sentence saying which experiments were benchmarked unpriced, or None when every one has a price."""
    if levels.empty or "pricing_kind" not in levels:
        return None
    unpriced = sorted({str(n) for n in levels.loc[levels["pricing_kind"] == "unpriced", "experiment_name"]})
    if not unpriced:
        return None
    return (
        f"{', '.join(code(n) for n in unpriced)} {'was' if len(unpriced) == 1 else 'were'} benchmarked unpriced "
        "(`unpriced: true`): no price or cost is shown for it, and its verdicts judge latency and error rate only."
    )


def latency_table(levels: pd.DataFrame) -> pd.DataFrame:
    """Latency metrics analysis: overall latency, TTFT and TPOT per experiment and level, seconds."""
    return pd.DataFrame(
        {
            "experiment_name": levels["experiment_name"].astype(str),
            "concurrency": levels["concurrency"].map(fmt_int),
            "latency p50, p95, p99 (s)": [fmt_triple(r, "latency", 2) for _, r in levels.iterrows()],
            "TTFT p50, p95, p99 (s)": [fmt_triple(r, "ttft", 3) for _, r in levels.iterrows()],
            "TPOT p50, p95, p99 (s)": [fmt_triple(r, "tpot", 4) for _, r in levels.iterrows()],
            "transactions_per_minute": levels["transactions_per_minute"].map(fmt_int),
        }
    ).reset_index(drop=True)


def level_table(levels: pd.DataFrame, verdict_prefix: str = "") -> pd.DataFrame:
    """Compact per-level figures with the verdicts (`preview_` prefix for the trial budgets)."""

    def mark(v: Any) -> str:
        # A null verdict is one not judged (the cost budget of an experiment benchmarked unpriced).
        return "not judged" if _missing(v) else "pass" if bool(v) else "FAIL"

    return pd.DataFrame(
        {
            "experiment_name": levels["experiment_name"].astype(str),
            "payload_file": levels["payload_file"].astype(str),
            "concurrency": levels["concurrency"].map(fmt_int),
            "latency_p95": levels["latency_p95"].map(lambda v: fmt(v, 2)),
            "cost_per_10k_txn": levels["cost_per_10k_txn"].map(lambda v: fmt(v, 2)),
            "error_rate": levels["error_rate"].map(lambda v: fmt(v, 2)),
            "transactions_per_minute": levels["transactions_per_minute"].map(fmt_int),
            "latency": levels[f"{verdict_prefix}meets_latency_budget"].map(mark),
            "cost": levels[f"{verdict_prefix}meets_cost_budget"].map(mark),
            "error rate": levels[f"{verdict_prefix}meets_error_budget"].map(mark),
            "all budgets": levels[f"{verdict_prefix}meets_all_budgets"].map(mark),
        }
    ).reset_index(drop=True)


def preview_sentence(row: pd.Series | dict, budgets: dict[str, float]) -> str:
    """A preview recommendation in the marts' words, under trial budgets."""
    if row.get("pricing_kind") == "unpriced":
        others = (
            f"with an error-rate budget of {fmt_budget(budgets['error_rate_budget'])}; unpriced, so cost is not judged"
        )
    else:
        others = (
            f"with a cost budget of ${fmt_budget(budgets['cost_per_10k_txn_budget_usd'])} per 10k transactions and "
            f"an error-rate budget of {fmt_budget(budgets['error_rate_budget'])}"
        )
    budget_phrase = f"a latency budget of {fmt_budget(budgets['latency_budget_s'])} seconds ({others})"
    where = serving(row)
    where = where if where.endswith("API") else f"an {where}" if where.startswith("unpriced") else f"a {where}"
    if not bool(row["has_recommendation"]):
        return (
            f"Experiment {row['experiment_name']} on {where} would find no concurrency level for the "
            f"{row['payload_file']} dataset staying within {budget_phrase}."
        )
    c = fmt_int(row["concurrency"])
    return (
        f"The best option for staying within {budget_phrase} on {where} for the {row['payload_file']} dataset "
        f"with experiment {row['experiment_name']} would be a concurrency level of {c}: a median latency of "
        f"{fmt(row['latency_p50'], 2)} seconds, for an average prompt size of "
        f"{fmt_int(row['prompt_token_count_mean'])} tokens and completion size of "
        f"{fmt_int(row['completion_token_count_mean'])} tokens with {fmt_int(row['transactions_per_minute'])} "
        "transactions/minute."
    )
