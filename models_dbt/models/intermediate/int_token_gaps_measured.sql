with

requests as (
    -- Successful measured requests that were streamed: their content chunks' arrival times.
    select * from {{ ref('int_requests_timed') }}
    where
        is_success
        and not is_warmup
        and content_chunk_offsets_ns is not null
),

chunks as (
    select
        request_id,
        run_id,
        experiment_name,
        payload_file,
        concurrency,
        target_rate_rps,
        repeat_index,
        {{ unnest_with_position('content_chunk_offsets_ns', 'offset_ns', 'chunk_index') }}
    from requests
),

gaps as (
    -- Inter-token latency: the time between one content chunk and the next (vLLM's ITL, AIPerf's ICL).
    select
        request_id,
        run_id,
        experiment_name,
        payload_file,
        concurrency,
        target_rate_rps,
        repeat_index,
        chunk_index,
        (offset_ns - lag(offset_ns) over (partition by request_id order by chunk_index)) / 1e9 as gap_s
    from chunks
)

select * from gaps
where gap_s is not null
