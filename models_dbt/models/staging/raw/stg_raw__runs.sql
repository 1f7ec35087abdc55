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
        latency_budget_s,
        cost_per_10k_txn_budget_usd,
        error_rate_budget,
        dataset_of_interest,
        collector_version,
        hostname,
        platform,
        python_version,
        cpu_count,
        schema_version
    from source
)

select * from renamed
