with

requests as (
    select * from {{ ref('int_requests_timed') }}
),

prices as (
    select * from {{ ref('int_experiments_priced') }}
),

experiments as (
    -- Warm-up included: the instance (or the API) was paid for it too.
    select
        run_id,
        experiment_name,
        model_id,
        instance_type,
        instance_count,
        count(*) as request_count,
        count(*) filter (where is_success) as success_count,
        min(started_at) as experiment_started_at,
        min(start_offset_ns) as experiment_start_offset_ns,
        max(end_offset_ns) as experiment_end_offset_ns,
        coalesce(sum(prompt_tokens) filter (where is_success), 0) as success_prompt_tokens,
        coalesce(sum(completion_tokens) filter (where is_success), 0) as success_completion_tokens
    from requests
    group by
        run_id,
        experiment_name,
        model_id,
        instance_type,
        instance_count
),

costed as (
    select
        experiments.run_id,
        experiments.experiment_name,
        experiments.model_id,
        experiments.instance_type,
        experiments.instance_count,
        experiments.request_count,
        experiments.success_count,
        experiments.experiment_started_at,
        experiments.experiment_start_offset_ns,
        experiments.experiment_end_offset_ns,
        (experiments.experiment_end_offset_ns - experiments.experiment_start_offset_ns) / 1e9 as duration_s,
        experiments.success_prompt_tokens,
        experiments.success_completion_tokens,
        prices.pricing_kind,
        prices.pricing_model,
        prices.price_source,
        prices.usd_per_hour,
        prices.usd_per_1m_input_tokens,
        prices.usd_per_1m_output_tokens,
        prices.price_read_on,
        case
            when prices.pricing_kind = 'instance'
                then prices.usd_per_hour * experiments.instance_count * duration_s / 3600
            when prices.pricing_kind = 'token'
                then {{ token_cost_usd('experiments.success_prompt_tokens', 'experiments.success_completion_tokens') }}
        end as cost_usd
    from experiments
    left join prices
        on
            experiments.run_id = prices.run_id
            and experiments.experiment_name = prices.experiment_name
)

select * from costed
