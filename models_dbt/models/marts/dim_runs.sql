with

runs as (
    select * from {{ ref('int_runs_summarised') }}
),

final as (
    select
        run_id,
        run_name,
        -- Judged each time the view is read, so a run killed after the last build shows as lost without a
        -- rebuild: its manifest still says running but its heartbeat (every 5 s) stopped over 60 s ago. The
        -- collector also records lost itself when it finds a run's process gone.
        case
            when recorded_status = 'running' and heartbeat_at < current_timestamp - interval 60 second then 'lost'
            else recorded_status
        end as status,
        recorded_status,
        started_at,
        ended_at,
        heartbeat_at,
        error_message,
        config_path,
        config_json,
        collector_version,
        hostname,
        pid,
        process_started_at,
        source_tool,
        source_file,
        latency_budget_s,
        cost_per_10k_txn_budget_usd,
        error_rate_budget,
        dataset_of_interest,
        slo_ttft_s,
        slo_tpot_s,
        slo_e2e_s,
        slo_attainment,
        budget_source,
        price_source,
        experiment_count,
        simulated_experiment_count,
        request_count,
        error_count,
        excluded_request_count,
        flagged_request_count,
        planned_level_count,
        measured_level_count
    from runs
)

select * from final
