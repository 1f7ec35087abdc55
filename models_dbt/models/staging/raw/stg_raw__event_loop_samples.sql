with

source as (
    -- raw.telemetry_samples' rows of the collector's own event loop (source client, raw schema v9; none before).
    select * from {{ source('raw', 'telemetry_samples') }}
    where source = 'client'
),

renamed as (
    select
        run_id,
        experiment_name,
        offset_ns,
        sampled_at,
        hostname,
        event_loop_lag_s
    from source
    where offset_ns is not null and event_loop_lag_s >= 0
)

select * from renamed
