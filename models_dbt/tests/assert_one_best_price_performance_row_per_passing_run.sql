-- Exactly one row per run is the best price performance when any priced dataset-of-interest row has a
-- recommendation, and none otherwise (an unpriced row has no price performance to rank).
with

recommendations as (
    select * from {{ ref('fct_recommendations') }}
),

per_run as (
    select
        run_id,
        count(*) filter (where is_best_price_performance) as best_rows,
        count(*) filter (
            where has_recommendation and is_dataset_of_interest and cost_per_10k_txn is not null
        ) as eligible_rows
    from recommendations
    group by run_id
)

select * from per_run
where best_rows != case when eligible_rows > 0 then 1 else 0 end
