with

runs as (
    select * from {{ ref('int_runs_budgeted') }}
),

experiments as (
    select * from {{ ref('int_experiments_priced') }}
),

requests as (
    select * from {{ ref('stg_raw__requests') }}
),

planned_levels as (
    select * from {{ ref('int_levels_planned') }}
),

measured_levels as (
    select * from {{ ref('int_levels_aggregated') }}
),

planned_counts as (
    select
        run_id,
        count(*) as planned_level_count
    from planned_levels
    group by run_id
),

measured_counts as (
    -- Levels with a measured request (which a config without a plan also has).
    select
        run_id,
        count(*) as measured_level_count
    from measured_levels
    group by run_id
),

experiment_counts as (
    select
        run_id,
        count(*) as experiment_count,
        count(*) filter (where endpoint_type = 'simulated') as simulated_experiment_count,
        {{ string_agg_distinct_sorted('price_source', "', '") }} as price_source
    from experiments
    group by run_id
),

request_counts as (
    -- Counted from staging, so a run also says how many of its landed rows no metric includes.
    select
        run_id,
        count(*) filter (where not is_excluded) as request_count,
        count(*) filter (where not is_excluded and status != 'success') as error_count,
        count(*) filter (where is_excluded) as excluded_request_count,
        count(*) filter (where not is_excluded and data_issue is not null) as flagged_request_count
    from requests
    group by run_id
),

summarised as (
    select
        runs.run_id,
        runs.run_name,
        runs.status as recorded_status,
        runs.started_at,
        runs.ended_at,
        runs.heartbeat_at,
        runs.error_message,
        runs.config_path,
        runs.config_json,
        runs.collector_version,
        runs.hostname,
        runs.pid,
        runs.process_started_at,
        runs.source_tool,
        runs.source_file,
        runs.latency_budget_s,
        runs.cost_per_10k_txn_budget_usd,
        runs.error_rate_budget,
        runs.dataset_of_interest,
        runs.slo_ttft_s,
        runs.slo_tpot_s,
        runs.slo_e2e_s,
        runs.slo_attainment,
        runs.budget_source,
        experiment_counts.price_source,
        coalesce(experiment_counts.experiment_count, 0) as experiment_count,
        coalesce(experiment_counts.simulated_experiment_count, 0) as simulated_experiment_count,
        coalesce(request_counts.request_count, 0) as request_count,
        coalesce(request_counts.error_count, 0) as error_count,
        coalesce(request_counts.excluded_request_count, 0) as excluded_request_count,
        coalesce(request_counts.flagged_request_count, 0) as flagged_request_count,
        coalesce(planned_counts.planned_level_count, 0) as planned_level_count,
        coalesce(measured_counts.measured_level_count, 0) as measured_level_count
    from runs
    left join experiment_counts
        on runs.run_id = experiment_counts.run_id
    left join request_counts
        on runs.run_id = request_counts.run_id
    left join planned_counts
        on runs.run_id = planned_counts.run_id
    left join measured_counts
        on runs.run_id = measured_counts.run_id
)

select * from summarised
