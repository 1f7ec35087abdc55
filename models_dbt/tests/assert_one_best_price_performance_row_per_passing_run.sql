-- Exactly one row per run is the best price performance when any dataset-of-interest row has a
-- recommendation, and none otherwise.
with

recommendations as (
    select * from {{ ref('fct_recommendations') }}
),

per_run as (
    select
        run_id,
        count(*) filter (where is_best_price_performance) as best_rows,
        count(*) filter (where has_recommendation and is_dataset_of_interest) as eligible_rows
    from recommendations
    group by run_id
)

select * from per_run
where best_rows != case when eligible_rows > 0 then 1 else 0 end
