with

levels as (
    select * from {{ ref('fct_concurrency_metrics') }}
),

runs as (
    select * from {{ ref('int_runs_budgeted') }}
),

candidates as (
    -- One row per run, payload file and experiment: two serving stacks on one instance type stay apart.
    select
        run_id,
        experiment_name,
        payload_file,
        model_id,
        instance_type,
        instance_count,
        pricing_kind,
        pricing_model,
        count(*) as concurrency_level_count,
        count(*) filter (where meets_all_budgets) as passing_level_count
    from levels
    group by
        run_id,
        experiment_name,
        payload_file,
        model_id,
        instance_type,
        instance_count,
        pricing_kind,
        pricing_model
),

best_levels as (
    -- The highest load that meets every budget (latency p95, cost per 10k transactions, error rate): the highest
    -- rate of an open loop, else the highest concurrency.
    select * from levels
    where meets_all_budgets
    qualify row_number() over (
            partition by run_id, experiment_name, payload_file
            order by target_rate_rps desc nulls last, concurrency desc
        ) = 1
),

joined as (
    select
        candidates.run_id,
        candidates.experiment_name,
        candidates.payload_file,
        candidates.model_id,
        candidates.instance_type,
        candidates.instance_count,
        candidates.concurrency_level_count,
        candidates.passing_level_count,
        best_levels.run_id is not null as has_recommendation,
        best_levels.concurrency,
        best_levels.target_rate_rps,
        best_levels.request_count,
        best_levels.success_count,
        best_levels.error_rate,
        best_levels.is_p95_undersampled,
        best_levels.is_p99_undersampled,
        best_levels.prompt_token_count_mean,
        best_levels.completion_token_count_mean,
        best_levels.prompt_token_throughput,
        best_levels.completion_token_throughput,
        best_levels.transactions_per_minute,
        best_levels.latency_p50,
        best_levels.latency_p95,
        best_levels.latency_p99,
        best_levels.ttft_p50,
        best_levels.ttft_p95,
        best_levels.ttft_p99,
        best_levels.tpot_p50,
        best_levels.tpot_p95,
        best_levels.tpot_p99,
        best_levels.price_per_txn,
        best_levels.price_per_token,
        best_levels.cost_per_10k_txn,
        best_levels.slo_attainment,
        best_levels.goodput_rps,
        best_levels.price_per_good_request,
        best_levels.cost_per_10k_good_requests,
        candidates.pricing_kind,
        candidates.pricing_model,
        best_levels.price_source,
        runs.latency_budget_s,
        runs.cost_per_10k_txn_budget_usd,
        runs.error_rate_budget,
        runs.dataset_of_interest,
        coalesce(contains(candidates.payload_file, runs.dataset_of_interest), false) as is_dataset_of_interest,
        coalesce(runs.slo_ttft_s, runs.slo_tpot_s, runs.slo_e2e_s) is not null as has_slo
    from candidates
    left join best_levels
        on
            candidates.run_id = best_levels.run_id
            and candidates.experiment_name = best_levels.experiment_name
            and candidates.payload_file = best_levels.payload_file
    left join runs
        on candidates.run_id = runs.run_id
),

rankable as (
    -- A row without a cost (unpriced) has no price performance to rank.
    select
        *,
        -- With SLOs set, the price that ranks is a good request's: a cheap stack that misses its SLOs pays for
        -- requests that buy nothing.
        case when has_slo then 'cost_per_10k_good_requests' else 'cost_per_10k_txn' end as ranked_by,
        case when has_slo then cost_per_10k_good_requests else cost_per_10k_txn end as ranking_cost,
        coalesce(has_recommendation and is_dataset_of_interest and ranking_cost is not null, false) as is_rankable
    from joined
),

ranked as (
    -- Best price performance, one stated rule: among the recommended, priced rows for the dataset of
    -- interest, the lowest ranking cost (per 10k transactions, or per 10k good requests where the run sets
    -- SLOs); ties go to more transactions per minute, then to the experiment name and payload file in
    -- alphabetical order.
    select
        *,
        case
            when is_rankable
                then row_number() over (
                        partition by run_id, is_rankable
                        order by
                            ranking_cost asc,
                            transactions_per_minute desc,
                            experiment_name asc,
                            payload_file asc
                    )
        end as price_performance_rank
    from rankable
),

described as (
    select
        run_id,
        experiment_name,
        payload_file,
        model_id,
        instance_type,
        instance_count,
        has_recommendation,
        concurrency,
        target_rate_rps,
        request_count,
        success_count,
        error_rate,
        is_p95_undersampled,
        is_p99_undersampled,
        prompt_token_count_mean,
        completion_token_count_mean,
        prompt_token_throughput,
        completion_token_throughput,
        transactions_per_minute,
        latency_p50,
        latency_p95,
        latency_p99,
        ttft_p50,
        ttft_p95,
        ttft_p99,
        tpot_p50,
        tpot_p95,
        tpot_p99,
        price_per_txn,
        price_per_token,
        cost_per_10k_txn,
        pricing_kind,
        pricing_model,
        price_source,
        concurrency_level_count,
        passing_level_count,
        latency_budget_s,
        cost_per_10k_txn_budget_usd,
        error_rate_budget,
        dataset_of_interest,
        is_dataset_of_interest,
        slo_attainment,
        goodput_rps,
        price_per_good_request,
        cost_per_10k_good_requests,
        ranked_by,
        coalesce(price_performance_rank = 1, false) as is_best_price_performance
    from ranked
)

select * from described
