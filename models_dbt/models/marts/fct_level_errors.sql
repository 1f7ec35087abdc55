with

errors as (
    select * from {{ ref('int_errors_grouped') }}
),

levels as (
    select * from {{ ref('int_levels_aggregated') }}
),

final as (
    select
        errors.run_id,
        errors.experiment_name,
        errors.payload_file,
        errors.concurrency,
        errors.target_rate_rps,
        errors.error_type,
        errors.request_count,
        levels.request_count as level_request_count,
        errors.request_count / levels.request_count as share_of_level,
        errors.example_message,
        errors.example_http_status,
        errors.distinct_message_count,
        errors.first_seen_at
    from errors
    inner join levels
        on
            errors.run_id = levels.run_id
            and errors.experiment_name = levels.experiment_name
            and errors.payload_file = levels.payload_file
            and errors.concurrency = levels.concurrency
            and errors.target_rate_rps is not distinct from levels.target_rate_rps
)

select * from final
