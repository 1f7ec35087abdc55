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
        data_issue
    from requests
),

compared as (
    -- Client against server counts, relative to the server's (at least 1, so a zero count divides nothing).
    -- Disagreeing: apart by more than the tolerance, the larger of a share of the server's count and a
    -- number of tokens. Null when either count is missing (the server reported none, or a row before v3).
    select
        *,
        abs(client_prompt_tokens - server_prompt_tokens)
        / greatest(server_prompt_tokens, 1) as prompt_token_relative_difference,
        abs(client_completion_tokens - server_completion_tokens)
        / greatest(server_completion_tokens, 1) as completion_token_relative_difference,
        abs(client_prompt_tokens - server_prompt_tokens) > greatest(
            {{ var('token_count_tolerance_ratio') }} * server_prompt_tokens,
            {{ var('token_count_tolerance_tokens') }}
        ) as is_prompt_token_count_disagreeing,
        abs(client_completion_tokens - server_completion_tokens) > greatest(
            {{ var('token_count_tolerance_ratio') }} * server_completion_tokens,
            {{ var('token_count_tolerance_tokens') }}
        ) as is_completion_token_count_disagreeing
    from timed
)

select * from compared
