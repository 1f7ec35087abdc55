with

source as (
    select * from {{ source('pricing', 'instance_prices') }}
),

renamed as (
    select
        cast(instance_type as string) as instance_type,
        cast(region as string) as region,
        cast(usd_per_hour as double) as usd_per_hour,
        cast(price_read_on as date) as price_read_on,
        cast(source as string) as price_reference
    from source
)

select * from renamed
