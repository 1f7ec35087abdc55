with

runs as (
    -- The manifests as staged (one per run_id), so a duplicated manifest does not duplicate its experiments.
    select * from {{ ref('stg_raw__runs') }}
    where not is_excluded
),

unnested as (
    -- A manifest whose experiments_json is not a list has no experiments (and so no recorded prices).
    select
        runs.run_id,
        {{ unnest_with_position(json_to_list('runs.experiments_json'), 'experiment', 'experiment_position') }}
    from runs
),

extracted as (
    select
        run_id,
        experiment_position,
        {{ json_extract_text('experiment', '$.experiment_name') }} as experiment_name,
        {{ json_extract_text('experiment', '$.model_id') }} as model_id,
        {{ json_extract_text('experiment', '$.endpoint_type') }} as endpoint_type,
        {{ json_extract_text('experiment', '$.instance_type') }} as instance_type,
        try_cast({{ json_extract_text('experiment', '$.instance_count') }} as integer) as instance_count,
        {{ json_extract_text('experiment', '$.pricing_kind') }} as raw_pricing_kind,
        {{ json_extract_text('experiment', '$.price_source') }} as raw_price_source,
        {{ json_extract_text('experiment', '$.telemetry_host') }} as raw_telemetry_host,
        {{ json_extract_text('experiment', '$.usd_per_hour') }} as raw_usd_per_hour,
        {{ json_extract_text('experiment', '$.usd_per_1m_input_tokens') }} as raw_usd_per_1m_input_tokens,
        {{ json_extract_text('experiment', '$.usd_per_1m_output_tokens') }} as raw_usd_per_1m_output_tokens,
        try_cast({{ json_extract_text('experiment', '$.price_read_on') }} as date) as price_read_on
    from unnested
),

checked as (
    select
        *,
        {{ price_reason('raw_usd_per_hour', 'usd_per_hour') }} as usd_per_hour_problem,
        {{ price_reason('raw_usd_per_1m_input_tokens', 'usd_per_1m_input_tokens') }}
            as usd_per_1m_input_tokens_problem,
        {{ price_reason('raw_usd_per_1m_output_tokens', 'usd_per_1m_output_tokens') }}
            as usd_per_1m_output_tokens_problem,
        case
            when raw_pricing_kind not in ('instance', 'token', 'unpriced')
                then 'pricing_kind ''' || raw_pricing_kind || ''' is not instance, token or unpriced'
        end as pricing_kind_problem,
        case
            when experiment_name is null then 'experiment_name missing'
            when row_number() over (partition by run_id, experiment_name order by experiment_position) > 1
                then 'duplicate experiment_name in the manifest (the first is used)'
        end as exclusion_reason
    from extracted
),

validated as (
    -- A recorded price or pricing kind that is not sane is set aside (as if the manifest had none), so the
    -- experiment is priced from pricing/ or not at all; its latencies and throughputs still count.
    select
        run_id,
        experiment_position,
        experiment_name,
        model_id,
        endpoint_type,
        instance_type,
        instance_count,
        case when pricing_kind_problem is null then raw_pricing_kind end as pricing_kind,
        -- Where the recorded price came from: the config (inline) or pricing/ (also older manifests).
        case when raw_price_source = 'config' then 'config' else 'pricing' end as recorded_price_source,
        -- Whose host the telemetry describes; older manifests do not say: derived from the endpoint type.
        case
            when raw_telemetry_host in ('endpoint', 'collector') then raw_telemetry_host
            when endpoint_type = 'openai' then 'collector'
            else 'endpoint'
        end as telemetry_host,
        case when usd_per_hour_problem is null then try_cast(raw_usd_per_hour as double) end as usd_per_hour,
        case
            when usd_per_1m_input_tokens_problem is null then try_cast(raw_usd_per_1m_input_tokens as double)
        end as usd_per_1m_input_tokens,
        case
            when usd_per_1m_output_tokens_problem is null then try_cast(raw_usd_per_1m_output_tokens as double)
        end as usd_per_1m_output_tokens,
        price_read_on,
        nullif(
            concat_ws(
                '; ',
                pricing_kind_problem,
                usd_per_hour_problem,
                usd_per_1m_input_tokens_problem,
                usd_per_1m_output_tokens_problem
            ),
            ''
        ) as set_aside_reason,
        exclusion_reason,
        exclusion_reason is not null as is_excluded
    from checked
)

select * from validated
