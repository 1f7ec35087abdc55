with

requests as (
    -- Rows with an insane raw value are left out of every metric (marts.fct_quarantined_rows lists them).
    select * from {{ ref('stg_raw__requests') }}
    where not is_excluded
),

timed as (
    select
        request_id,
        run_id,
        experiment_name,
        model_id,
        endpoint_type,
        is_streaming,
        instance_type,
        instance_count,
        payload_file,
        prompt_index,
        concurrency,
        worker_index,
        sequence_in_level,
        is_warmup,
        started_at,
        start_offset_ns,
        start_offset_ns + e2e_ns as end_offset_ns,
        status,
        status = 'success' as is_success,
        http_status,
        error_type,
        error_message,
        finish_reason,
        e2e_ns / 1e9 as e2e_latency_s,
        first_content_ns / 1e9 as ttft_s,
        -- vLLM's client times the first token from the first event of any kind (on chat, an empty role chunk).
        first_chunk_ns / 1e9 as ttft_first_event_s,
        -- Time per output token after the first: only a completed response with two or more tokens has one.
        -- Integer nanoseconds are subtracted before converting, so no precision is lost.
        case
            when status = 'success' and first_content_ns is not null and completion_tokens >= 2
                then (e2e_ns - first_content_ns) / 1e9 / (completion_tokens - 1)
        end as tpot_s,
        prompt_tokens,
        completion_tokens,
        token_count_source,
        token_counter,
        client_prompt_tokens,
        client_completion_tokens,
        server_prompt_tokens,
        server_completion_tokens,
        chunk_count,
        content_chunk_count,
        content_chunk_offsets_ns,
        data_issue,
        source_tool,
        source_request_id,
        source_level_duration_ns,
        load_model,
        target_rate_rps,
        intended_offset_ns,
        repeat_index,
        -- How late an open-loop send left against its schedule (the client falling behind: coordinated omission).
        (start_offset_ns - intended_offset_ns) / 1e9 as send_lag_s,
        -- Managed AWS endpoints: throttling retries (inside e2e) and the service's own latency.
        retry_count,
        retry_wait_ns / 1e9 as retry_wait_s,
        (e2e_ns - last_attempt_offset_ns) / 1e9 as final_attempt_latency_s,
        server_latency_ms / 1e3 as server_latency_s,
        service_request_id
    from requests
),

compared as (
    -- Client against server counts (macros/token_count_comparison.sql).
    select
        *,
        {{ token_count_comparison('prompt') }},
        {{ token_count_comparison('completion') }}
    from timed
)

select * from compared
