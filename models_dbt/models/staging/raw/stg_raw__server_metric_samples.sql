with

source as (
    -- raw.telemetry_samples' rows scraped from the serving engine's Prometheus /metrics (raw schema v6).
    select * from {{ source('raw', 'telemetry_samples') }}
    where source like 'server:%'
),

renamed as (
    select
        run_id,
        experiment_name,
        offset_ns,
        sampled_at,
        replace(source, 'server:', '') as engine,
        level_boundary,
        server_requests_running as requests_running,
        server_requests_waiting as requests_waiting,
        server_kv_cache_usage as kv_cache_usage,
        server_prompt_tokens_total as prompt_tokens_total,
        server_generation_tokens_total as generation_tokens_total,
        server_ttft_sum_s as ttft_sum_s,
        server_ttft_count as ttft_count,
        server_e2e_sum_s as e2e_sum_s,
        server_e2e_count as e2e_count,
        server_queue_time_sum_s as queue_time_sum_s,
        server_queue_time_count as queue_time_count
    from source
    where offset_ns is not null
)

select * from renamed
