with

source as (
    select * from {{ source('raw', 'runs') }}
),

unnested as (
    select
        source.run_id,
        unnest(cast(source.experiments_json as json[])) as experiment
    from source
),

renamed as (
    select
        run_id,
        json_extract_string(experiment, '$.experiment_name') as experiment_name,
        json_extract_string(experiment, '$.model_id') as model_id,
        json_extract_string(experiment, '$.endpoint_type') as endpoint_type,
        json_extract_string(experiment, '$.instance_type') as instance_type,
        cast(json_extract_string(experiment, '$.instance_count') as integer) as instance_count,
        json_extract_string(experiment, '$.pricing_kind') as pricing_kind,
        cast(json_extract_string(experiment, '$.usd_per_hour') as double) as usd_per_hour,
        cast(json_extract_string(experiment, '$.usd_per_1m_input_tokens') as double) as usd_per_1m_input_tokens,
        cast(json_extract_string(experiment, '$.usd_per_1m_output_tokens') as double) as usd_per_1m_output_tokens,
        try_cast(json_extract_string(experiment, '$.price_read_on') as date) as price_read_on
    from unnested
)

select * from renamed
