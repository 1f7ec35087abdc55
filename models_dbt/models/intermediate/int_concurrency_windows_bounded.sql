with

measured_requests as (
    select * from {{ ref('int_requests_timed') }}
    where not is_warmup
),

windows as (
    select
        run_id,
        experiment_name,
        model_id,
        instance_type,
        instance_count,
        concurrency,
        target_rate_rps,
        min(start_offset_ns) as window_start_offset_ns,
        max(end_offset_ns) as window_end_offset_ns,
        count(*) as request_count,
        count(*) filter (where is_success) as success_count,
        coalesce(sum(completion_tokens) filter (where is_success), 0) as success_completion_tokens
    from measured_requests
    group by
        run_id,
        experiment_name,
        model_id,
        instance_type,
        instance_count,
        concurrency,
        target_rate_rps
),

measured as (
    select
        *,
        (window_end_offset_ns - window_start_offset_ns) / 1e9 as window_duration_s
    from windows
)

select * from measured
