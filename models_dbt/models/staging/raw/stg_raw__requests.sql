with

source as (
    select * from {{ source('raw', 'requests') }}
),

renamed as (
    select
        request_id,
        run_id,
        experiment_name,
        model_id,
        endpoint_type,
        endpoint_url,
        api_style,
        is_streaming,
        instance_type,
        instance_count,
        payload_file,
        prompt_index,
        concurrency,
        worker_index,
        sequence_in_level,
        is_warmup,
        max_tokens,
        started_at,
        start_offset_ns,
        e2e_ns,
        first_chunk_ns,
        first_content_ns,
        last_content_ns,
        chunk_count,
        content_chunk_count,
        status,
        http_status,
        error_type,
        error_message,
        finish_reason,
        prompt_tokens,
        completion_tokens,
        token_count_source,
        client_prompt_tokens,
        client_completion_tokens,
        token_counter,
        schema_version
    from source
)

select * from renamed
