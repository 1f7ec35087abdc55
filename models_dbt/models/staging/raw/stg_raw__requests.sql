{%- set own_success = "status = 'success' and source_tool is null" -%}
{%- set max_sane_ms = var('max_sane_duration_ns') ~ ' / 1000000' -%}

-- The CTEs marked not_materialized are read twice, by the two halves of `deduplicated` (rows with copies and rows
-- without): the raw files are scanned twice rather than every wide row buffered (macros/cross_engine.sql).
with

source as {{ not_materialized() }} (
    select * from {{ source('raw', 'requests') }}
),

renamed as {{ not_materialized() }} (
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
        data_issue,
        -- Null in rows landed before schema v3 (the raw views read every run's files by name).
        server_prompt_tokens,
        server_completion_tokens,
        -- Null before schema v4 and for responses not streamed.
        content_chunk_offsets_ns,
        schema_version,
        -- Null in our own rows and in rows landed before schema v5; set in an imported run's rows.
        source_tool,
        source_request_id,
        source_level_duration_ns,
        -- Null before schema v6 and in imported rows: a closed-loop level.
        coalesce(load_model, 'closed') as load_model,
        target_rate_rps,
        intended_offset_ns,
        -- Managed AWS endpoints (bedrock, sagemaker) only; null for other kinds and before schema v8.
        retry_count,
        retry_wait_ns,
        last_attempt_offset_ns,
        server_latency_ms,
        service_request_id,
        -- Null before schema v9 and in imported rows: a level run once.
        coalesce(repeat_index, 1) as repeat_index
    from source
),

checked as {{ not_materialized() }} (
    -- Every value a metric, a level key or a mart test relies on. Timings within a request cannot exceed its
    -- end-to-end time (all are perf-counter deltas from the same send), so one that does is a bad row too.
    -- An imported row (source_tool set) may lack what its tool did not record (send offset, end-to-end time,
    -- token counts): it is kept, and the metrics that need the missing value come out null for it.
    select
        *,
        concat_ws(
            '; ',
            {{ missing_reason('request_id') }},
            {{ missing_reason('experiment_name') }},
            {{ missing_reason('payload_file') }},
            {{ missing_reason('is_warmup') }},
            case
                when status is null then 'status missing'
                when status not in ('success', 'error') then 'status ''' || status || ''' is not success or error'
            end,
            {{ range_reason('concurrency', 1, var('max_sane_concurrency')) }},
            {{ range_reason('instance_count', 1, var('max_sane_instance_count')) }},
            {{ range_reason('start_offset_ns', 0, var('max_sane_duration_ns'), required_when='source_tool is null') }},
            {{ range_reason('e2e_ns', 0, var('max_sane_duration_ns'), required_when='source_tool is null') }},
            {{ range_reason('first_chunk_ns', 0, 'e2e_ns', required_when='false') }},
            {{ range_reason('first_content_ns', 0, 'e2e_ns', required_when='false') }},
            {{ range_reason('last_content_ns', 0, 'e2e_ns', required_when='false') }},
            -- A failed request may have no token counts; a successful one of ours always has both.
            {{ range_reason('prompt_tokens', 0, var('max_sane_tokens'), required_when=own_success) }},
            {{ range_reason('completion_tokens', 0, var('max_sane_tokens'), required_when=own_success) }},
            {{ range_reason('server_prompt_tokens', 0, var('max_sane_tokens'), required_when='false') }},
            {{ range_reason('server_completion_tokens', 0, var('max_sane_tokens'), required_when='false') }},
            {{ range_reason('source_level_duration_ns', 0, var('max_sane_duration_ns'), required_when='false') }},
            case
                when
                    load_model not in ('closed', 'rate')
                    then 'load_model ''' || load_model || ''' is not closed or rate'
                when load_model = 'rate' and not coalesce(target_rate_rps > 0, false)
                    then 'target_rate_rps missing or not positive at a rate level'
            end,
            {{ range_reason('intended_offset_ns', 0, var('max_sane_duration_ns'), required_when='false') }},
            {{ range_reason('retry_count', 0, 1000, required_when='false') }},
            {{ range_reason('retry_wait_ns', 0, 'last_attempt_offset_ns', required_when='retry_count is not null') }},
            {{ range_reason('last_attempt_offset_ns', 0, 'e2e_ns', required_when='retry_count is not null') }},
            {{ range_reason('server_latency_ms', 0, max_sane_ms, required_when='false') }},
            {{ range_reason('repeat_index', 1, var('max_sane_repeats')) }}
        ) as value_problems
    from renamed
),

copied_request_ids as (
    -- The request_ids landed more than once (a copied run folder). Found by grouping the ids alone, so that only
    -- their rows are ranked below: ranking every row by request_id sorted every wide row (its chunk list
    -- included), 45 GB spilled at 10^8 requests.
    select request_id
    from {{ source('raw', 'requests') }}
    where request_id is not null
    group by request_id
    having count(*) > 1
),

marked as {{ not_materialized() }} (
    select
        checked.*,
        copied_request_ids.request_id is not null as has_copies
    from checked
    left join copied_request_ids
        on checked.request_id = copied_request_ids.request_id
),

deduplicated as (
    -- One copy of a copied request counts (a sane one first); the others are excluded.
    select
        *,
        false as is_duplicate
    from marked
    where not has_copies

    union all

    select
        *,
        row_number() over (
            partition by request_id
            order by value_problems = '' desc, started_at asc, e2e_ns asc
        ) > 1 as is_duplicate
    from marked
    where has_copies
),

validated as (
    select
        {{ star_except(['value_problems', 'has_copies', 'is_duplicate']) }},
        nullif(
            concat_ws('; ', nullif(value_problems, ''), case when is_duplicate then 'duplicate request_id' end), ''
        ) as exclusion_reason,
        exclusion_reason is not null as is_excluded
    from deduplicated
)

select * from validated
