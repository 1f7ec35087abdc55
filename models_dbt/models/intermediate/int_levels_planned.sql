with

runs as (
    select * from {{ ref('int_runs_budgeted') }}
),

experiments as (
    -- The resolved config the manifest recorded; one that has no experiments list plans nothing.
    select
        runs.run_id,
        {{ unnest_with_position(
            json_extract_list('runs.config_json', '$.experiments'), 'experiment', 'experiment_position'
        ) }}
    from runs
),

closed_levels as (
    -- Closed-loop levels (a sweep's too: its rates are found during the run, so none of them is planned).
    select
        run_id,
        experiment_position,
        {{ json_extract_text('experiment', '$.name') }} as experiment_name,
        {{ json_extract_list('experiment', '$.payloads', as_text=true) }} as payload_files,
        null::double as target_rate_rps,
        {{ unnest_with_position(
            json_extract_list('experiment', '$.concurrency_levels'), 'concurrency', 'concurrency_position', 'integer'
        ) }}
    from experiments
    where coalesce({{ json_extract_text('experiment', '$.load.model') }}, 'closed') <> 'rate'
),

rate_levels as (
    -- Open-loop levels: one per target rate, capped at max_in_flight requests in flight (their `concurrency`).
    select
        run_id,
        experiment_position,
        {{ json_extract_text('experiment', '$.name') }} as experiment_name,
        {{ json_extract_list('experiment', '$.payloads', as_text=true) }} as payload_files,
        {{ json_extract_value('experiment', '$.load.max_in_flight') }}::integer as concurrency,
        {{ unnest_with_position(
            json_extract_list('experiment', '$.load.rates_per_s'), 'target_rate_rps', 'concurrency_position', 'double'
        ) }}
    from experiments
    where {{ json_extract_text('experiment', '$.load.model') }} = 'rate'
),

concurrencies as (
    -- By name: each side lists its unnested columns last.
    select
        run_id,
        experiment_position,
        experiment_name,
        payload_files,
        concurrency,
        target_rate_rps,
        concurrency_position
    from closed_levels
    union all
    select
        run_id,
        experiment_position,
        experiment_name,
        payload_files,
        concurrency,
        target_rate_rps,
        concurrency_position
    from rate_levels
),

payloads as (
    select
        run_id,
        experiment_name,
        concurrency,
        target_rate_rps,
        experiment_position,
        concurrency_position,
        {{ unnest_with_position('payload_files', 'payload_file', 'payload_position') }}
    from concurrencies
),

planned as (
    -- The sweep order of collector/runner.py: experiments in order, concurrency (or rate) outer, payload bucket inner.
    select
        run_id,
        experiment_name,
        payload_file,
        concurrency,
        target_rate_rps,
        experiment_position,
        concurrency_position,
        payload_position
    from payloads
)

select * from planned
