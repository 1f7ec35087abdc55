with

requests as (
    -- Managed endpoints' measured requests: only they record retries (null elsewhere).
    select * from {{ ref('int_requests_timed') }}
    where not is_warmup and retry_count is not null
),

aggregated as (
    select
        run_id,
        experiment_name,
        payload_file,
        concurrency,
        target_rate_rps,
        count(*) as request_count,
        count(*) filter (where retry_count > 0) as throttled_request_count,
        sum(retry_count) as retry_count_total,
        count(*) filter (where not is_success and error_message ilike '%throttl%') as throttling_error_count,
        sum(retry_wait_s) as retry_wait_s_total,
        sum(e2e_latency_s) as e2e_latency_s_total,
        {{ percentile_cont('final_attempt_latency_s', 0.50) }} filter (where is_success) as final_attempt_latency_p50,
        {{ percentile_cont('server_latency_s', 0.50) }} filter (where is_success) as server_latency_p50,
        {{ percentile_cont('final_attempt_latency_s - server_latency_s', 0.50) }} filter (
            where is_success
        ) as outside_server_latency_p50
    from requests
    group by
        run_id,
        experiment_name,
        payload_file,
        concurrency,
        target_rate_rps
),

final as (
    select
        run_id,
        experiment_name,
        payload_file,
        concurrency,
        target_rate_rps,
        request_count,
        throttled_request_count,
        retry_count_total,
        throttling_error_count,
        retry_count_total / request_count as retries_per_request,
        throttled_request_count / request_count as throttled_share,
        retry_wait_s_total,
        retry_wait_s_total / nullif(e2e_latency_s_total, 0) as retry_wait_share_of_latency,
        final_attempt_latency_p50,
        server_latency_p50,
        outside_server_latency_p50
    from aggregated
)

select * from final
