with

requests as (
    select * from {{ ref('stg_raw__requests') }}
    where is_excluded or data_issue is not null
),

runs as (
    select * from {{ ref('stg_raw__runs') }}
    where is_excluded
),

experiments as (
    select * from {{ ref('stg_raw__run_experiments') }}
    where is_excluded or set_aside_reason is not null
),

telemetry_samples as (
    select * from {{ ref('stg_raw__telemetry_samples') }}
    where is_excluded
),

quarantined_requests as (
    -- A row the collector landed with a server value set aside (data_issue) is in the metrics, with the
    -- collector's own count; it is listed so the anomaly stays visible.
    select
        'requests' as source_table,
        run_id,
        request_id as record_key,
        case when is_excluded then 'excluded' else 'flagged' end as disposition,
        coalesce(exclusion_reason, data_issue) as reason,
        data_issue
    from requests
),

quarantined_runs as (
    select
        'runs' as source_table,
        run_id,
        run_id as record_key,
        'excluded' as disposition,
        exclusion_reason as reason,
        null as data_issue
    from runs
),

quarantined_experiments as (
    -- An experiment whose recorded price is not sane stays in the metrics, priced as if it had none.
    select
        'run_experiments' as source_table,
        run_id,
        coalesce(experiment_name, 'experiment #' || experiment_position) as record_key,
        case when is_excluded then 'excluded' else 'flagged' end as disposition,
        coalesce(exclusion_reason, set_aside_reason || ' (set aside: priced from pricing/ or not at all)') as reason,
        null as data_issue
    from experiments
),

quarantined_telemetry_samples as (
    select
        'telemetry_samples' as source_table,
        run_id,
        coalesce(device, '?') || ' at ' || coalesce(cast(offset_ns as string), '?') || ' ns' as record_key,
        'excluded' as disposition,
        exclusion_reason as reason,
        null as data_issue
    from telemetry_samples
),

unioned as (
    select * from quarantined_requests
    union all
    select * from quarantined_runs
    union all
    select * from quarantined_experiments
    union all
    select * from quarantined_telemetry_samples
)

select * from unioned
