"""Every sentence the outputs write about a run, built once from mart rows: the recommendations and the best
price performance (in FMBench's words), the budgets, why a level's figures are what they are (errors,
under-sampled percentiles), which planned levels were never measured, and the verdict lines.

Figures inside sentences follow the one precision rule of `figures`. Sentences are plain text; a caller that
renders Markdown escapes the values it puts in (`code` formats names).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeAlias

import pandas as pd

from collector.outputs.figures import figure, missing
from collector.outputs.precision import NO_VALUE, flag

Row: TypeAlias = Mapping[str, Any] | pd.Series
Code: TypeAlias = Callable[[str], str]

# error_type (collector/schema.py RequestRow.error_type) as the verb phrase a count reads with: "12 timed out".
ERROR_PHRASES = {
    "timeout": "timed out",
    "http_error": "got an HTTP error",
    "connect_error": "could not connect",
    "connection_reset": "lost the connection",
    "stream_cut": "had their stream cut",
    "malformed_response": "got a malformed reply",
    "client_error": "failed in the collector's own host",
    "cancelled": "were cut off by the interruption",
}
UNDERSAMPLED_MARK = "†"
UNDERSAMPLED_NOTE = (
    f"{UNDERSAMPLED_MARK} from fewer successful requests than the percentile needs (20 for a p95, 100 for a p99): "
    "read it as the slowest request, not a tail estimate."
)
SURVIVORS_NOTE = "Where requests failed, latency figures describe only the requests that succeeded."


def _plain_code(name: str) -> str:
    return name


def _budget(value: Any) -> str:
    """A budget as the user wrote it: 2, 0.3, 20 (no trailing zeros)."""
    return "–" if missing(value) else f"{float(value):g}"


def serving(row: Row) -> str:
    """Instance type with its count (`2 × g5.4xlarge`), the model's API when token-priced, or `unpriced
    endpoint` for an endpoint benchmarked without a price and without an instance type."""
    instance = row.get("instance_type")
    if missing(instance) or not instance:
        if row.get("pricing_kind") == "unpriced":
            return "unpriced endpoint"
        return f"{row.get('model_id')} API"
    count = row.get("instance_count")
    if count is not None and not missing(count) and int(count) > 1:
        return f"{int(count)} × {instance}"
    return str(instance)


def pricing_model(row: Row) -> str:
    """How the row's endpoint bills (instance-hour, token, provisioned), else its pricing kind (`unpriced`, or an
    older mart's `instance` / `token`), else a dash."""
    for key in ("pricing_model", "pricing_kind"):
        value = row.get(key)
        if not missing(value) and value:
            return str(value)
    return NO_VALUE


SERVER_VIEW_SOURCES = {"cloudwatch": "CloudWatch", "service": "reported latency", "server": "/metrics"}


def server_view_source(source: Any) -> str:
    """fct_level_server_view.server_view_source in words: `vllm /metrics`, `sagemaker CloudWatch`, `bedrock
    reported latency`."""
    if missing(source) or ":" not in str(source):
        return NO_VALUE
    kind, name = str(source).split(":", 1)
    return f"{name} {SERVER_VIEW_SOURCES.get(kind, kind)}"


def server_view_intro(view: pd.DataFrame) -> str:
    """What the server's view of the levels shown is made of, source by source."""
    sources = set() if "server_view_source" not in view else {str(s).split(":")[0] for s in view["server_view_source"]}
    parts = []
    if not sources or "server" in sources:
        parts.append(
            "the engine's own Prometheus metrics over each level's measured window (its queue depth, running batch "
            "and KV-cache use; its token counters must match the client's totals exactly)"
        )
    if "cloudwatch" in sources:
        parts.append(
            "a SageMaker endpoint's CloudWatch metrics over the whole periods inside each level's measured window "
            "(ModelLatency and OverheadLatency, whose sum is the server's latency, and the endpoint's GPU use)"
        )
    if "service" in sources:
        parts.append("the latency Bedrock reported for each of the level's measured requests")
    return (
        f"The server's own view beside the client's: {'; '.join(parts)}. The latency gap is the network and the "
        "client's own overhead."
    )


def serving_phrase(row: Row, code: Code = _plain_code) -> str:
    """`serving` with its article: `a g5.4xlarge`, `2 × g5.4xlarge`, `the m API`, `an unpriced endpoint`."""
    where = serving(row)
    if where.endswith(" API"):
        return f"the {code(where.removesuffix(' API'))} API"
    if where.startswith("unpriced"):
        return f"an {where}"
    return code(where) if "×" in where else f"a {code(where)}"


SLO_OBJECTIVES = (
    ("slo_ttft_s", "TTFT", 1000, "ms"),
    ("slo_tpot_s", "TPOT", 1000, "ms"),
    ("slo_e2e_s", "latency", 1, "s"),
)


def slos(run: Row) -> str | None:
    """The run's SLOs as a phrase (`TTFT ≤ 500 ms and latency ≤ 2 s for 90% of requests`), or None without."""
    objectives = [
        f"{label} ≤ {_budget(float(run[key]) * scale)} {unit}"
        for key, label, scale, unit in SLO_OBJECTIVES
        if run.get(key) is not None and not missing(run.get(key))
    ]
    if not objectives:
        return None
    return f"{' and '.join(objectives)} for {figure('slo_attainment').with_unit(run.get('slo_attainment'))} of requests"


def criteria(budgets: Row) -> str:
    """The configured budgets (and SLOs, where the run sets them) as one plain phrase: `latency p95 <= 2 s,
    cost per 10k transactions <= $20, error rate <= 0`."""
    phrase = (
        f"latency p95 ≤ {_budget(budgets['latency_budget_s'])} s, cost per 10k transactions ≤ "
        f"${_budget(budgets['cost_per_10k_txn_budget_usd'])}, error rate ≤ {_budget(budgets['error_rate_budget'])}"
    )
    objectives = slos(budgets)
    return phrase if objectives is None else f"{phrase}, SLOs {objectives}"


def budget_phrase(budgets: Row, pricing_kind: Any) -> str:
    """The budgets in the reference's words, for a recommendation (cost left out for an unpriced experiment)."""
    if pricing_kind == "unpriced":
        others = (
            f"with an error-rate budget of {_budget(budgets['error_rate_budget'])}; unpriced, so cost is not judged"
        )
    else:
        others = (
            f"with a cost budget of ${_budget(budgets['cost_per_10k_txn_budget_usd'])} per 10k transactions and "
            f"an error-rate budget of {_budget(budgets['error_rate_budget'])}"
        )
    return f"a latency budget of {_budget(budgets['latency_budget_s'])} seconds ({others})"


def _with_unit(column: str, row: Row) -> str:
    return figure(column).with_unit(row.get(column))


def load_phrase(level: Row) -> str:
    """A level's load in words: `a concurrency level of 4`, or for an open-loop level `a request rate of 12.6
    per second (open loop)`."""
    rate = level.get("target_rate_rps")
    if missing(rate):
        return f"a concurrency level of {figure('concurrency').text(level['concurrency'])}"
    return f"a request rate of {figure('target_rate_rps').text(rate)} per second (open loop)"


def open_loop_verdicts(levels: pd.DataFrame) -> list[str]:
    """One sentence per open-loop level the marts set apart: a schedule the client did not keep (the level is
    invalid) and a queue that grew through the level (saturated)."""
    out = []
    for _, level in levels.iterrows():
        if missing(level.get("target_rate_rps")):
            continue
        name = f"{level['experiment_name']} on {level['payload_file']} at {load_phrase(level)}"
        if flag(level.get("is_schedule_kept")) is False:
            out.append(
                f"{name} is invalid: the client sent its requests up to {_with_unit('send_lag_p99', level)} late "
                "(p99) against its schedule, so it did not offer that rate; it meets no budget."
            )
        if flag(level.get("is_saturated")):
            out.append(
                f"{name} saturated: the median TTFT rose from {_with_unit('first_third_ttft_p50', level)} to "
                f"{_with_unit('last_third_ttft_p50', level)} through the level (the queue grew); its throughput is "
                "the most the server delivered, and it meets no budget."
            )
    return out


def recommendation(rec: Row, budgets: Row | None = None, *, preview: bool = False, code: Code = _plain_code) -> str:
    """A fct_recommendations row (or a preview row) as FMBench's per-instance sentence; `budgets` default to
    the row's own; `preview` words it as what the trial budgets would give."""
    budgets = rec if budgets is None else budgets
    phrase = budget_phrase(budgets, rec.get("pricing_kind"))
    experiment, bucket = code(str(rec["experiment_name"])), code(str(rec["payload_file"]))
    where = serving_phrase(rec, code)
    if not bool(rec["has_recommendation"]):
        verb = "would find" if preview else "found"
        return (
            f"Experiment {experiment} on {where} {verb} no concurrency level for the {bucket} dataset staying "
            f"within {phrase}."
        )
    load = load_phrase(rec)
    opening = (
        f"The best option for staying within {phrase} on {where} for the {bucket} dataset with experiment "
        f"{experiment} {'would be' if preview else 'is'} {load}."
    )
    return (
        f"{opening} {load[0].upper()}{load[1:]} achieves a median latency of {_with_unit('latency_p50', rec)}, for "
        f"an average prompt size of {_with_unit('prompt_token_count_mean', rec)} and completion size of "
        f"{_with_unit('completion_token_count_mean', rec)} with "
        f"{figure('transactions_per_minute').text(rec['transactions_per_minute'])} transactions/minute."
    )


def best_price_performance(rec: Row, code: Code = _plain_code) -> str:
    """The Summary's sentence naming the run's best price performance (a row with is_best_price_performance);
    where the run sets SLOs it was ranked by, and names, the cost of good requests."""
    if rec.get("ranked_by") == "cost_per_10k_good_requests":
        price = (
            f"{figure('cost_per_10k_good_requests').text(rec['cost_per_10k_good_requests'])} per 10k good requests "
            f"({figure('cost_per_10k_txn').text(rec['cost_per_10k_txn'])} per 10k transactions, "
            f"{_with_unit('slo_attainment', rec)} of them good)"
        )
    else:
        price = f"{figure('cost_per_10k_txn').text(rec['cost_per_10k_txn'])} per 10k transactions"
    return (
        f"The best price performance for dataset {code(str(rec['dataset_of_interest']))} is provided by experiment "
        f"{code(str(rec['experiment_name']))} ({code(str(rec['model_id']))}) on {serving_phrase(rec, code)} at "
        f"{load_phrase(rec)}: {price} at "
        f"{figure('transactions_per_minute').text(rec['transactions_per_minute'])} transactions/minute, with a p95 "
        f"latency of {_with_unit('latency_p95', rec)}."
    )


def error_breakdown(errors: pd.DataFrame) -> str:
    """fct_level_errors rows of one level as `2 timed out (no complete response within 1.5 s); 1 got an HTTP
    error (HTTP 503: overloaded)`, the most frequent type first."""
    ordered = errors.sort_values(["request_count", "error_type"], ascending=[False, True])
    parts = []
    for _, e in ordered.iterrows():
        phrase = ERROR_PHRASES.get(str(e["error_type"]), f"failed ({e['error_type']})")
        message = e.get("example_message")
        example = "" if missing(message) or not str(message).strip() else f" ({str(message).strip()})"
        parts.append(f"{int(e['request_count']):,} {phrase}{example}")
    return "; ".join(parts)


def level_errors(level: Row, errors: pd.DataFrame) -> str | None:
    """Why a level's figures are what they are when requests failed, or None without failures:
    `All 12 requests failed: 12 timed out (...)` or `3 of 12 requests failed: ... Latency describes the 9 that
    succeeded.` `errors` are the level's fct_level_errors rows."""
    failed = int(level.get("error_count") or 0)
    if failed == 0:
        return None
    total = int(level["request_count"])
    what = error_breakdown(errors) if not errors.empty else f"{failed:,} failed"
    if failed >= total:
        return f"All {total:,} requests failed: {what}. No latency, throughput or price describes this level."
    succeeded = total - failed
    return (
        f"{failed:,} of {total:,} requests failed: {what}. Latency figures describe the {succeeded:,} that succeeded."
    )


def errors_of(level: Row, errors: pd.DataFrame) -> pd.DataFrame:
    """The fct_level_errors rows of one level."""
    if errors.empty:
        return errors
    keys = ("run_id", "experiment_name", "payload_file", "concurrency")
    mask = pd.Series(True, index=errors.index)
    for key in keys:
        if key in errors and key in level:
            mask &= errors[key] == level[key]
    return errors[mask]


def errors_by_level(
    levels: pd.DataFrame, errors: pd.DataFrame, code: Code = _plain_code, text: Code = _plain_code
) -> list[str]:
    """`vllm c=8 on big: All 12 requests failed: ...` for every level of `levels` with a failed request, in
    their order; `errors` are the fct_level_errors rows (of these levels or more). `text` escapes the sentence,
    which quotes the servers' messages."""
    lines = []
    for _, level in levels[levels["error_count"].fillna(0) > 0].iterrows():
        if sentence := level_errors(level, errors_of(level, errors)):
            lines.append(f"{level_label(level, code)}: {text(sentence)}")
    return lines


def level_label(row: Row, code: Code = _plain_code) -> str:
    """`vllm c=8 on en_1-500`: one level named in a sentence."""
    return f"{code(str(row['experiment_name']))} c={int(row['concurrency'])} on {code(str(row['payload_file']))}"


def unmeasured(run: Row, unmeasured_levels: pd.DataFrame, code: Code = _plain_code, most: int = 6) -> str | None:
    """Which planned levels have no measured request, or None when every one was measured."""
    count = len(unmeasured_levels)
    if count == 0:
        return None
    planned = run.get("planned_level_count")
    of = "" if planned is None or missing(planned) or int(planned) < count else f" of {int(planned)}"
    status = str(run.get("status"))
    why = {
        "running": "are still to come (the run is collecting)",
        "interrupted": "were not measured: the run was interrupted",
        "failed": "were not measured: the run failed",
        "lost": "were not measured: the run's collector stopped without finishing",
    }.get(status, "have no measured request")
    ordered = (
        unmeasured_levels.sort_values("unmeasured_position")
        if "unmeasured_position" in unmeasured_levels
        else unmeasured_levels
    )
    names = [level_label(r, code) for _, r in ordered.head(most).iterrows()]
    more = f" and {count - most} more" if count > most else ""
    return f"{count}{of} planned levels {why}: {', '.join(names)}{more}."


def verdict(
    run: Row, recs: pd.DataFrame, failed: pd.DataFrame, unmeasured_levels: pd.DataFrame
) -> tuple[str | None, str]:
    """(the Summary's no-best line or None when a best row exists, the Failed experiments line): consistent by
    construction, so a run never reads both 'no experiment met every budget' and 'all satisfied the criteria'."""
    doi = str(run.get("dataset_of_interest"))
    doi_recs = recs[recs["is_dataset_of_interest"]] if not recs.empty else recs
    has_best = bool(not recs.empty and recs["is_best_price_performance"].any())
    partial = len(unmeasured_levels) > 0
    no_best: str | None = None
    if not has_best:
        if doi_recs.empty:
            no_best = f"No level of the dataset of interest {doi} was measured, so there is no best price performance."
        elif not doi_recs["has_recommendation"].any():
            no_best = (
                f"No experiment met every budget on the dataset of interest {doi} ({criteria(run)}), so there is "
                "no best price performance."
            )
        else:
            no_best = (
                f"The levels that met every budget on the dataset of interest {doi} are unpriced, so none is ranked "
                "on price performance."
            )
    measured = "measured levels" if partial else "levels"
    if failed.empty:
        line = f"All {measured} met the configured budgets: {criteria(run)}."
    else:
        n = len(failed)
        line = f"{n} {'level' if n == 1 else 'levels'} missed at least one configured budget: {criteria(run)}."
    return no_best, line


def remote_telemetry_note(metrics: pd.DataFrame, code: Code = _plain_code) -> str | None:
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


def unpriced_note(levels: pd.DataFrame, code: Code = _plain_code) -> str | None:
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


def token_total_mismatches(view: pd.DataFrame, code: Code = _plain_code) -> list[str]:
    """`vllm c=8 on en_1-500: the server counted 5 output tokens more than the client recorded ...` for every level
    of fct_level_server_view whose token totals disagree, in its order."""
    lines = []
    for _, level in view[view["is_token_total_mismatch"].fillna(False).astype(bool)].iterrows():
        parts = []
        for column, what in (("prompt_tokens_difference", "prompt"), ("completion_tokens_difference", "output")):
            diff = level[column]
            if not missing(diff) and diff != 0:
                more = "more" if diff > 0 else "fewer"
                parts.append(f"{abs(int(diff)):,} {what} tokens {more}")
        counted = " and ".join(parts)
        lines.append(
            f"{level_label(level, code)}: the server counted {counted} than the client recorded over the measured "
            "window (a request the client gave up on, a failed request, or a miscount)."
        )
    return lines
