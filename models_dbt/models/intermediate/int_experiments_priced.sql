with

experiments as (
    select * from {{ ref('stg_raw__run_experiments') }}
    where not is_excluded
),

instance_prices as (
    select * from {{ ref('stg_pricing__instance_prices') }}
),

token_prices as (
    select * from {{ ref('stg_pricing__token_prices') }}
),

classified as (
    select
        *,
        -- The manifest says how an experiment is priced; older manifests without it: by instance if it names one.
        coalesce(pricing_kind, case when instance_type is not null then 'instance' else 'token' end)
            as resolved_pricing_kind
    from experiments
),

candidates as (
    select
        classified.run_id,
        classified.experiment_name,
        classified.model_id,
        classified.endpoint_type,
        classified.instance_type,
        classified.instance_count,
        classified.resolved_pricing_kind as pricing_kind,
        classified.recorded_price_source,
        classified.telemetry_host,
        case
            when classified.resolved_pricing_kind = 'instance'
                then instance_prices.usd_per_hour is not null
            else token_prices.usd_per_1m_input_tokens is not null and token_prices.usd_per_1m_output_tokens is not null
        end as has_current_price,
        case
            when classified.resolved_pricing_kind = 'instance'
                then classified.usd_per_hour is not null
            else classified.usd_per_1m_input_tokens is not null and classified.usd_per_1m_output_tokens is not null
        end as has_recorded_price,
        instance_prices.usd_per_hour as current_usd_per_hour,
        token_prices.usd_per_1m_input_tokens as current_usd_per_1m_input_tokens,
        token_prices.usd_per_1m_output_tokens as current_usd_per_1m_output_tokens,
        coalesce(instance_prices.price_read_on, token_prices.price_read_on) as current_price_read_on,
        classified.usd_per_hour as recorded_usd_per_hour,
        classified.usd_per_1m_input_tokens as recorded_usd_per_1m_input_tokens,
        classified.usd_per_1m_output_tokens as recorded_usd_per_1m_output_tokens,
        classified.price_read_on as recorded_price_read_on
    from classified
    left join instance_prices
        on
            classified.resolved_pricing_kind = 'instance'
            and classified.instance_type = instance_prices.instance_type
    left join token_prices
        on
            classified.resolved_pricing_kind = 'token'
            and classified.model_id = token_prices.model_id
),

chosen as (
    -- With price_source `current`, something missing from pricing/ falls back to the price its manifest
    -- recorded (price_source says which was applied), so a price file that lost a row cannot un-price old
    -- runs. With `recorded`, only recorded prices apply.
    -- A price given in the config is the experiment's own (pricing/ has no say), under either setting; an
    -- experiment benchmarked unpriced has no price at all.
    select
        *,
        case
            when pricing_kind = 'unpriced' then 'none'
            when recorded_price_source = 'config' and has_recorded_price then 'config'
            when '{{ validated_price_source() }}' = 'current' and has_current_price then 'current'
            when has_recorded_price then 'recorded'
            else 'none'
        end as price_source
    from candidates
),

priced as (
    select
        run_id,
        experiment_name,
        model_id,
        endpoint_type,
        instance_type,
        instance_count,
        pricing_kind,
        -- How the endpoint bills, for comparing the ways to serve a model: by instance-hour (an EC2 or SageMaker
        -- instance), per token (an API on demand), or per model unit-hour of Bedrock provisioned throughput (priced
        -- like an instance, from a bedrock-pt: row of instance_prices.csv); null when benchmarked unpriced.
        case
            when pricing_kind = 'token' then 'token'
            when pricing_kind = 'instance' and (endpoint_type = 'bedrock' or instance_type like 'bedrock-pt:%')
                then 'provisioned'
            when pricing_kind = 'instance' then 'instance-hour'
        end as pricing_model,
        price_source,
        telemetry_host,
        case
            when pricing_kind != 'instance' then null
            when price_source = 'current' then current_usd_per_hour
            when price_source in ('recorded', 'config') then recorded_usd_per_hour
        end as usd_per_hour,
        case
            when pricing_kind != 'token' then null
            when price_source = 'current' then current_usd_per_1m_input_tokens
            when price_source in ('recorded', 'config') then recorded_usd_per_1m_input_tokens
        end as usd_per_1m_input_tokens,
        case
            when pricing_kind != 'token' then null
            when price_source = 'current' then current_usd_per_1m_output_tokens
            when price_source in ('recorded', 'config') then recorded_usd_per_1m_output_tokens
        end as usd_per_1m_output_tokens,
        case
            when price_source = 'current' then current_price_read_on
            when price_source in ('recorded', 'config') then recorded_price_read_on
        end as price_read_on
    from chosen
)

select * from priced
