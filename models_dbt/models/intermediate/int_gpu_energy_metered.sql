with

windows as (
    select * from {{ ref('int_concurrency_windows_bounded') }}
),

gpu_samples as (
    select * from {{ ref('stg_raw__telemetry_samples') }}
    where is_gpu and not is_excluded
),

segments as (
    -- Consecutive readings of one GPU; power and the energy counter are taken as linear in between.
    select
        run_id,
        gpu_index,
        offset_ns as segment_start_ns,
        lead(offset_ns) over gpu_timeline as segment_end_ns,
        gpu_power_w as start_power_w,
        lead(gpu_power_w) over gpu_timeline as end_power_w,
        gpu_energy_j as start_energy_j,
        lead(gpu_energy_j) over gpu_timeline as end_energy_j
    from gpu_samples
    window gpu_timeline as (partition by run_id, gpu_index order by offset_ns)
),

window_overlaps as (
    -- The part of each segment inside the window, so a window's edges between two readings count pro rata.
    select
        windows.run_id,
        windows.experiment_name,
        windows.concurrency,
        windows.target_rate_rps,
        segments.gpu_index,
        segments.segment_start_ns,
        segments.segment_end_ns,
        segments.start_power_w,
        segments.end_power_w,
        segments.start_energy_j,
        segments.end_energy_j,
        greatest(segments.segment_start_ns, windows.window_start_offset_ns) as overlap_start_ns,
        least(segments.segment_end_ns, windows.window_end_offset_ns) as overlap_end_ns
    from windows
    inner join segments
        on
            windows.run_id = segments.run_id
            and windows.window_end_offset_ns > segments.segment_start_ns
            and windows.window_start_offset_ns < segments.segment_end_ns
),

interpolated as (
    select
        *,
        (overlap_end_ns - overlap_start_ns) / 1e9 as overlap_s,
        (overlap_start_ns - segment_start_ns) / (segment_end_ns - segment_start_ns) as overlap_start_fraction,
        (overlap_end_ns - segment_start_ns) / (segment_end_ns - segment_start_ns) as overlap_end_fraction
    from window_overlaps
),

segment_energy as (
    select
        run_id,
        experiment_name,
        concurrency,
        target_rate_rps,
        gpu_index,
        overlap_s,
        -- The energy counter's increase over the segment, pro rata to the overlap; else the trapezoid of the
        -- power linearly interpolated at the overlap's ends. A counter that went down (a driver reload resets
        -- it) says nothing about the segment, so the power is used there.
        coalesce(
            case
                when end_energy_j >= start_energy_j
                    then (end_energy_j - start_energy_j) * (overlap_end_fraction - overlap_start_fraction)
            end,
            (
                start_power_w + (end_power_w - start_power_w) * overlap_start_fraction
                + start_power_w + (end_power_w - start_power_w) * overlap_end_fraction
            ) / 2 * overlap_s
        ) as energy_j,
        case
            when end_energy_j >= start_energy_j then 'energy_counter'
            when start_power_w is not null and end_power_w is not null then 'power_trapezoid'
        end as energy_method
    from interpolated
),

per_gpu as (
    select
        run_id,
        experiment_name,
        concurrency,
        target_rate_rps,
        gpu_index,
        sum(energy_j) as energy_j,
        sum(overlap_s) filter (where energy_j is not null) as metered_s
    from segment_energy
    group by
        run_id,
        experiment_name,
        concurrency,
        target_rate_rps,
        gpu_index
),

methods as (
    select
        run_id,
        experiment_name,
        concurrency,
        target_rate_rps,
        {{ string_agg_distinct_sorted('energy_method', "'+'") }} as gpu_energy_method
    from segment_energy
    group by
        run_id,
        experiment_name,
        concurrency,
        target_rate_rps
),

metered as (
    select
        per_gpu.run_id,
        per_gpu.experiment_name,
        per_gpu.concurrency,
        per_gpu.target_rate_rps,
        sum(per_gpu.energy_j) as gpu_energy_j,
        count(per_gpu.energy_j) as metered_gpu_count,
        min(per_gpu.metered_s) as gpu_energy_metered_s,
        {{ any_non_null('methods.gpu_energy_method') }} as gpu_energy_method
    from per_gpu
    inner join methods
        on
            per_gpu.run_id = methods.run_id
            and per_gpu.experiment_name = methods.experiment_name
            and per_gpu.concurrency = methods.concurrency
            and per_gpu.target_rate_rps is not distinct from methods.target_rate_rps
    group by
        per_gpu.run_id,
        per_gpu.experiment_name,
        per_gpu.concurrency,
        per_gpu.target_rate_rps
)

select * from metered
