with

levels as (
    select * from {{ ref('int_levels_aggregated') }}
),

prices as (
    select * from {{ ref('int_experiments_priced') }}
),

repeats as (
    select * from {{ ref('int_level_repeats_aggregated') }}
),

spread as (
    -- How far a level's repeats (repeats_per_level) differ: a difference between two stacks smaller than this is
    -- noise. With one repeat, min = median = max = the level's own figure.
    select
        run_id,
        experiment_name,
        payload_file,
        concurrency,
        target_rate_rps,
        min(transactions_per_minute) as transactions_per_minute_repeat_min,
        {{ percentile_cont('transactions_per_minute', 0.5) }} as transactions_per_minute_repeat_median,
        max(transactions_per_minute) as transactions_per_minute_repeat_max,
        min(completion_token_throughput) as completion_token_throughput_repeat_min,
        {{ percentile_cont('completion_token_throughput', 0.5) }} as completion_token_throughput_repeat_median,
        max(completion_token_throughput) as completion_token_throughput_repeat_max,
        min(latency_p95) as latency_p95_repeat_min,
        {{ percentile_cont('latency_p95', 0.5) }} as latency_p95_repeat_median,
        max(latency_p95) as latency_p95_repeat_max
    from repeats
    group by
        run_id,
        experiment_name,
        payload_file,
        concurrency,
        target_rate_rps
),

loop_lags as (
    select * from {{ ref('int_event_loop_lags_levelled') }}
),

levels_spread as (
    select
        levels.*,
        spread.transactions_per_minute_repeat_min,
        spread.transactions_per_minute_repeat_median,
        spread.transactions_per_minute_repeat_max,
        spread.completion_token_throughput_repeat_min,
        spread.completion_token_throughput_repeat_median,
        spread.completion_token_throughput_repeat_max,
        spread.latency_p95_repeat_min,
        spread.latency_p95_repeat_median,
        spread.latency_p95_repeat_max,
        loop_lags.event_loop_lag_p50,
        loop_lags.event_loop_lag_p99,
        loop_lags.event_loop_lag_max
    from levels
    left join spread
        on
            levels.run_id = spread.run_id
            and levels.experiment_name = spread.experiment_name
            and levels.payload_file is not distinct from spread.payload_file
            and levels.concurrency is not distinct from spread.concurrency
            and levels.target_rate_rps is not distinct from spread.target_rate_rps
    left join loop_lags
        on
            levels.run_id = loop_lags.run_id
            and levels.experiment_name = loop_lags.experiment_name
            and levels.payload_file is not distinct from loop_lags.payload_file
            and levels.concurrency is not distinct from loop_lags.concurrency
            and levels.target_rate_rps is not distinct from loop_lags.target_rate_rps
),

runs as (
    select * from {{ ref('int_runs_budgeted') }}
),

priced as (
    select
        levels.*,
        prices.pricing_kind,
        prices.pricing_model,
        prices.price_source,
        prices.usd_per_hour,
        prices.usd_per_1m_input_tokens,
        prices.usd_per_1m_output_tokens,
        prices.price_read_on,
        case
            when levels.success_count = 0 then null
            -- Instance time per transaction: what the instances cost per minute over what they served per minute.
            when prices.pricing_kind = 'instance'
                then prices.usd_per_hour * levels.instance_count / 60 / nullif(levels.transactions_per_minute, 0)
            -- A token-priced API charges the mean transaction's tokens.
            when prices.pricing_kind = 'token'
                then {{ token_cost_usd('levels.prompt_token_count_mean', 'levels.completion_token_count_mean') }}
        end as price_per_txn
    from levels_spread as levels
    left join prices
        on
            levels.run_id = prices.run_id
            and levels.experiment_name = prices.experiment_name
),

judged as (
    select
        priced.*,
        priced.price_per_txn
        / nullif(priced.prompt_token_count_mean + priced.completion_token_count_mean, 0) as price_per_token,
        10000 * priced.price_per_txn as cost_per_10k_txn,
        runs.latency_budget_s,
        runs.cost_per_10k_txn_budget_usd,
        runs.error_rate_budget,
        runs.budget_source,
        runs.dataset_of_interest,
        coalesce(contains(priced.payload_file, runs.dataset_of_interest), false) as is_dataset_of_interest,
        -- A level with no successful request has no latency or price and fails every budget. An experiment
        -- benchmarked unpriced is not judged on cost (null), neither passing nor failing it.
        coalesce(priced.success_count > 0 and priced.latency_p95 <= runs.latency_budget_s, false)
            as meets_latency_budget,
        case
            when priced.pricing_kind != 'unpriced' or priced.pricing_kind is null
                then
                    coalesce(
                        priced.success_count > 0 and 10000 * priced.price_per_txn <= runs.cost_per_10k_txn_budget_usd,
                        false
                    )
        end as meets_cost_budget,
        coalesce(priced.success_count > 0 and priced.error_rate <= runs.error_rate_budget, false)
            as meets_error_budget
    from priced
    left join runs
        on priced.run_id = runs.run_id
),

graded as (
    -- Where the run sets SLOs (null otherwise): the share of the level's measured requests that were good,
    -- goodput, and the price of a good request and of a million good output tokens: the level's spend per
    -- second (price per transaction x transactions per second, for instance and token prices alike) over
    -- its good requests (tokens) per second, both over the same window. A failed or slow request is paid for
    -- and buys nothing.
    select
        judged.*,
        runs.slo_ttft_s,
        runs.slo_tpot_s,
        runs.slo_e2e_s,
        runs.slo_attainment as slo_attainment_target,
        coalesce(runs.slo_ttft_s, runs.slo_tpot_s, runs.slo_e2e_s) is not null as has_slo,
        case when has_slo then judged.good_count end as good_request_count,
        case when has_slo then judged.good_count / judged.request_count end as slo_attainment,
        case when has_slo then judged.good_request_rate end as goodput_rps,
        case
            when has_slo
                then judged.price_per_txn * judged.transactions_per_minute / 60 / nullif(judged.good_request_rate, 0)
        end as price_per_good_request,
        case
            when has_slo
                then 1000000 * judged.price_per_txn * judged.transactions_per_minute / 60
                    / nullif(judged.good_completion_token_throughput, 0)
        end as price_per_1m_good_output_tokens,
        case
            when has_slo then coalesce(judged.good_count / judged.request_count >= runs.slo_attainment, false)
        end as meets_slo
    from judged
    left join runs
        on judged.run_id = runs.run_id
),

sampled as (
    -- A percentile needs enough successful requests for its tail to hold one of them (macros/percentile_sampling.sql).
    select
        *,
        success_count < {{ min_samples_for_percentile(95) }} as is_p95_undersampled,
        success_count < {{ min_samples_for_percentile(99) }} as is_p99_undersampled
    from graded
),

final as (
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
        error_count,
        error_rate,
        prompt_token_count_mean,
        completion_token_count_mean,
        prompt_token_throughput,
        completion_token_throughput,
        transactions_per_minute,
        throughput_window,
        span_transactions_per_minute,
        span_prompt_token_throughput,
        span_completion_token_throughput,
        steady_request_count,
        steady_latency_p50,
        steady_latency_p95,
        latency_p50,
        latency_p95,
        latency_p99,
        ttft_p50,
        ttft_p95,
        ttft_p99,
        tpot_p50,
        tpot_p95,
        tpot_p99,
        tpot_mean,
        ttft_first_event_p50,
        ttft_first_event_p95,
        ttft_first_event_p99,
        itl_mean,
        itl_p50,
        itl_p95,
        itl_p99,
        itl_gap_count,
        content_chunk_count_mean,
        price_per_txn,
        price_per_token,
        cost_per_10k_txn,
        meets_latency_budget,
        meets_cost_budget,
        meets_error_budget,
        meets_slo,
        -- An open-loop level whose client fell behind its schedule did not offer its load, and one whose queue grew
        -- through it would not hold at that rate: neither meets every budget.
        meets_latency_budget and coalesce(meets_cost_budget, true) and meets_error_budget and coalesce(meets_slo, true)
        and coalesce(is_schedule_kept, true) and not coalesce(is_saturated, false) as meets_all_budgets,
        load_model,
        scheduled_duration_s,
        offered_request_rate,
        send_lag_p50,
        send_lag_p99,
        send_lag_max,
        event_loop_lag_p50,
        event_loop_lag_p99,
        event_loop_lag_max,
        is_schedule_kept,
        first_third_ttft_p50,
        last_third_ttft_p50,
        is_saturated,
        repeat_count,
        transactions_per_minute_repeat_min,
        transactions_per_minute_repeat_median,
        transactions_per_minute_repeat_max,
        completion_token_throughput_repeat_min,
        completion_token_throughput_repeat_median,
        completion_token_throughput_repeat_max,
        latency_p95_repeat_min,
        latency_p95_repeat_median,
        latency_p95_repeat_max,
        success_count,
        success_prompt_tokens,
        success_completion_tokens,
        prompt_token_disagreement_count,
        completion_token_disagreement_count,
        prompt_token_relative_difference_mean,
        completion_token_relative_difference_mean,
        latency_mean,
        level_started_at,
        level_start_offset_ns,
        level_end_offset_ns,
        duration_s,
        pricing_kind,
        pricing_model,
        price_source,
        usd_per_hour,
        usd_per_1m_input_tokens,
        usd_per_1m_output_tokens,
        price_read_on,
        latency_budget_s,
        cost_per_10k_txn_budget_usd,
        error_rate_budget,
        budget_source,
        dataset_of_interest,
        is_dataset_of_interest,
        is_p95_undersampled,
        is_p99_undersampled,
        slo_ttft_s,
        slo_tpot_s,
        slo_e2e_s,
        slo_attainment_target,
        good_request_count,
        slo_attainment,
        goodput_rps,
        price_per_good_request,
        10000 * price_per_good_request as cost_per_10k_good_requests,
        price_per_1m_good_output_tokens
    from sampled
)

select * from final
