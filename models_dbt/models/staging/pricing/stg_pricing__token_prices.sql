with

source as (
    select * from {{ source('pricing', 'token_prices') }}
),

renamed as (
    select
        cast(model_id as string) as model_id,
        cast(region as string) as region,
        cast(usd_per_1m_input_tokens as double) as usd_per_1m_input_tokens,
        cast(usd_per_1m_output_tokens as double) as usd_per_1m_output_tokens,
        cast(price_read_on as date) as price_read_on,
        cast(source as string) as price_reference
    from source
)

select * from renamed
