with

levels as (
    select * from {{ ref('fct_concurrency_metrics') }}
),

failed as (
    select
        run_id,
        experiment_name,
        model_id,
        payload_file,
        instance_type,
        instance_count,
        concurrency,
        target_rate_rps,
        request_count,
        success_count,
        error_rate,
        latency_p95,
        cost_per_10k_txn,
        transactions_per_minute,
        latency_budget_s,
        cost_per_10k_txn_budget_usd,
        error_rate_budget,
        is_dataset_of_interest,
        not meets_latency_budget as misses_latency_budget,
        not meets_cost_budget as misses_cost_budget,  -- null: not judged (unpriced)
        not meets_error_budget as misses_error_budget,
        not meets_slo as misses_slo,  -- null: no SLO set
        slo_attainment,
        slo_attainment_target,
        concat_ws(
            ', ',
            case when not meets_latency_budget then 'latency' end,
            case when not meets_cost_budget then 'cost' end,
            case when not meets_error_budget then 'error rate' end,
            case when not meets_slo then 'SLO attainment' end
        ) as missed_budgets
    from levels
    where not meets_all_budgets
)

select * from failed
