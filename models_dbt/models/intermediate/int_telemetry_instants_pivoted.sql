with

samples as (
    select * from {{ ref('stg_raw__telemetry_samples') }}
    where not is_excluded
),

pivoted as (
    -- The sampler writes the host row and one row per GPU with the same offset_ns for one instant.
    select
        run_id,
        offset_ns,
        min(sampled_at) as sampled_at,
        count(*) filter (where is_gpu) as gpu_count,
        max(cpu_percent) filter (where not is_gpu) as cpu_percent,
        max(memory_used_bytes) filter (where not is_gpu) / pow(2, 30) as host_memory_used_gib,
        avg(gpu_utilization_percent) filter (where is_gpu) as gpu_utilization_percent,
        sum(gpu_memory_used_bytes) filter (where is_gpu) / pow(2, 30) as gpu_memory_used_gib,
        sum(gpu_memory_total_bytes) filter (where is_gpu) / pow(2, 30) as gpu_memory_total_gib,
        sum(gpu_power_w) filter (where is_gpu) as gpu_power_w
    from samples
    group by
        run_id,
        offset_ns
)

select * from pivoted
