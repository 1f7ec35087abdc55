"""Every query the app and the report run: pure functions `(warehouse, ...) -> DataFrame` over `marts.*`.

Each call opens the warehouse read-only for the length of one query and closes it, so a `dbt build` or a
sweep is never blocked for longer than that. Per-request queries aggregate or LIMIT in SQL, so a run with
millions of requests still returns small frames.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, NamedTuple

import duckdb
import pandas as pd

from collector.errors import UserError
from collector.landing import collector_alive
from collector.outputs import figures
from collector.warehouse import WarehouseBusy
from collector.warehouse import connect as open_warehouse

LOCK_RETRY_S = 2.0
RUN_HINT = "Run `python -m collector run` to benchmark an endpoint"
BUILD_HINT = "or `python -m collector build` to build the marts from the runs already collected."


class WarehouseUnavailable(UserError):
    """The warehouse cannot be read (yet); `reason` says why and `hint` what to run."""

    def __init__(self, reason: str, hint: str) -> None:
        super().__init__(f"{reason} {hint}")
        self.reason = reason
        self.hint = hint


class WarehouseMissing(WarehouseUnavailable):
    """No warehouse file at the path."""


class WarehouseEmpty(WarehouseUnavailable):
    """The file exists but holds no marts, or no run."""


class WarehouseLocked(WarehouseUnavailable):
    """Another process (dbt, `collector build`) holds the write lock."""


class RequestFilter(NamedTuple):
    """Which requests of a run a per-request query looks at; an empty tuple means all."""

    experiments: tuple[str, ...] = ()
    payload_files: tuple[str, ...] = ()
    concurrencies: tuple[int, ...] = ()
    statuses: tuple[str, ...] = ()
    include_warmup: bool = False


@contextmanager
def connect(warehouse: str | Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection, closed on exit; waits up to LOCK_RETRY_S for a writer to finish."""
    path = Path(warehouse)
    if not path.is_file():
        raise WarehouseMissing(f"No warehouse at {path}.", f"{RUN_HINT} (it creates the warehouse).")
    with ExitStack() as stack:
        try:  # only the opening is translated into the app's words; the caller's own errors pass as they are
            con = stack.enter_context(open_warehouse(path, read_only=True, wait_s=LOCK_RETRY_S))
            # A table name that is missing must be an error, never a Python variable of the same name.
            con.execute("set python_enable_replacements = false")
        except WarehouseBusy as exc:
            raise WarehouseLocked(
                f"The warehouse {path} is being written by another process (a dbt build).",
                "Wait for `python -m collector build` (or the end of `python -m collector run`) and reload.",
            ) from exc
        except UserError as exc:
            reason = str(exc).removeprefix(f"cannot open warehouse {path}: ")
            raise WarehouseUnavailable(f"Cannot open the warehouse {path}: {reason}", RUN_HINT + ".") from exc
        yield con


def _frame(warehouse: str | Path, sql: str, params: dict[str, Any] | None = None) -> pd.DataFrame:
    with connect(warehouse) as con:
        try:
            return con.execute(sql, params or {}).df()
        except duckdb.CatalogException as exc:
            marts = con.execute("select count(*) from duckdb_tables() where schema_name = 'marts'").fetchall()[0][0]
            if marts == 0:
                raise WarehouseEmpty(
                    f"The warehouse {warehouse} has no marts yet.", f"{RUN_HINT}, {BUILD_HINT}"
                ) from exc
            first_line = str(exc).strip().splitlines()[0]
            raise WarehouseUnavailable(
                f"The marts in {warehouse} do not match this app ({first_line}).",
                "Rebuild them with `python -m collector build`.",
            ) from exc
        except duckdb.BinderException as exc:
            first_line = str(exc).strip().splitlines()[0]
            raise WarehouseUnavailable(
                f"The marts in {warehouse} do not match this app ({first_line}).",
                "Rebuild them with `python -m collector build`.",
            ) from exc


# ---- runs and level metrics --------------------------------------------------------------------------


def runs(warehouse: str | Path) -> pd.DataFrame:
    """dim_runs, and the runs landed since the last build (`is_live`: read from their manifests, their figures
    provisional until the build), newest first; a run recorded as running whose collector is gone from this
    host shows as lost."""
    built = "select *, false as is_live from marts.dim_runs"
    with connect(warehouse) as con:  # raw.runs is missing from a warehouse no run has refreshed
        has_raw = con.execute("select count(*) from duckdb_views() where schema_name = 'raw' and view_name = 'runs'")
        live = f" union all by name ({_LIVE_RUNS_SQL})" if has_raw.fetchone()[0] else ""  # type: ignore[index]
    frame = _frame(warehouse, f"{built}{live} order by started_at desc nulls last, run_id desc")
    return _judge_liveness(frame)


# A run whose manifest landed after the last build: what the app needs of dim_runs, from the manifest itself.
_LIVE_RUNS_SQL = """
    select
        run_id, run_name, status, status as recorded_status, started_at, ended_at, heartbeat_at, error_message,
        config_path, config_json::varchar as config_json, latency_budget_s, cost_per_10k_txn_budget_usd,
        error_rate_budget, dataset_of_interest, 'manifest' as budget_source, collector_version, hostname, pid,
        process_started_at,
        json_array_length(experiments_json) as experiment_count,
        (
            -- as int_levels_planned: closed levels, or a rate model's rates (a sweep's rates are found as it runs)
            select coalesce(sum(json_array_length(e, '$.payloads') * coalesce(
                json_array_length(e, '$.load.rates_per_s'), json_array_length(e, '$.concurrency_levels'))), 0)
            from (select unnest(json_extract(config_json, '$.experiments[*]')) as e)
        ) as planned_level_count,
        (
            select count(*) from (select unnest(json_extract_string(experiments_json, '$[*].endpoint_type')) as t)
            where t = 'simulated'
        ) as simulated_experiment_count,
        true as is_live
    from raw.runs
    where run_id not in (select run_id from marts.dim_runs)
    qualify row_number() over (partition by run_id order by heartbeat_at desc nulls last) = 1
"""


def _judge_liveness(frame: pd.DataFrame) -> pd.DataFrame:
    """Where the collector's host is this one, its process decides (no build needed): gone is lost now, alive is
    running even when the heartbeat frozen at the last build is old. Elsewhere dim_runs' heartbeat rule stands."""
    if frame.empty or "pid" not in frame.columns:
        return frame
    for i, row in frame[frame["recorded_status"] == "running"].iterrows():
        manifest = {
            "hostname": row["hostname"],
            "pid": None if pd.isna(row["pid"]) else int(row["pid"]),
            "process_started_at": None if pd.isna(row["process_started_at"]) else row["process_started_at"].isoformat(),
        }
        alive = collector_alive(manifest)
        if alive is not None:
            frame.at[i, "status"] = "running" if alive else "lost"
    return frame


def level_metrics(warehouse: str | Path, run_ids: Sequence[str]) -> pd.DataFrame:
    """fct_concurrency_metrics of some runs: one row per run, experiment, payload file and concurrency."""
    return _frame(
        warehouse,
        """
        select * from marts.fct_concurrency_metrics
        where list_contains($run_ids::varchar[], run_id)
        order by run_id, experiment_name, payload_file, concurrency, target_rate_rps
        """,
        {"run_ids": list(run_ids)},
    )


def recommendations(warehouse: str | Path, run_ids: Sequence[str]) -> pd.DataFrame:
    """fct_recommendations of some runs: one row per run, payload file and experiment."""
    return _frame(
        warehouse,
        """
        select * from marts.fct_recommendations
        where list_contains($run_ids::varchar[], run_id)
        order by run_id, payload_file, experiment_name
        """,
        {"run_ids": list(run_ids)},
    )


def failed_experiments(warehouse: str | Path, run_id: str) -> pd.DataFrame:
    """fct_failed_experiments of a run: the levels that miss at least one budget."""
    return _frame(
        warehouse,
        """
        select * from marts.fct_failed_experiments
        where run_id = $run_id
        order by is_dataset_of_interest desc, experiment_name, payload_file, concurrency, target_rate_rps
        """,
        {"run_id": run_id},
    )


def level_errors(warehouse: str | Path, run_ids: Sequence[str]) -> pd.DataFrame:
    """fct_level_errors of some runs: per level and error type, how many measured requests failed so."""
    return _frame(
        warehouse,
        """
        select * from marts.fct_level_errors
        where list_contains($run_ids::varchar[], run_id)
        order by run_id, experiment_name, payload_file, concurrency, target_rate_rps, request_count desc, error_type
        """,
        {"run_ids": list(run_ids)},
    )


def unmeasured_levels(warehouse: str | Path, run_id: str) -> pd.DataFrame:
    """fct_unmeasured_levels of a run: the planned levels without a measured request, in sweep order."""
    return _frame(
        warehouse,
        "select * from marts.fct_unmeasured_levels where run_id = $run_id order by unmeasured_position",
        {"run_id": run_id},
    )


def experiment_costs(warehouse: str | Path, run_id: str) -> pd.DataFrame:
    """fct_experiment_costs of a run: what benchmarking each experiment cost."""
    return _frame(
        warehouse,
        "select * from marts.fct_experiment_costs where run_id = $run_id order by experiment_start_offset_ns",
        {"run_id": run_id},
    )


def endpoint_metrics(warehouse: str | Path, run_id: str) -> pd.DataFrame:
    """fct_endpoint_metrics of a run: telemetry summarised per experiment and concurrency window."""
    return _frame(
        warehouse,
        "select * from marts.fct_endpoint_metrics where run_id = $run_id order by window_start_offset_ns",
        {"run_id": run_id},
    )


def server_view(warehouse: str | Path, run_id: str) -> pd.DataFrame:
    """fct_level_server_view of a run: the engine's own metrics beside the client's, per level (none when no
    endpoint of the run exposed them)."""
    return _frame(
        warehouse,
        "select * from marts.fct_level_server_view where run_id = $run_id "
        "order by experiment_name, payload_file, concurrency",
        {"run_id": run_id},
    )


def telemetry_bands(warehouse: str | Path, run_id: str) -> pd.DataFrame:
    """fct_endpoint_metrics unpivoted: one row per level window and measure, with min/p25/p50/p75/max.

    Window ends are seconds since the run started (the monotonic clock the telemetry shares).
    """
    parts = [
        f"""
        select
            experiment_name, concurrency, sample_count,
            window_start_offset_ns / 1e9 as window_start_s,
            window_end_offset_ns / 1e9 as window_end_s,
            '{label}' as measure, '{unit}' as unit, {order} as measure_order,
            {prefix}_min as min, {prefix}_p25 as p25, {prefix}_p50 as p50, {prefix}_p75 as p75, {prefix}_max as max
        from marts.fct_endpoint_metrics
        where run_id = $run_id
        """
        for order, (prefix, label, unit) in enumerate((f.column, f.label, f.unit) for f in figures.TELEMETRY)
    ]
    return _frame(
        warehouse,
        " union all ".join(parts) + " order by measure_order, window_start_s",
        {"run_id": run_id},
    )


# At 1 Hz a run of an hour is 3,600 instants; longer runs are averaged into at most about this many points
# (a browser and the report's PNG draw a few thousand points well; Altair refuses inline data over 5,000 rows).
TELEMETRY_MAX_POINTS = 3600


def telemetry_samples(warehouse: str | Path, run_id: str, max_points: int = TELEMETRY_MAX_POINTS) -> pd.DataFrame:
    """fct_telemetry_samples of a run in time order: one row per sampling instant, with its level window.

    A run with more than `max_points` instants is averaged over runs of `ceil(n / max_points)` consecutive
    instants (never across a concurrency window's edge); `sample_count` says how many instants a row holds
    (1 when nothing was averaged) and its times are those of its first instant.
    """
    return _frame(
        warehouse,
        """
        with samples as (
            select * from marts.fct_telemetry_samples where run_id = $run_id
        ),
        step as (
            select greatest(1, ceil(count(*) / $max_points))::bigint as every from samples
        ),
        numbered as (
            select samples.*, (row_number() over (order by samples.offset_ns) - 1) // step.every as bucket
            from samples cross join step
        )
        select
            run_id,
            min(offset_ns) as offset_ns,
            min(seconds_since_run_start) as seconds_since_run_start,
            min(sampled_at) as sampled_at,
            experiment_name,
            concurrency,
            max(gpu_count) as gpu_count,
            avg(cpu_percent) as cpu_percent,
            avg(host_memory_used_gib) as host_memory_used_gib,
            avg(gpu_utilization_percent) as gpu_utilization_percent,
            avg(gpu_memory_used_gib) as gpu_memory_used_gib,
            avg(gpu_memory_total_gib) as gpu_memory_total_gib,
            avg(gpu_power_w) as gpu_power_w,
            count(*) as sample_count
        from numbered
        group by run_id, bucket, experiment_name, concurrency
        order by offset_ns
        """,
        {"run_id": run_id, "max_points": max(1, int(max_points))},
    )


# ---- budget preview ----------------------------------------------------------------------------------

# ---- during a run: provisional figures from the raw rows ---------------------------------------------

# The level figures of int_levels_aggregated over the raw rows landed so far, for a run not built yet (the app
# marks them provisional). tests/dbt/test_live_levels_twin.py holds them equal to the marts once built.
_LIVE_LEVELS_SQL = """
    with timed as (
        select
            *,
            status = 'success' as is_success,
            e2e_ns / 1e9 as e2e_latency_s,
            first_content_ns / 1e9 as ttft_s,
            start_offset_ns + e2e_ns as end_offset_ns,
            max(start_offset_ns) over (partition by experiment_name, payload_file, concurrency) as last_start_ns
        from raw.requests
        where run_id = $run_id and not is_warmup
    ),
    measured as (  -- the steady state: ended by the first end after the last start (int_levels_aggregated)
        select
            *,
            end_offset_ns <= min(case when end_offset_ns > last_start_ns then end_offset_ns end) over (
                partition by experiment_name, payload_file, concurrency
            ) as is_steady
        from timed
    ),
    aggregated as (
        select
            run_id, experiment_name, model_id, payload_file, concurrency,
            count(*) as request_count,
            count(*) filter (where is_success) as success_count,
            count(*) filter (where not is_success) as error_count,
            count(*) filter (where not is_success) / count(*) as error_rate,
            quantile_cont(e2e_latency_s, 0.50) filter (where is_success) as latency_p50,
            quantile_cont(e2e_latency_s, 0.95) filter (where is_success) as latency_p95,
            quantile_cont(e2e_latency_s, 0.99) filter (where is_success) as latency_p99,
            quantile_cont(ttft_s, 0.50) filter (where is_success) as ttft_p50,
            coalesce(sum(prompt_tokens) filter (where is_success), 0) as success_prompt_tokens,
            coalesce(sum(completion_tokens) filter (where is_success), 0) as success_completion_tokens,
            (max(end_offset_ns) - min(start_offset_ns)) / 1e9 as duration_s,
            min(start_offset_ns) as level_start_offset_ns,
            count(*) filter (where is_steady and is_success) as steady_success_count,
            count(*) filter (where is_steady) as steady_request_count,
            sum(e2e_latency_s) filter (where is_steady) as steady_latency_sum_s,
            coalesce(sum(prompt_tokens) filter (where is_steady and is_success), 0) as steady_prompt_tokens,
            coalesce(sum(completion_tokens) filter (where is_steady and is_success), 0) as steady_completion_tokens
        from measured
        group by all
    ),
    slotted as (  -- at least one steady-state request per slot, as int_levels_aggregated requires
        select *, case when steady_request_count >= concurrency then steady_latency_sum_s end as steady_slot_time_s
        from aggregated
    )
    select
        *,
        coalesce(
            concurrency * steady_prompt_tokens / nullif(steady_slot_time_s, 0),
            success_prompt_tokens / nullif(duration_s, 0)
        ) as prompt_token_throughput,
        coalesce(
            concurrency * steady_completion_tokens / nullif(steady_slot_time_s, 0),
            success_completion_tokens / nullif(duration_s, 0)
        ) as completion_token_throughput,
        coalesce(
            concurrency * steady_success_count * 60 / nullif(steady_slot_time_s, 0),
            success_count * 60 / nullif(duration_s, 0)
        ) as transactions_per_minute,
        success_count < 20 as is_p95_undersampled,
        success_count < 100 as is_p99_undersampled
    from slotted
    order by level_start_offset_ns
"""


def live_levels(warehouse: str | Path, run_id: str) -> pd.DataFrame:
    """Per level of a run not built yet: counts, latency percentiles, TTFT p50 and throughputs from its raw
    rows so far (the level in progress included), in the order the levels started. Provisional."""
    return _frame(warehouse, _LIVE_LEVELS_SQL, {"run_id": run_id})


# The verdict and recommendation rules of fct_concurrency_metrics and fct_recommendations, applied to
# budgets the user is trying out. The marts stay the authority; this is a preview until a rebuild.
_PREVIEW_LEVELS_SQL = """
    select
        levels.*,
        coalesce(levels.success_count > 0 and levels.latency_p95 <= $latency_budget_s, false)
            as preview_meets_latency_budget,
        case when levels.pricing_kind is distinct from 'unpriced' then
            coalesce(levels.success_count > 0 and 10000 * levels.price_per_txn <= $cost_budget_usd, false)
        end as preview_meets_cost_budget,
        coalesce(levels.success_count > 0 and levels.error_rate <= $error_rate_budget, false)
            as preview_meets_error_budget,
        -- The SLOs are not on trial: the marts' SLO verdict stands.
        preview_meets_latency_budget and coalesce(preview_meets_cost_budget, true) and preview_meets_error_budget
            and coalesce(levels.meets_slo, true) and coalesce(levels.is_schedule_kept, true)
            and not coalesce(levels.is_saturated, false) as preview_meets_all_budgets
    from marts.fct_concurrency_metrics as levels
    where levels.run_id = $run_id
"""


def _budget_params(run_id: str, latency_budget_s: float, cost_budget_usd: float, error_rate_budget: float) -> dict:
    return {
        "run_id": run_id,
        "latency_budget_s": float(latency_budget_s),
        "cost_budget_usd": float(cost_budget_usd),
        "error_rate_budget": float(error_rate_budget),
    }


def preview_levels(
    warehouse: str | Path, run_id: str, latency_budget_s: float, cost_budget_usd: float, error_rate_budget: float
) -> pd.DataFrame:
    """fct_concurrency_metrics of a run with `preview_meets_*` verdicts under other budgets."""
    return _frame(
        warehouse,
        _PREVIEW_LEVELS_SQL + " order by experiment_name, payload_file, concurrency, target_rate_rps",
        _budget_params(run_id, latency_budget_s, cost_budget_usd, error_rate_budget),
    )


def preview_recommendations(
    warehouse: str | Path, run_id: str, latency_budget_s: float, cost_budget_usd: float, error_rate_budget: float
) -> pd.DataFrame:
    """Per experiment and payload file: the highest level passing the trial budgets, and the best row."""
    return _frame(
        warehouse,
        f"""
        with levels as ({_PREVIEW_LEVELS_SQL}),
        candidates as (
            select run_id, experiment_name, payload_file, any_value(model_id) as model_id,
                any_value(instance_type) as instance_type, any_value(instance_count) as instance_count,
                any_value(pricing_kind) as pricing_kind, any_value(pricing_model) as pricing_model,
                bool_or(is_dataset_of_interest) as is_dataset_of_interest,
                count(*) filter (where preview_meets_all_budgets) as passing_level_count
            from levels
            group by run_id, experiment_name, payload_file
        ),
        best_levels as (
            select * from levels
            where preview_meets_all_budgets
            qualify row_number() over (
                partition by experiment_name, payload_file order by target_rate_rps desc nulls last, concurrency desc
            ) = 1
        ),
        joined as (
            select
                candidates.*,
                best_levels.run_id is not null as has_recommendation,
                best_levels.concurrency, best_levels.target_rate_rps, best_levels.latency_p50, best_levels.latency_p95,
                best_levels.prompt_token_count_mean, best_levels.completion_token_count_mean,
                best_levels.transactions_per_minute, best_levels.cost_per_10k_txn,
                best_levels.cost_per_10k_good_requests,
                -- as fct_recommendations: with SLOs set, a good request's price ranks
                case when coalesce(best_levels.slo_ttft_s, best_levels.slo_tpot_s, best_levels.slo_e2e_s) is not null
                    then best_levels.cost_per_10k_good_requests else best_levels.cost_per_10k_txn end as ranking_cost
            from candidates
            left join best_levels
                on candidates.experiment_name = best_levels.experiment_name
                and candidates.payload_file = best_levels.payload_file
        ),
        rankable as (  -- as fct_recommendations: an unpriced row has no price performance to rank
            select *,
                coalesce(has_recommendation and is_dataset_of_interest and ranking_cost is not null, false)
                    as is_rankable
            from joined
        ),
        ranked as (
            select *,
                case when is_rankable then row_number() over (
                    partition by is_rankable
                    order by ranking_cost asc, transactions_per_minute desc, experiment_name, payload_file
                ) end as price_performance_rank
            from rankable
        )
        select * exclude (price_performance_rank, is_rankable, ranking_cost),
            coalesce(price_performance_rank = 1, false) as is_best_price_performance
        from ranked
        order by payload_file, experiment_name
        """,
        _budget_params(run_id, latency_budget_s, cost_budget_usd, error_rate_budget),
    )


# ---- requests ----------------------------------------------------------------------------------------


def _request_where(run_id: str, filters: RequestFilter) -> tuple[str, dict[str, Any]]:
    clauses = ["run_id = $run_id"]
    params: dict[str, Any] = {"run_id": run_id}
    for column, values, sql_type in (
        ("experiment_name", filters.experiments, "varchar"),
        ("payload_file", filters.payload_files, "varchar"),
        ("concurrency", filters.concurrencies, "integer"),
        ("status", filters.statuses, "varchar"),
    ):
        if values:
            clauses.append(f"list_contains(${column}::{sql_type}[], {column})")
            params[column] = list(values)
    if not filters.include_warmup:
        clauses.append("not is_warmup")
    return " and ".join(clauses), params


def request_options(warehouse: str | Path, run_id: str) -> pd.DataFrame:
    """Request counts per experiment, payload file, concurrency and status: the filters' choices."""
    return _frame(
        warehouse,
        """
        select experiment_name, payload_file, concurrency, status, count(*) as request_count,
            count(*) filter (where is_warmup) as warmup_count
        from marts.fct_requests
        where run_id = $run_id
        group by all
        order by all
        """,
        {"run_id": run_id},
    )


def request_summary(warehouse: str | Path, run_id: str, filters: RequestFilter) -> pd.DataFrame:
    """One row: how many requests match, and how many of them failed."""
    where, params = _request_where(run_id, filters)
    return _frame(
        warehouse,
        f"""
        select count(*) as request_count, count(*) filter (where status = 'error') as error_count,
            count(*) filter (where is_warmup) as warmup_count
        from marts.fct_requests where {where}
        """,
        params,
    )


def request_rows(warehouse: str | Path, run_id: str, filters: RequestFilter, limit: int = 500) -> pd.DataFrame:
    """The first `limit` matching requests in the order they were sent."""
    where, params = _request_where(run_id, filters)
    params["limit"] = int(limit)
    return _frame(
        warehouse,
        f"""
        select request_id, experiment_name, payload_file, concurrency, is_warmup, started_at, status,
            http_status, error_type, e2e_latency_s, ttft_s, tpot_s, prompt_tokens, completion_tokens,
            finish_reason, cost_usd, error_message
        from marts.fct_requests where {where}
        order by start_offset_ns, request_id
        limit $limit
        """,
        params,
    )


def request_histograms(warehouse: str | Path, run_id: str, filters: RequestFilter, bins: int = 40) -> pd.DataFrame:
    """Binned e2e latency, TTFT and TPOT of the matching successful requests, per experiment.

    One row per metric, experiment and non-empty bin: bin_start, bin_end (seconds) and request_count.
    """
    where, params = _request_where(run_id, filters)
    params["bins"] = int(bins)
    return _frame(
        warehouse,
        f"""
        with matching as (
            select experiment_name, e2e_latency_s, ttft_s, tpot_s
            from marts.fct_requests where {where} and status = 'success'
        ),
        long as (
            unpivot matching on e2e_latency_s, ttft_s, tpot_s into name metric value value_s
        ),
        bounds as (
            select metric, min(value_s) as lo,
                case when max(value_s) > min(value_s) then (max(value_s) - min(value_s)) / $bins else 0.001 end
                    as width
            from long group by metric
        ),
        binned as (
            select long.metric, long.experiment_name, bounds.lo, bounds.width,
                least(floor((long.value_s - bounds.lo) / bounds.width), $bins - 1) as bin
            from long inner join bounds on long.metric = bounds.metric
        )
        select metric, experiment_name, lo + bin * width as bin_start, lo + (bin + 1) * width as bin_end,
            count(*) as request_count
        from binned
        group by all
        order by metric, experiment_name, bin_start
        """,
        params,
    )


def request_sample(warehouse: str | Path, run_id: str, filters: RequestFilter, size: int = 4000) -> pd.DataFrame:
    """A repeatable random sample of matching requests (prompt tokens vs latency scatter)."""
    where, params = _request_where(run_id, filters)
    params["size"] = int(size)
    return _frame(
        warehouse,
        f"""
        select * from (
            select request_id, experiment_name, payload_file, concurrency, status, prompt_tokens,
                completion_tokens, e2e_latency_s, ttft_s
            from marts.fct_requests where {where}
        )
        order by hash(request_id)
        limit $size
        """,
        params,
    )


def request_errors(warehouse: str | Path, run_id: str, filters: RequestFilter, limit: int = 200) -> pd.DataFrame:
    """Failed requests grouped by where they happened and their message, most frequent first."""
    where, params = _request_where(run_id, filters)
    params["limit"] = int(limit)
    return _frame(
        warehouse,
        f"""
        select experiment_name, payload_file, concurrency, error_type, http_status, error_message,
            count(*) as request_count, min(started_at) as first_seen_at
        from marts.fct_requests where {where} and status = 'error'
        group by all
        order by request_count desc, experiment_name, payload_file, concurrency
        limit $limit
        """,
        params,
    )
