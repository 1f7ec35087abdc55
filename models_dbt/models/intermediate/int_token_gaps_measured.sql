with

requests as (
    -- Successful measured requests that were streamed: their content chunks' arrival times.
    select * from {{ ref('int_requests_timed') }}
    where
        is_success
        and not is_warmup
        and content_chunk_offsets_ns is not null
),

differenced as (
    -- Inter-token latency: the time between one content chunk and the next (vLLM's ITL, AIPerf's ICL). Taken
    -- within each request's row (element i: chunk i + 1's arrival minus chunk i's), so no window sorts the chunks.
    select
        request_id,
        run_id,
        experiment_name,
        payload_file,
        concurrency,
        target_rate_rps,
        repeat_index,
        {{ list_differences('content_chunk_offsets_ns') }} as gaps_ns
    from requests
),

gaps as (
    select
        request_id,
        run_id,
        experiment_name,
        payload_file,
        concurrency,
        target_rate_rps,
        repeat_index,
        {{ unnest_with_position('gaps_ns', 'gap_ns', 'gap_index') }}
    from differenced
)

-- A gap is numbered by the chunk that ends it (the first gap ends chunk 2).
select
    request_id,
    run_id,
    experiment_name,
    payload_file,
    concurrency,
    target_rate_rps,
    repeat_index,
    gap_index + 1 as chunk_index,
    gap_ns / 1e9 as gap_s
from gaps
where gap_ns is not null
