with

samples as (
    select * from {{ ref('stg_raw__event_loop_samples') }}
),

levels as (
    select * from {{ ref('int_levels_aggregated') }}
),

levelled as (
    -- The collector's event-loop lag while each level ran (its measured span; a level's repeats and the pauses
    -- between them included). A loop that wakes late sends late and reads replies late: client time in the figures.
    select
        levels.run_id,
        levels.experiment_name,
        levels.payload_file,
        levels.concurrency,
        levels.target_rate_rps,
        count(*) as event_loop_sample_count,
        {{ percentile_cont('samples.event_loop_lag_s', 0.50) }} as event_loop_lag_p50,
        {{ percentile_cont('samples.event_loop_lag_s', 0.99) }} as event_loop_lag_p99,
        max(samples.event_loop_lag_s) as event_loop_lag_max
    from levels
    inner join samples
        on
            levels.run_id = samples.run_id
            and levels.experiment_name = samples.experiment_name
            and samples.offset_ns between levels.level_start_offset_ns and levels.level_end_offset_ns
    group by
        levels.run_id,
        levels.experiment_name,
        levels.payload_file,
        levels.concurrency,
        levels.target_rate_rps
)

select * from levelled
