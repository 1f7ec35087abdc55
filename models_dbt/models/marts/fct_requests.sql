with

requests as (
    select * from {{ ref('int_requests_timed') }}
),

prices as (
    select * from {{ ref('int_experiments_priced') }}
),

levels as (
    select * from {{ ref('fct_concurrency_metrics') }}
),

costed as (
    select
        requests.request_id,
        requests.run_id,
        requests.experiment_name,
        requests.model_id,
        requests.endpoint_type,
        requests.instance_type,
        requests.instance_count,
        requests.payload_file,
        requests.prompt_index,
        requests.concurrency,
        requests.target_rate_rps,
        requests.worker_index,
        requests.sequence_in_level,
        requests.is_warmup,
        requests.is_streaming,
        requests.started_at,
        requests.start_offset_ns,
        requests.end_offset_ns,
        requests.status,
        requests.is_success,
        requests.http_status,
        requests.error_type,
        requests.error_message,
        requests.finish_reason,
        requests.e2e_latency_s,
        requests.ttft_s,
        requests.tpot_s,
        requests.prompt_tokens,
        requests.completion_tokens,
        requests.token_count_source,
        requests.token_counter,
        requests.client_prompt_tokens,
        requests.client_completion_tokens,
        requests.server_prompt_tokens,
        requests.server_completion_tokens,
        requests.prompt_token_relative_difference,
        requests.completion_token_relative_difference,
        requests.is_prompt_token_count_disagreeing,
        requests.is_completion_token_count_disagreeing,
        requests.chunk_count,
        requests.content_chunk_count,
        requests.data_issue,
        requests.source_tool,
        requests.source_request_id,
        prices.pricing_kind,
        prices.pricing_model,
        prices.price_source,
        -- Failed requests are attributed no cost: instance time spent on them is already spread over the
        -- successes through the level's throughput, and a token API is assumed not to bill a failed call.
        case
            when not requests.is_success then 0
            when prices.pricing_kind = 'token'
                then {{ token_cost_usd(
                    'coalesce(requests.prompt_tokens, 0)', 'coalesce(requests.completion_tokens, 0)'
                ) }}
            when prices.pricing_kind = 'instance' then levels.price_per_txn
        end as cost_usd
    from requests
    left join prices
        on
            requests.run_id = prices.run_id
            and requests.experiment_name = prices.experiment_name
    left join levels
        on
            requests.run_id = levels.run_id
            and requests.experiment_name = levels.experiment_name
            and requests.payload_file = levels.payload_file
            and requests.concurrency = levels.concurrency
            and requests.target_rate_rps is not distinct from levels.target_rate_rps
)

select * from costed
