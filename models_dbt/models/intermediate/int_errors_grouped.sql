{%- set most_frequent_first = ['message_count desc', 'error_message asc nulls last'] -%}

with

failed_requests as (
    -- Measured requests only (warm-up excluded), as the levels' error_count counts them.
    select * from {{ ref('int_requests_timed') }}
    where not is_warmup and not is_success
),

messages as (
    select
        run_id,
        experiment_name,
        payload_file,
        concurrency,
        target_rate_rps,
        error_type,
        error_message,
        http_status,
        count(*) as message_count,
        min(started_at) as first_seen_at
    from failed_requests
    group by all
),

grouped as (
    select
        run_id,
        experiment_name,
        payload_file,
        concurrency,
        target_rate_rps,
        error_type,
        sum(message_count)::bigint as request_count,
        -- The most frequent message (ties: the alphabetically first), as the example a sentence quotes.
        {{ first_ordered('error_message', most_frequent_first) }} as example_message,
        {{ first_ordered('http_status', most_frequent_first) }} as example_http_status,
        count(distinct error_message) as distinct_message_count,
        min(first_seen_at) as first_seen_at
    from messages
    group by
        run_id,
        experiment_name,
        payload_file,
        concurrency,
        target_rate_rps,
        error_type
)

select * from grouped
