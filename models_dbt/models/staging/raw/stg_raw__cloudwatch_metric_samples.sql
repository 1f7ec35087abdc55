with

source as (
    -- raw.telemetry_samples' rows read from CloudWatch for a SageMaker endpoint after the sweep (raw schema v9).
    select * from {{ source('raw', 'telemetry_samples') }}
    where source like 'cloudwatch:%'
),

renamed as (
    select
        run_id,
        experiment_name,
        replace(source, 'cloudwatch:', '') as service,
        sampled_at as period_started_at,
        offset_ns as period_start_offset_ns,
        cloudwatch_period_s as period_s,
        offset_ns + cast(round(cloudwatch_period_s * 1e9) as bigint) as period_end_offset_ns,
        cloudwatch_invocations as invocations,
        cloudwatch_invocations_per_instance as invocations_per_instance,
        cloudwatch_model_latency_sum_s as model_latency_sum_s,
        cloudwatch_model_latency_count as model_latency_count,
        cloudwatch_overhead_latency_sum_s as overhead_latency_sum_s,
        cloudwatch_overhead_latency_count as overhead_latency_count,
        cloudwatch_gpu_utilization_percent as gpu_utilization_percent,
        cloudwatch_gpu_memory_utilization_percent as gpu_memory_utilization_percent
    from source
    where offset_ns is not null and cloudwatch_period_s > 0 and experiment_name is not null
)

select * from renamed
