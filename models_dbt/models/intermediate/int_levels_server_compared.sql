with

measured_requests as (
    select * from {{ ref('int_requests_timed') }}
    where not is_warmup
),

server_samples as (
    select * from {{ ref('stg_raw__server_metric_samples') }}
),

cloudwatch_samples as (
    select * from {{ ref('stg_raw__cloudwatch_metric_samples') }}
),

viewed_experiments as (
    -- Where each experiment's server-side view comes from: its engine's Prometheus scrapes, its SageMaker
    -- endpoint's CloudWatch datapoints, or the latency the service reported per request (Bedrock's latencyMs).
    select
        run_id,
        experiment_name,
        'server:' || min(engine) as server_view_source,
        min(engine) as engine,
        1 as preference
    from server_samples
    group by
        run_id,
        experiment_name
    union all
    select
        run_id,
        experiment_name,
        'cloudwatch:' || min(service) as server_view_source,
        null as engine,
        2 as preference
    from cloudwatch_samples
    group by
        run_id,
        experiment_name
    union all
    select
        run_id,
        experiment_name,
        'service:' || min(endpoint_type) as server_view_source,
        null as engine,
        3 as preference
    from measured_requests
    where server_latency_s is not null
    group by
        run_id,
        experiment_name
),

ranked_views as (
    -- No QUALIFY: Spark SQL has none.
    select
        *,
        row_number() over (partition by run_id, experiment_name order by preference) as preference_rank
    from viewed_experiments
),

viewed as (
    select * from ranked_views
    where preference_rank = 1
),

levels as (
    select
        run_id,
        experiment_name,
        payload_file,
        concurrency,
        target_rate_rps,
        min(start_offset_ns) as window_start_offset_ns,
        max(end_offset_ns) as window_end_offset_ns,
        count(*) as request_count,
        count(*) filter (where is_success) as success_count,
        coalesce(sum(prompt_tokens), 0) as client_prompt_tokens,
        coalesce(sum(completion_tokens), 0) as client_completion_tokens,
        avg(e2e_latency_s) filter (where is_success) as client_mean_e2e_s,
        avg(ttft_s) filter (where is_success) as client_mean_ttft_s
    from measured_requests
    group by
        run_id,
        experiment_name,
        payload_file,
        concurrency,
        target_rate_rps
),

boundaries as (
    select * from server_samples
    where level_boundary is not null
),

start_edges as (
    -- The last edge scrape before the level's first measured send; it counts only if it is that level's
    -- measured_start (a failed scrape leaves the previous level's measured_end there, and no comparison).
    select
        levels.run_id,
        levels.experiment_name,
        levels.payload_file,
        levels.concurrency,
        levels.target_rate_rps,
        boundaries.level_boundary,
        boundaries.prompt_tokens_total,
        boundaries.generation_tokens_total,
        boundaries.ttft_sum_s,
        boundaries.ttft_count,
        boundaries.e2e_sum_s,
        boundaries.e2e_count,
        boundaries.queue_time_sum_s,
        boundaries.queue_time_count
    from levels
    inner join boundaries
        on
            levels.run_id = boundaries.run_id
            and levels.experiment_name = boundaries.experiment_name
            and levels.window_start_offset_ns >= boundaries.offset_ns
    qualify
        row_number() over (
            partition by
                levels.run_id, levels.experiment_name, levels.payload_file, levels.concurrency, levels.target_rate_rps
            order by boundaries.offset_ns desc
        ) = 1
),

end_edges as (
    -- The first edge scrape after the level's last measured end; it counts only if it is a measured_end.
    select
        levels.run_id,
        levels.experiment_name,
        levels.payload_file,
        levels.concurrency,
        levels.target_rate_rps,
        boundaries.level_boundary,
        boundaries.prompt_tokens_total,
        boundaries.generation_tokens_total,
        boundaries.ttft_sum_s,
        boundaries.ttft_count,
        boundaries.e2e_sum_s,
        boundaries.e2e_count,
        boundaries.queue_time_sum_s,
        boundaries.queue_time_count
    from levels
    inner join boundaries
        on
            levels.run_id = boundaries.run_id
            and levels.experiment_name = boundaries.experiment_name
            and levels.window_end_offset_ns <= boundaries.offset_ns
    qualify
        row_number() over (
            partition by
                levels.run_id, levels.experiment_name, levels.payload_file, levels.concurrency, levels.target_rate_rps
            order by boundaries.offset_ns asc
        ) = 1
),

gauges as (
    -- The once-a-second scrapes inside the level's measured window.
    select
        levels.run_id,
        levels.experiment_name,
        levels.payload_file,
        levels.concurrency,
        levels.target_rate_rps,
        count(*) as gauge_sample_count,
        avg(server_samples.requests_running) as mean_requests_running,
        max(server_samples.requests_running) as max_requests_running,
        avg(server_samples.requests_waiting) as mean_requests_waiting,
        max(server_samples.requests_waiting) as max_requests_waiting,
        avg(server_samples.kv_cache_usage) as mean_kv_cache_usage,
        max(server_samples.kv_cache_usage) as max_kv_cache_usage
    from levels
    inner join server_samples
        on
            levels.run_id = server_samples.run_id
            and levels.experiment_name = server_samples.experiment_name
            and server_samples.level_boundary is null
            and server_samples.offset_ns between levels.window_start_offset_ns and levels.window_end_offset_ns
    group by
        levels.run_id,
        levels.experiment_name,
        levels.payload_file,
        levels.concurrency,
        levels.target_rate_rps
),

cloudwatch_windows as (
    -- The CloudWatch periods wholly inside the level's measured window, in which only the level's measured
    -- requests were in flight (a period across an edge also holds warm-up requests or another level's): latency
    -- means weight every invocation alike (sums over sample counts); GPU use is the mean of the periods' averages.
    select
        levels.run_id,
        levels.experiment_name,
        levels.payload_file,
        levels.concurrency,
        levels.target_rate_rps,
        count(*) as period_count,
        sum(cloudwatch_samples.invocations) as invocations,
        sum(cloudwatch_samples.model_latency_sum_s)
        / nullif(sum(cloudwatch_samples.model_latency_count), 0) as mean_model_latency_s,
        sum(cloudwatch_samples.overhead_latency_sum_s)
        / nullif(sum(cloudwatch_samples.overhead_latency_count), 0) as mean_overhead_latency_s,
        avg(cloudwatch_samples.gpu_utilization_percent) as mean_gpu_utilization_percent,
        avg(cloudwatch_samples.gpu_memory_utilization_percent) as mean_gpu_memory_utilization_percent
    from levels
    inner join cloudwatch_samples
        on
            levels.run_id = cloudwatch_samples.run_id
            and levels.experiment_name = cloudwatch_samples.experiment_name
            and levels.window_start_offset_ns <= cloudwatch_samples.period_start_offset_ns
            and levels.window_end_offset_ns >= cloudwatch_samples.period_end_offset_ns
    group by
        levels.run_id,
        levels.experiment_name,
        levels.payload_file,
        levels.concurrency,
        levels.target_rate_rps
),

service_latencies as (
    -- The latency the service reported for each of the level's measured successes.
    select
        run_id,
        experiment_name,
        payload_file,
        concurrency,
        target_rate_rps,
        count(*) as reported_count,
        avg(server_latency_s) as mean_latency_s
    from measured_requests
    where is_success and server_latency_s is not null
    group by
        run_id,
        experiment_name,
        payload_file,
        concurrency,
        target_rate_rps
),

differenced as (
    select
        levels.run_id,
        levels.experiment_name,
        levels.payload_file,
        levels.concurrency,
        levels.target_rate_rps,
        viewed.server_view_source,
        viewed.engine,
        levels.request_count,
        levels.success_count,
        levels.client_prompt_tokens,
        levels.client_completion_tokens,
        levels.client_mean_e2e_s,
        levels.client_mean_ttft_s,
        coalesce(start_edges.level_boundary = 'measured_start' and end_edges.level_boundary = 'measured_end', false)
            as has_window_edges,
        end_edges.prompt_tokens_total - start_edges.prompt_tokens_total as server_prompt_tokens,
        end_edges.generation_tokens_total - start_edges.generation_tokens_total as server_generation_tokens,
        end_edges.e2e_count - start_edges.e2e_count as server_finished_requests,
        (end_edges.ttft_sum_s - start_edges.ttft_sum_s)
        / nullif(end_edges.ttft_count - start_edges.ttft_count, 0) as server_mean_ttft_s,
        (end_edges.e2e_sum_s - start_edges.e2e_sum_s)
        / nullif(end_edges.e2e_count - start_edges.e2e_count, 0) as server_mean_e2e_s,
        (end_edges.queue_time_sum_s - start_edges.queue_time_sum_s)
        / nullif(end_edges.queue_time_count - start_edges.queue_time_count, 0) as server_mean_queue_time_s,
        coalesce(gauges.gauge_sample_count, 0) as gauge_sample_count,
        gauges.mean_requests_running,
        gauges.max_requests_running,
        gauges.mean_requests_waiting,
        gauges.max_requests_waiting,
        gauges.mean_kv_cache_usage,
        gauges.max_kv_cache_usage,
        case
            when viewed.server_view_source like 'cloudwatch:%' then coalesce(cloudwatch_windows.period_count, 0)
        end as cloudwatch_period_count,
        cloudwatch_windows.invocations as cloudwatch_invocations,
        cloudwatch_windows.mean_model_latency_s as server_mean_model_latency_s,
        cloudwatch_windows.mean_overhead_latency_s as server_mean_overhead_latency_s,
        cloudwatch_windows.mean_gpu_utilization_percent as server_mean_gpu_utilization_percent,
        cloudwatch_windows.mean_gpu_memory_utilization_percent as server_mean_gpu_memory_utilization_percent,
        service_latencies.reported_count as service_reported_count,
        service_latencies.mean_latency_s as service_mean_latency_s
    from levels
    inner join viewed
        on
            levels.run_id = viewed.run_id
            and levels.experiment_name = viewed.experiment_name
    left join start_edges
        on
            levels.run_id = start_edges.run_id
            and levels.experiment_name = start_edges.experiment_name
            and levels.payload_file = start_edges.payload_file
            and levels.concurrency = start_edges.concurrency
            and levels.target_rate_rps is not distinct from start_edges.target_rate_rps
    left join end_edges
        on
            levels.run_id = end_edges.run_id
            and levels.experiment_name = end_edges.experiment_name
            and levels.payload_file = end_edges.payload_file
            and levels.concurrency = end_edges.concurrency
            and levels.target_rate_rps is not distinct from end_edges.target_rate_rps
    left join gauges
        on
            levels.run_id = gauges.run_id
            and levels.experiment_name = gauges.experiment_name
            and levels.payload_file = gauges.payload_file
            and levels.concurrency = gauges.concurrency
            and levels.target_rate_rps is not distinct from gauges.target_rate_rps
    left join cloudwatch_windows
        on
            levels.run_id = cloudwatch_windows.run_id
            and levels.experiment_name = cloudwatch_windows.experiment_name
            and levels.payload_file = cloudwatch_windows.payload_file
            and levels.concurrency = cloudwatch_windows.concurrency
            and levels.target_rate_rps is not distinct from cloudwatch_windows.target_rate_rps
    left join service_latencies
        on
            levels.run_id = service_latencies.run_id
            and levels.experiment_name = service_latencies.experiment_name
            and levels.payload_file = service_latencies.payload_file
            and levels.concurrency = service_latencies.concurrency
            and levels.target_rate_rps is not distinct from service_latencies.target_rate_rps
),

edged as (
    -- An engine's figures are differences only between a level's own two edges (without them, null). CloudWatch's
    -- mean latency is SageMaker's whole time, model plus overhead; the service's, the mean it reported.
    select
        {{ star_except([
            'server_prompt_tokens',
            'server_generation_tokens',
            'server_finished_requests',
            'server_mean_ttft_s',
            'server_mean_e2e_s',
            'server_mean_queue_time_s',
            'cloudwatch_invocations',
            'service_reported_count',
            'service_mean_latency_s',
        ]) }},
        case when has_window_edges then server_prompt_tokens end as server_prompt_tokens,
        case when has_window_edges then server_generation_tokens end as server_generation_tokens,
        case
            when has_window_edges then server_finished_requests
            when server_view_source like 'cloudwatch:%' then cloudwatch_invocations
            when server_view_source like 'service:%' then service_reported_count
        end as server_finished_requests,
        case when has_window_edges then server_mean_ttft_s end as server_mean_ttft_s,
        case
            when has_window_edges then server_mean_e2e_s
            when server_view_source like 'cloudwatch:%'
                then server_mean_model_latency_s + server_mean_overhead_latency_s
            when server_view_source like 'service:%' then service_mean_latency_s
        end as server_mean_e2e_s,
        case when has_window_edges then server_mean_queue_time_s end as server_mean_queue_time_s
    from differenced
),

compared as (
    select
        *,
        server_prompt_tokens - client_prompt_tokens as prompt_tokens_difference,
        server_generation_tokens - client_completion_tokens as completion_tokens_difference,
        case
            when server_prompt_tokens is not null and server_generation_tokens is not null
                then
                    server_prompt_tokens = client_prompt_tokens
                    and server_generation_tokens = client_completion_tokens
        end as is_token_total_matching,
        client_mean_e2e_s - server_mean_e2e_s as e2e_gap_s,
        client_mean_ttft_s - server_mean_ttft_s as ttft_gap_s
    from edged
)

select * from compared
