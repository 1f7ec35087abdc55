-- Every measured request is counted in exactly one row of fct_concurrency_metrics (warm-up in none).
with

requests as (
    select * from {{ ref('fct_requests') }}
),

levels as (
    select * from {{ ref('fct_concurrency_metrics') }}
),

measured as (
    select count(*) as measured_requests
    from requests
    where not is_warmup
),

counted as (
    select sum(request_count) as counted_requests
    from levels
),

compared as (
    select
        measured.measured_requests,
        counted.counted_requests
    from measured
    cross join counted
)

select * from compared
where measured_requests != counted_requests
