with

windows as (
    select * from {{ ref('int_concurrency_windows_bounded') }}
),

instants as (
    select * from {{ ref('int_telemetry_instants_pivoted') }}
),

energy as (
    select * from {{ ref('int_gpu_energy_metered') }}
),

experiments as (
    select * from {{ ref('int_experiments_priced') }}
),

summarised as (
    -- Every sampling instant inside the level's window (first measured request start to last end).
    select
        windows.run_id,
        windows.experiment_name,
        windows.model_id,
        windows.instance_type,
        windows.instance_count,
        windows.concurrency,
        windows.target_rate_rps,
        windows.window_start_offset_ns,
        windows.window_end_offset_ns,
        windows.window_duration_s,
        windows.request_count,
        windows.success_count,
        windows.success_completion_tokens,
        count(instants.offset_ns) as sample_count,
        max(instants.gpu_count) as gpu_count,
        {{ five_number_summary('instants.cpu_percent', 'cpu_percent') }},
        {{ five_number_summary('instants.host_memory_used_gib', 'host_memory_used_gib') }},
        {{ five_number_summary('instants.gpu_utilization_percent', 'gpu_utilization_percent') }},
        {{ five_number_summary('instants.gpu_memory_used_gib', 'gpu_memory_used_gib') }},
        {{ five_number_summary('instants.gpu_memory_total_gib', 'gpu_memory_total_gib') }},
        {{ five_number_summary('instants.gpu_power_w', 'gpu_power_w') }}
    from windows
    left join instants
        on
            windows.run_id = instants.run_id
            and instants.offset_ns between windows.window_start_offset_ns and windows.window_end_offset_ns
    group by
        windows.run_id,
        windows.experiment_name,
        windows.model_id,
        windows.instance_type,
        windows.instance_count,
        windows.concurrency,
        windows.target_rate_rps,
        windows.window_start_offset_ns,
        windows.window_end_offset_ns,
        windows.window_duration_s,
        windows.request_count,
        windows.success_count,
        windows.success_completion_tokens
),

final as (
    select
        summarised.*,
        -- Whose host these samples describe: the endpoint's, or only the collector's (a remote endpoint).
        coalesce(experiments.telemetry_host, 'endpoint') as telemetry_host,
        energy.gpu_energy_j,
        energy.gpu_energy_method,
        energy.gpu_energy_metered_s,
        energy.gpu_energy_j / nullif(summarised.success_completion_tokens, 0) as gpu_energy_per_output_token_j
    from summarised
    left join energy
        on
            summarised.run_id = energy.run_id
            and summarised.experiment_name = energy.experiment_name
            and summarised.concurrency = energy.concurrency
            and summarised.target_rate_rps is not distinct from energy.target_rate_rps
    left join experiments
        on
            summarised.run_id = experiments.run_id
            and summarised.experiment_name = experiments.experiment_name
)

select * from final
