with

measured_requests as (
    select * from {{ ref('int_requests_timed') }}
    where not is_warmup
),

aggregated as (
    select
        run_id,
        experiment_name,
        model_id,
        instance_type,
        instance_count,
        payload_file,
        concurrency,
        count(*) as request_count,
        count(*) filter (where is_success) as success_count,
        count(*) filter (where not is_success) as error_count,
        min(start_offset_ns) as level_start_offset_ns,
        max(end_offset_ns) as level_end_offset_ns,
        min(started_at) as level_started_at,
        avg(prompt_tokens) filter (where is_success) as prompt_token_count_mean,
        avg(completion_tokens) filter (where is_success) as completion_token_count_mean,
        coalesce(sum(prompt_tokens) filter (where is_success), 0) as success_prompt_tokens,
        coalesce(sum(completion_tokens) filter (where is_success), 0) as success_completion_tokens,
        -- Token provenance over the successful requests whose server reported the count.
        count(*) filter (where is_success and is_prompt_token_count_disagreeing) as prompt_token_disagreement_count,
        count(*) filter (
            where is_success and is_completion_token_count_disagreeing
        ) as completion_token_disagreement_count,
        avg(prompt_token_relative_difference) filter (where is_success) as prompt_token_relative_difference_mean,
        avg(completion_token_relative_difference) filter (
            where is_success
        ) as completion_token_relative_difference_mean,
        avg(e2e_latency_s) filter (where is_success) as latency_mean,
        quantile_cont(e2e_latency_s, 0.50) filter (where is_success) as latency_p50,
        quantile_cont(e2e_latency_s, 0.95) filter (where is_success) as latency_p95,
        quantile_cont(e2e_latency_s, 0.99) filter (where is_success) as latency_p99,
        quantile_cont(ttft_s, 0.50) filter (where is_success) as ttft_p50,
        quantile_cont(ttft_s, 0.95) filter (where is_success) as ttft_p95,
        quantile_cont(ttft_s, 0.99) filter (where is_success) as ttft_p99,
        quantile_cont(tpot_s, 0.50) filter (where is_success) as tpot_p50,
        quantile_cont(tpot_s, 0.95) filter (where is_success) as tpot_p95,
        quantile_cont(tpot_s, 0.99) filter (where is_success) as tpot_p99
    from measured_requests
    group by
        run_id,
        experiment_name,
        model_id,
        instance_type,
        instance_count,
        payload_file,
        concurrency
),

rated as (
    select
        *,
        error_count / request_count as error_rate,
        (level_end_offset_ns - level_start_offset_ns) / 1e9 as duration_s,
        success_prompt_tokens / nullif(duration_s, 0) as prompt_token_throughput,
        success_completion_tokens / nullif(duration_s, 0) as completion_token_throughput,
        success_count * 60 / nullif(duration_s, 0) as transactions_per_minute
    from aggregated
)

select * from rated
