with

source as (
    -- Host and GPU rows (source null before v7); the engine's own metrics (source server:<engine>) are
    -- stg_raw__server_metric_samples, a SageMaker endpoint's CloudWatch datapoints stg_raw__cloudwatch_metric_samples,
    -- the collector's event loop (source client) stg_raw__event_loop_samples.
    select * from {{ source('raw', 'telemetry_samples') }}
    where source is null or source in ('host', 'gpu')
),

renamed as (
    select
        run_id,
        sampled_at,
        offset_ns,
        hostname,
        device,
        gpu_index,
        gpu_name,
        gpu_index is not null as is_gpu,
        cpu_percent,
        memory_used_bytes,
        memory_total_bytes,
        gpu_utilization_percent,
        gpu_memory_used_bytes,
        gpu_memory_total_bytes,
        gpu_power_w,
        gpu_energy_j,
        schema_version
    from source
),

checked as (
    select
        *,
        concat_ws(
            '; ',
            {{ range_reason('offset_ns', 0, var('max_sane_duration_ns')) }},
            {{ missing_reason('device') }},
            {{ range_reason('gpu_index', 0, required_when='false') }},
            {{ range_reason('cpu_percent', 0, required_when='false') }},
            {{ range_reason('memory_used_bytes', 0, required_when='false') }},
            {{ range_reason('memory_total_bytes', 0, required_when='false') }},
            {{ range_reason('gpu_utilization_percent', 0, required_when='false') }},
            {{ range_reason('gpu_memory_used_bytes', 0, required_when='false') }},
            {{ range_reason('gpu_memory_total_bytes', 0, required_when='false') }},
            {{ range_reason('gpu_power_w', 0, required_when='false') }},
            {{ range_reason('gpu_energy_j', 0, required_when='false') }}
        ) as value_problems
    from renamed
),

deduplicated as (
    select
        *,
        row_number() over (
            partition by run_id, offset_ns, device
            order by value_problems = '' desc, sampled_at asc
        ) > 1 as is_duplicate
    from checked
),

validated as (
    select
        {{ star_except(['value_problems', 'is_duplicate']) }},
        nullif(
            concat_ws(
                '; ', nullif(value_problems, ''), case when is_duplicate then 'duplicate run_id, offset_ns, device' end
            ),
            ''
        ) as exclusion_reason,
        exclusion_reason is not null as is_excluded
    from deduplicated
)

select * from validated
