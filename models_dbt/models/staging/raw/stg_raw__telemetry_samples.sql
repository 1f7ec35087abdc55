with

source as (
    select * from {{ source('raw', 'telemetry_samples') }}
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
)

select * from renamed
