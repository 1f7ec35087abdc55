with

runs as (
    select * from {{ ref('int_runs_budgeted') }}
),

experiments as (
    -- The resolved config the manifest recorded; one that has no experiments list plans nothing.
    select
        runs.run_id,
        unnest(json_extract(runs.config_json, '$.experiments[*]')) as experiment,
        generate_subscripts(json_extract(runs.config_json, '$.experiments[*]'), 1) as experiment_position
    from runs
),

concurrencies as (
    select
        run_id,
        experiment_position,
        json_extract_string(experiment, '$.name') as experiment_name,
        json_extract_string(experiment, '$.payloads[*]') as payload_files,
        unnest(json_extract(experiment, '$.concurrency_levels[*]'))::integer as concurrency,
        generate_subscripts(json_extract(experiment, '$.concurrency_levels[*]'), 1) as concurrency_position
    from experiments
),

planned as (
    -- The sweep order of collector/runner.py: experiments in order, concurrency outer, payload bucket inner.
    select
        run_id,
        experiment_name,
        unnest(payload_files) as payload_file,
        concurrency,
        experiment_position,
        concurrency_position,
        generate_subscripts(payload_files, 1) as payload_position
    from concurrencies
)

select * from planned
