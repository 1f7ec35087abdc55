with

source as (
    select * from {{ source('raw', 'runs') }}
),

renamed as (
    select
        run_id,
        run_name,
        status,
        started_at,
        ended_at,
        heartbeat_at,
        error_message,
        config_path,
        config_json,
        experiments_json,
        latency_budget_s,
        cost_per_10k_txn_budget_usd,
        error_rate_budget,
        dataset_of_interest,
        -- Null in manifests before schema v4, and when the config set no SLO.
        slo_ttft_s,
        slo_tpot_s,
        slo_e2e_s,
        slo_attainment,
        collector_version,
        hostname,
        platform,
        python_version,
        cpu_count,
        pid,
        process_started_at,
        schema_version,
        -- Null for our own runs and manifests before schema v5; set for an imported run.
        source_tool,
        source_file
    from source
),

deduplicated as (
    -- A copied run folder lands a second manifest with the same run_id: the last rewritten one counts.
    select
        *,
        row_number() over (
            partition by run_id
            order by heartbeat_at desc nulls last, ended_at desc nulls last, status asc
        ) > 1 as is_duplicate
    from renamed
),

validated as (
    select
        {{ star_except(['is_duplicate']) }},
        case when is_duplicate then 'duplicate run_id (the most recently rewritten manifest is used)' end
            as exclusion_reason,
        is_duplicate as is_excluded
    from deduplicated
)

select * from validated
