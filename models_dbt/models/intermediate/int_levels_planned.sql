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

closed_levels as (
    -- Closed-loop levels (a sweep's too: its rates are found during the run, so none of them is planned).
    select
        run_id,
        experiment_position,
        json_extract_string(experiment, '$.name') as experiment_name,
        json_extract_string(experiment, '$.payloads[*]') as payload_files,
        unnest(json_extract(experiment, '$.concurrency_levels[*]'))::integer as concurrency,
        null::double as target_rate_rps,
        generate_subscripts(json_extract(experiment, '$.concurrency_levels[*]'), 1) as concurrency_position
    from experiments
    where coalesce(json_extract_string(experiment, '$.load.model'), 'closed') <> 'rate'
),

rate_levels as (
    -- Open-loop levels: one per target rate, capped at max_in_flight requests in flight (their `concurrency`).
    select
        run_id,
        experiment_position,
        json_extract_string(experiment, '$.name') as experiment_name,
        json_extract_string(experiment, '$.payloads[*]') as payload_files,
        json_extract(experiment, '$.load.max_in_flight')::integer as concurrency,
        unnest(json_extract(experiment, '$.load.rates_per_s[*]'))::double as target_rate_rps,
        generate_subscripts(json_extract(experiment, '$.load.rates_per_s[*]'), 1) as concurrency_position
    from experiments
    where json_extract_string(experiment, '$.load.model') = 'rate'
),

concurrencies as (
    select * from closed_levels
    union all
    select * from rate_levels
),

planned as (
    -- The sweep order of collector/runner.py: experiments in order, concurrency (or rate) outer, payload bucket inner.
    select
        run_id,
        experiment_name,
        unnest(payload_files) as payload_file,
        concurrency,
        target_rate_rps,
        experiment_position,
        concurrency_position,
        generate_subscripts(payload_files, 1) as payload_position
    from concurrencies
)

select * from planned
