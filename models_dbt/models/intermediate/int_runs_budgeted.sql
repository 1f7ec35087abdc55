with

runs as (
    select * from {{ ref('stg_raw__runs') }}
    where not is_excluded
),

settings as (
    select * from {{ ref('stg_config__run_settings') }}
),

budgeted as (
    -- The config's current budgets (config.run_settings, by run_name) win over those the manifest recorded.
    select
        runs.run_id,
        runs.run_name,
        runs.status,
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
        coalesce(settings.latency_budget_s, runs.latency_budget_s) as latency_budget_s,
        coalesce(settings.cost_per_10k_txn_budget_usd, runs.cost_per_10k_txn_budget_usd)
            as cost_per_10k_txn_budget_usd,
        coalesce(settings.error_rate_budget, runs.error_rate_budget) as error_rate_budget,
        coalesce(settings.dataset_of_interest, runs.dataset_of_interest) as dataset_of_interest,
        -- The SLOs come whole from the same source as the budgets: a config that drops its SLOs drops them.
        case when settings.run_name is not null then settings.slo_ttft_s else runs.slo_ttft_s end as slo_ttft_s,
        case when settings.run_name is not null then settings.slo_tpot_s else runs.slo_tpot_s end as slo_tpot_s,
        case when settings.run_name is not null then settings.slo_e2e_s else runs.slo_e2e_s end as slo_e2e_s,
        case
            when settings.run_name is not null then settings.slo_attainment else runs.slo_attainment
        end as slo_attainment,
        case when settings.run_name is not null then 'run_settings' else 'manifest' end as budget_source
    from runs
    left join settings
        on runs.run_name = settings.run_name
)

select * from budgeted
