with

source as (
    select * from {{ source('config', 'run_settings') }}
),

renamed as (
    select
        run_name,
        latency_budget_s,
        cost_per_10k_txn_budget_usd,
        error_rate_budget,
        dataset_of_interest,
        config_path,
        updated_at,
        slo_ttft_s,
        slo_tpot_s,
        slo_e2e_s,
        slo_attainment
    from source
)

select * from renamed
