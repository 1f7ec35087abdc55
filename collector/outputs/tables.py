"""Tables in the reference report's shape, built from mart frames; shared by the app, the report and the
terminal summary.

Pure pandas (no streamlit). Each builder returns a `Table`: a display frame whose figure columns hold numbers
(scaled and rounded by `figures`, so the app sorts 1, 2, 4, 8, 16 and not 1, 16, 2), headed by the figures'
labels and units, plus a same-shaped frame of cell states (a budget passed or failed, a figure to read with
caution) and the notes that explain the marks. `text()` writes it out for the report and the terminal.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from collector.outputs import figures, sentences
from collector.outputs.figures import NO_VALUE, missing
from collector.outputs.precision import flag

PASS, FAIL, CAUTION = "pass", "fail", "caution"


@dataclass
class Table:
    """A display frame, its cell states ('' | pass | fail | caution) and the notes under it."""

    frame: pd.DataFrame
    states: pd.DataFrame
    notes: list[str] = field(default_factory=list)

    @classmethod
    def plain(cls, frame: pd.DataFrame, notes: list[str] | None = None) -> Table:
        return cls(frame, pd.DataFrame("", index=frame.index, columns=frame.columns), notes or [])

    @property
    def empty(self) -> bool:
        return self.frame.empty


def text(table: Table) -> pd.DataFrame:
    """Every cell as text by the precision rule; a caution cell carries the under-sampled mark."""
    out = figures.as_text(table.frame)
    for column in out.columns:
        marked = table.states[column] == CAUTION
        if marked.any():
            out.loc[marked, column] = out.loc[marked, column].map(
                lambda v: v if v == NO_VALUE else f"{v}{sentences.UNDERSAMPLED_MARK}"
            )
    return out


def title(models: list[str], run: pd.Series | dict) -> str:
    """The report's and the Summary page's title: the models benchmarked, and whether the run was simulated."""
    label = simulated(run)
    return f"Results for performance benchmarking {', '.join(models)}" + (f" ({label})" if label else "")


def simulated(run: pd.Series | dict) -> str:
    """`simulated`, `partly simulated` or '' for a run whose experiments were sent to the built-in simulator:
    its timings come from a model of a GPU server, not a measurement, and every title says so."""
    count = run.get("simulated_experiment_count")
    if missing(count) or not count:
        return ""
    total = run.get("experiment_count")
    if total is None or missing(total) or int(count) >= int(total):
        return "simulated"
    return "partly simulated"


def _percentile_text(row: pd.Series | dict, prefix: str) -> str:
    """`1.66 / 1.7 / 1.72 s` with the mark on a percentile from too few requests."""
    fig = figures.figure(f"{prefix}_p50")
    parts = []
    for p in ("p50", "p95", "p99"):
        v = figures.figure(f"{prefix}_{p}").text(row.get(f"{prefix}_{p}"))
        if v != NO_VALUE and p != "p50" and bool(row.get(f"is_{p}_undersampled")):
            v += sentences.UNDERSAMPLED_MARK
        parts.append(v)
    if all(p == NO_VALUE for p in parts):
        return NO_VALUE
    return " / ".join(parts) + f" {fig.unit}"


def information_table(best: pd.Series | dict) -> Table:
    """The Summary's Information | Value table for one fct_recommendations (or fct_concurrency_metrics) row."""

    def value(column: str) -> str:
        return figures.figure(column).with_unit(best.get(column))

    succeeded = best.get("success_count")
    requests = value("request_count") + (
        "" if succeeded is None or missing(succeeded) else f" ({int(succeeded):,} succeeded)"
    )
    rows = [
        ("Experiment", str(best["experiment_name"])),
        ("Model", str(best["model_id"])),
        ("Payload bucket", str(best["payload_file"])),
        ("Serving", sentences.serving(best)),
        ("Concurrency", value("concurrency")),
        ("Requests", requests),
        ("Error rate", value("error_rate")),
        ("Mean prompt", value("prompt_token_count_mean")),
        ("Prompt throughput", value("prompt_token_throughput")),
        ("Mean completion", value("completion_token_count_mean")),
        ("Output throughput", value("completion_token_throughput")),
        ("Transactions/min", value("transactions_per_minute")),
        ("Price per transaction", value("price_per_txn")),
        ("Price per 1M tokens", value("price_per_token")),
        ("Cost per 10k transactions", value("cost_per_10k_txn")),
        *(
            [
                ("SLO attainment", value("slo_attainment")),
                ("Goodput", value("goodput_rps")),
                ("Cost per 10k good requests", value("cost_per_10k_good_requests")),
            ]
            if not missing(best.get("slo_attainment"))
            else []
        ),
        ("Latency p50 / p95 / p99", _percentile_text(best, "latency")),
        ("TTFT p50 / p95 / p99", _percentile_text(best, "ttft")),
        ("TPOT p50 / p95 / p99", _percentile_text(best, "tpot")),
    ]
    notes = (
        [sentences.UNDERSAMPLED_NOTE]
        if bool(best.get("is_p95_undersampled") or best.get("is_p99_undersampled"))
        else []
    )
    return Table.plain(pd.DataFrame(rows, columns=["Information", "Value"]), notes)


def _caution_percentiles(levels: pd.DataFrame, frame: pd.DataFrame, states: pd.DataFrame) -> list[str]:
    """Mark every p95/p99 cell computed from too few successful requests; the note when any is marked."""
    marked = False
    for p in ("p95", "p99"):
        flags = levels.get(f"is_{p}_undersampled")
        if flags is None:
            continue
        flags = flags.fillna(False).astype(bool).to_numpy()
        for prefix in ("latency", "ttft", "tpot"):
            header = figures.header(f"{prefix}_{p}")
            if header in frame.columns:
                has_value = frame[header].notna().to_numpy()
                states.loc[flags & has_value, header] = CAUTION
                marked = marked or bool((flags & has_value).any())
    return [sentences.UNDERSAMPLED_NOTE] if marked else []


def latency_table(levels: pd.DataFrame) -> Table:
    """Latency metrics analysis: latency, TTFT and TPOT percentiles per experiment and level, with counts."""
    frame = figures.frame(
        levels,
        [
            "experiment_name",
            "concurrency",
            *(("target_rate_rps",) if _has_rate(levels) else ()),
            "request_count",
            "error_count",
            *(f"{m}_{p}" for m in ("latency", "ttft", "tpot") for p in ("p50", "p95", "p99")),
            "transactions_per_minute",
        ],
    )
    table = Table.plain(frame)
    table.notes = _caution_percentiles(levels.reset_index(drop=True), frame, table.states)
    if ((levels["error_count"].fillna(0) > 0) & (levels["success_count"].fillna(0) > 0)).any():
        table.notes.append(sentences.SURVIVORS_NOTE)
    return table


def _verdict(value: Any) -> str:
    # A null verdict is one not judged (the cost budget of an experiment benchmarked unpriced).
    return "not judged" if missing(value) else "pass" if bool(value) else "FAIL"


VERDICTS = (
    ("Latency verdict", "meets_latency_budget"),
    ("Cost verdict", "meets_cost_budget"),
    ("Error verdict", "meets_error_budget"),
    ("All budgets", "meets_all_budgets"),
)


# The per-budget verdicts a level table can start without (in the app, behind the table's column menu): "All
# budgets" says whether the level passes, these say which budget it missed.
BUDGET_VERDICTS = tuple(title_ for title_, column in VERDICTS if column != "meets_all_budgets")


SLO_COLUMNS = ("slo_attainment", "goodput_rps", "cost_per_10k_good_requests")


def _has_slo(levels: pd.DataFrame) -> bool:
    return "slo_attainment" in levels and bool(levels["slo_attainment"].notna().any())


def _has_rate(levels: pd.DataFrame) -> bool:
    return "target_rate_rps" in levels and bool(levels["target_rate_rps"].notna().any())


RATE_COLUMNS = ("target_rate_rps", "offered_request_rate", "send_lag_p99", "event_loop_lag_p99")
# A level that ran more than once: how far its repeats' own figures spread.
REPEAT_COLUMNS = (
    "repeat_count",
    "transactions_per_minute_repeat_min",
    "transactions_per_minute_repeat_max",
    "latency_p95_repeat_min",
    "latency_p95_repeat_max",
)


# Headers a wide page starts behind the column menu: the repeats' range (Repeats stays).
REPEAT_RANGE_HEADERS = tuple(figures.header(c) for c in REPEAT_COLUMNS[1:])


def _has_repeats(levels: pd.DataFrame) -> bool:
    return "repeat_count" in levels and bool((pd.to_numeric(levels["repeat_count"], errors="coerce") > 1).any())


def level_table(levels: pd.DataFrame, verdict_prefix: str = "") -> Table:
    """Per-level figures with the verdicts (`preview_` prefix for the trial budgets; the SLO verdict, which no
    trial budget changes, is always the marts'), with goodput where the run sets SLOs."""
    levels = levels.reset_index(drop=True)
    frame = figures.frame(
        levels,
        [
            "experiment_name",
            "payload_file",
            "concurrency",
            *(RATE_COLUMNS if _has_rate(levels) else ()),
            "request_count",
            "error_rate",
            "latency_p95",
            "cost_per_10k_txn",
            "transactions_per_minute",
            *(REPEAT_COLUMNS if _has_repeats(levels) else ()),
            *(SLO_COLUMNS if _has_slo(levels) else ()),
        ],
    )
    if _has_rate(levels):  # an open loop's validity and saturation (closed-loop levels have neither)
        words = {True: "kept", False: "LATE", None: ""}
        frame["Schedule"] = [words[flag(v)] for v in levels["is_schedule_kept"]]
        words = {True: "yes", False: "no", None: ""}
        frame["Saturated"] = [words[flag(v)] for v in levels["is_saturated"]]
    if _has_slo(levels):
        frame["SLO verdict"] = levels["meets_slo"].map(_verdict).to_numpy()
    for title_, column in VERDICTS:
        frame[title_] = levels[f"{verdict_prefix}{column}"].map(_verdict).to_numpy()
    table = Table.plain(frame)
    for title_ in [t for t, _ in VERDICTS] + (["SLO verdict"] if _has_slo(levels) else []):
        table.states[title_] = frame[title_].map({"pass": PASS, "FAIL": FAIL}).fillna("")
    if _has_rate(levels):
        table.states["Schedule"] = frame["Schedule"].map({"kept": PASS, "LATE": FAIL}).fillna("")
        table.states["Saturated"] = frame["Saturated"].map({"no": PASS, "yes": FAIL}).fillna("")
    table.notes = _caution_percentiles(levels, frame, table.states)
    return table


def failed_table(failed: pd.DataFrame) -> Table:
    """fct_failed_experiments as the reference's table: a missed budget's cell fails (red), a met one passes
    (green), except a latency measured on survivors only (some requests failed), which reads with caution."""
    failed = failed.reset_index(drop=True)
    frame = figures.frame(
        failed,
        [
            "experiment_name",
            "payload_file",
            "concurrency",
            "request_count",
            "error_rate",
            "latency_p95",
            "cost_per_10k_txn",
            *(("slo_attainment",) if _has_slo(failed) else ()),
        ],
    )
    frame["Missed budgets"] = failed["missed_budgets"].astype(str).to_numpy()
    table = Table.plain(frame)

    def state(miss: Any, clean: bool = True) -> str:
        if missing(miss):
            return ""  # not judged (the cost of an experiment benchmarked unpriced)
        return FAIL if bool(miss) else PASS if clean else CAUTION

    succeeded = failed["success_count"].fillna(0)
    survivors_only = ((succeeded > 0) & (succeeded < failed["request_count"])).to_numpy()
    table.states[figures.header("error_rate")] = [state(m) for m in failed["misses_error_budget"]]
    table.states[figures.header("latency_p95")] = [
        state(m, not s) for m, s in zip(failed["misses_latency_budget"], survivors_only, strict=True)
    ]
    table.states[figures.header("cost_per_10k_txn")] = [state(m) for m in failed["misses_cost_budget"]]
    if _has_slo(failed):
        table.states[figures.header("slo_attainment")] = [state(m) for m in failed["misses_slo"]]
    if survivors_only.any():
        table.notes.append(sentences.SURVIVORS_NOTE)
    return table


def recommendation_table(
    recs: pd.DataFrame, budgets: dict[str, float] | None = None, *, preview: bool = False
) -> Table:
    """Per instance results: Dataset | Experiment | Serving | Pricing model | Recommendation (the sentence)."""
    recs = recs.reset_index(drop=True)
    frame = pd.DataFrame(
        {
            "Payload bucket": recs["payload_file"].astype(str),
            "Experiment": recs["experiment_name"].astype(str),
            "Serving": [sentences.serving(row) for _, row in recs.iterrows()],
            figures.label("pricing_model"): [sentences.pricing_model(row) for _, row in recs.iterrows()],
            "Recommendation": [sentences.recommendation(row, budgets, preview=preview) for _, row in recs.iterrows()],
        }
    )
    return Table.plain(frame)


def cost_table(costs: pd.DataFrame) -> Table:
    """Experiment cost: one row per experiment, as the reference's Model Benchmarking Cost."""
    costs = costs.reset_index(drop=True)
    frame = figures.frame(costs, ["experiment_name", "request_count", "duration_s", "cost_usd"])
    frame.insert(1, "Serving", [sentences.serving(row) for _, row in costs.iterrows()])
    frame.insert(
        2,
        "Pricing",
        [f"{sentences.pricing_model(row)} ({row.get('price_source') or 'none'})" for _, row in costs.iterrows()],
    )
    return Table.plain(frame)


def total_cost(costs: pd.DataFrame) -> float:
    return float(costs["cost_usd"].fillna(0).sum())


def endpoint_table(metrics: pd.DataFrame) -> Table:
    """Endpoint metrics: one row per experiment, concurrency and measure with min, quartiles, max and sample
    count, and whose host the samples describe (`endpoint`, or `collector` for a remote endpoint).

    Measures with no sample in any window (GPU measures on a host without NVML) are left out; values are in
    the measure's unit (named in the Measure column).
    """
    rows = []
    for _, level in metrics.iterrows():
        host = "collector" if level.get("telemetry_host") == "collector" else "endpoint"
        head = [str(level["experiment_name"]), int(level["concurrency"]), host]
        for fig in figures.TELEMETRY:
            values = [level[f"{fig.column}_{s}"] for s in ("min", "p25", "p50", "p75", "max")]
            if all(missing(v) for v in values):
                continue
            rows.append([*head, fig.header, *(figures.rounded(v) for v in values), int(level["sample_count"])])
        energy = figures.figure("gpu_energy_per_output_token_j")
        if not missing(level.get(energy.column)):
            rows.append(
                [
                    *head,
                    energy.header,
                    None,
                    None,
                    figures.rounded(level[energy.column]),
                    None,
                    None,
                    int(level["sample_count"]),
                ]
            )
    columns = [
        figures.label("experiment_name"),
        figures.header("concurrency"),
        figures.label("telemetry_host"),
        "Measure",
        "Min",
        "25%",
        "Median",
        "75%",
        "Max",
        figures.header("sample_count"),
    ]
    frame = pd.DataFrame(rows, columns=columns)
    for column in ("Min", "25%", "Median", "75%", "Max"):
        frame[column] = pd.array(frame[column], dtype="Float64")
    return Table.plain(frame)


SERVER_VIEW_FIGURES = (
    "client_mean_e2e_s",
    "server_mean_e2e_s",
    "e2e_gap_s",
    "server_mean_ttft_s",
    "server_mean_queue_time_s",
    "mean_requests_waiting",
    "max_requests_waiting",
    "mean_requests_running",
    "mean_kv_cache_usage",
    "max_kv_cache_usage",
)
TOKEN_TOTALS = "Token totals"


def _token_totals(level: pd.Series) -> str:
    matching = level.get("is_token_total_matching")
    if missing(matching):
        return "not compared"
    if bool(matching):
        return "match"
    prompt, output = (int(level[c]) for c in ("prompt_tokens_difference", "completion_tokens_difference"))
    return f"differ: prompt {prompt:+,}, output {output:+,}"


# Figures only some servers give (a SageMaker endpoint's CloudWatch metrics): shown where some level has them.
SERVER_VIEW_OPTIONAL = (
    "server_mean_model_latency_s",
    "server_mean_overhead_latency_s",
    "server_mean_gpu_utilization_percent",
    "server_mean_gpu_memory_utilization_percent",
    "cloudwatch_period_count",
)


def server_view_table(view: pd.DataFrame) -> Table:
    """fct_level_server_view: per level, where the server's view comes from, latency by the client and by the
    server with the gap, the engine's queue depth, running batch and KV-cache pressure, CloudWatch's model and
    overhead latency and GPU use where some level has them, and whether the token totals match (a mismatch
    fails)."""
    view = view.reset_index(drop=True)
    optional = [c for c in SERVER_VIEW_OPTIONAL if c in view and view[c].notna().any()]
    frame = figures.frame(view, ["experiment_name", "payload_file", "concurrency", *SERVER_VIEW_FIGURES, *optional])
    if "server_view_source" in view:
        sources = [sentences.server_view_source(v) for v in view["server_view_source"]]
        frame.insert(3, figures.label("server_view_source"), sources)
    frame[TOKEN_TOTALS] = [_token_totals(level) for _, level in view.iterrows()]
    states = pd.DataFrame("", index=frame.index, columns=frame.columns)
    states[TOKEN_TOTALS] = [FAIL if flag else "" for flag in view["is_token_total_mismatch"].fillna(False).to_numpy()]
    notes = [] if not states[TOKEN_TOTALS].eq(FAIL).any() else [f"{TOKEN_TOTALS}: server minus client."]
    return Table(frame, states, notes)


def errors_table(errors: pd.DataFrame) -> Table:
    """fct_level_errors: per level, what the failed requests failed with, most frequent first."""
    errors = errors.sort_values(
        ["experiment_name", "payload_file", "concurrency", "request_count"], ascending=[True, True, True, False]
    ).reset_index(drop=True)
    frame = figures.frame(errors, ["experiment_name", "payload_file", "concurrency"])
    frame["Failure"] = [sentences.ERROR_PHRASES.get(str(t), str(t)) for t in errors["error_type"]]
    frame[figures.header("error_count")] = pd.array(errors["request_count"].astype(int), dtype="Int64")
    frame[figures.header("error_rate")] = pd.array(
        [figures.figure("error_rate").value(v) for v in errors["share_of_level"]], dtype="Float64"
    )
    frame[figures.label("example_message")] = errors["example_message"].fillna(NO_VALUE).astype(str).to_numpy()
    return Table.plain(frame)


COMPARED_FIGURES = (
    "concurrency",
    "request_count",
    "error_rate",
    "transactions_per_minute",
    "completion_token_throughput",
    "latency_p50",
    "latency_p95",
    "ttft_p50",
    "tpot_p50",
    "price_per_txn",
    "cost_per_10k_txn",
    "goodput_rps",
    "cost_per_10k_good_requests",
)


def comparison_table(rows: pd.DataFrame, label_column: str) -> Table:
    """Series side by side (one column each, e.g. the recommended level of each run or experiment), and for
    each series after the first its ratio to the first (`×1.25`: 25% more than the first; `–` where either
    has no value). Rows are the figures, with their units."""
    rows = rows.reset_index(drop=True)
    labels = [str(v) for v in rows[label_column]]
    # Goodput figures only where some series' run sets SLOs.
    compared = [c for c in COMPARED_FIGURES if c in rows and (c not in SLO_COLUMNS or rows[c].notna().any())]
    data: dict[str, list[str]] = {"Figure": [figures.figure(c).header for c in compared]}
    for i, label_ in enumerate(labels):
        data[label_] = [figures.figure(c).text(rows.at[i, c]) for c in compared]
    if "pricing_model" in rows:  # how each bills, first: an instance-hour, a token and a provisioned unit compare
        data["Figure"].insert(0, figures.label("pricing_model"))
        for i, label_ in enumerate(labels):
            data[label_].insert(0, sentences.pricing_model(rows.iloc[i]))
    for i, label_ in enumerate(labels[1:], start=1):
        ratios = [NO_VALUE] if "pricing_model" in rows else []
        for c in compared:
            base, other = rows.at[0, c], rows.at[i, c]
            ok = not (missing(base) or missing(other)) and float(base) != 0
            ratios.append(f"×{figures.plain(float(other) / float(base))}" if ok else NO_VALUE)
        data[f"{label_} / {labels[0]}"] = ratios
    return Table.plain(pd.DataFrame(data))


def live_table(levels: pd.DataFrame) -> Table:
    """The levels of a run not built yet, from its raw rows so far (queries.live_levels): provisional."""
    levels = levels.reset_index(drop=True)
    frame = figures.frame(
        levels,
        [
            "experiment_name",
            "payload_file",
            "concurrency",
            "request_count",
            "error_count",
            "latency_p50",
            "latency_p95",
            "latency_p99",
            "ttft_p50",
            "transactions_per_minute",
        ],
    )
    table = Table.plain(frame)
    table.notes = _caution_percentiles(levels, frame, table.states)
    return table
