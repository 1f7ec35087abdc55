with

compared as (
    select * from {{ ref('int_levels_server_compared') }}
),

final as (
    select
        run_id,
        experiment_name,
        payload_file,
        concurrency,
        target_rate_rps,
        server_view_source,
        engine,
        request_count,
        success_count,
        has_window_edges,
        client_prompt_tokens,
        server_prompt_tokens,
        prompt_tokens_difference,
        client_completion_tokens,
        server_generation_tokens,
        completion_tokens_difference,
        is_token_total_matching,
        not coalesce(is_token_total_matching, true) as is_token_total_mismatch,
        server_finished_requests,
        client_mean_ttft_s,
        server_mean_ttft_s,
        ttft_gap_s,
        client_mean_e2e_s,
        server_mean_e2e_s,
        e2e_gap_s,
        server_mean_queue_time_s,
        gauge_sample_count,
        mean_requests_running,
        max_requests_running,
        mean_requests_waiting,
        max_requests_waiting,
        mean_kv_cache_usage,
        max_kv_cache_usage,
        cloudwatch_period_count,
        server_mean_model_latency_s,
        server_mean_overhead_latency_s,
        server_mean_gpu_utilization_percent,
        server_mean_gpu_memory_utilization_percent
    from compared
)

select * from final
