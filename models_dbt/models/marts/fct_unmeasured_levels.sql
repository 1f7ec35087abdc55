with

planned as (
    select * from {{ ref('int_levels_planned') }}
),

measured as (
    select * from {{ ref('int_levels_aggregated') }}
),

runs as (
    select * from {{ ref('int_runs_budgeted') }}
),

unmeasured as (
    -- A planned level without one measured request: the run ended (interrupted, failed, lost) or has not
    -- reached it yet. A level cut off during its warm-up counts as unmeasured, as the marts ignore warm-up.
    select
        planned.run_id,
        planned.experiment_name,
        planned.payload_file,
        planned.concurrency,
        planned.target_rate_rps,
        runs.status as run_status,
        row_number() over (
            partition by planned.run_id
            order by planned.experiment_position, planned.concurrency_position, planned.payload_position
        ) as unmeasured_position
    from planned
    inner join runs
        on planned.run_id = runs.run_id
    left join measured
        on
            planned.run_id = measured.run_id
            and planned.experiment_name = measured.experiment_name
            and planned.payload_file = measured.payload_file
            and planned.concurrency = measured.concurrency
            and planned.target_rate_rps is not distinct from measured.target_rate_rps
    where measured.run_id is null
)

select * from unmeasured
