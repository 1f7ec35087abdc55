with

instants as (
    select * from {{ ref('int_telemetry_instants_pivoted') }}
),

windows as (
    select * from {{ ref('int_concurrency_windows_bounded') }}
),

placed as (
    -- An instant belongs to the concurrency window it falls in; between windows (warm-up, start-up) it has none.
    -- Sweeps run levels one after another; should windows overlap all the same, the latest-started one wins.
    select
        instants.run_id,
        instants.offset_ns,
        instants.offset_ns / 1e9 as seconds_since_run_start,
        instants.sampled_at,
        windows.experiment_name,
        windows.concurrency,
        windows.target_rate_rps,
        instants.gpu_count,
        instants.cpu_percent,
        instants.host_memory_used_gib,
        instants.gpu_utilization_percent,
        instants.gpu_memory_used_gib,
        instants.gpu_memory_total_gib,
        instants.gpu_power_w
    from instants
    left join windows
        on
            instants.run_id = windows.run_id
            and instants.offset_ns between windows.window_start_offset_ns and windows.window_end_offset_ns
    qualify
        row_number() over (
            partition by instants.run_id, instants.offset_ns
            order by windows.window_start_offset_ns desc nulls last
        ) = 1
)

select * from placed
