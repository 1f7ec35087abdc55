{#- The measured figures of a level: pooled over all its repeats (by_repeat=false: int_levels_aggregated), or one
    row per repeat (by_repeat=true: int_level_repeats_aggregated, whose spread the marts show). One definition of
    every level metric at both grains. The windows (steady state, schedule, saturation thirds) are always per
    repeat: each repeat ramps up and down on its own. -#}
{% macro levels_aggregated(by_repeat=false) %}
{% set repeat_column = "\n        repeat_index," if by_repeat else "" %}
{% set repeat_key = ",\n        repeat_index" if by_repeat else "" %}
{% set repeat_join = "\n            and spanned.repeat_index is not distinct from inter_token_latencies.repeat_index"
    if by_repeat else "" %}
{% set read_buckets_repeat_column = "\n        read_buckets.repeat_index," if by_repeat else "" %}
{% set gaps_repeat_join = "\n            and token_gaps.repeat_index is not distinct from read_buckets.repeat_index"
    if by_repeat else "" %}
{% set repeat_totals_join = "\n            and percentiles_read.repeat_index is not distinct from repeat_totals.repeat_index"
    if by_repeat else "" %}
{% set third_medians_join = "\n            and percentiles_read.repeat_index is not distinct from third_medians.repeat_index"
    if by_repeat else "" %}
{% set no_gaps = "\n    where false" if by_repeat else "" %}
with

requests as {{ not_materialized() }} (
    select * from {{ ref('int_requests_timed') }}
    where not is_warmup
),

runs as (
    select * from {{ ref('int_runs_budgeted') }}
),

measured_requests as {{ not_materialized() }} (
    -- A good request succeeded and met every SLO its run sets (vLLM's --goodput, DistServe): a TTFT it lacks
    -- (not streamed) cannot be shown to meet one; a reply of one token has no TPOT and meets that one. Read four
    -- times below, each time for a few columns: scanned each time, not buffered whole (10^8 rows at scale).
    select
        requests.*,
        requests.is_success
        and coalesce(runs.slo_ttft_s is null or requests.ttft_s <= runs.slo_ttft_s, false)
        and coalesce(
            runs.slo_tpot_s is null
            or coalesce(requests.completion_tokens, 0) < 2
            or requests.tpot_s <= runs.slo_tpot_s,
            false
        )
        and coalesce(runs.slo_e2e_s is null or requests.e2e_latency_s <= runs.slo_e2e_s, false) as is_good
    from requests
    left join runs
        on requests.run_id = runs.run_id
),

token_gaps as {{ not_materialized() }} (
    -- A repeat's own ITL is not used (the pooled level's is): per repeat it is left null, its gaps not read. Read
    -- twice below (a level has about 4 x 10^7 gaps at 10^8 requests): computed twice, not buffered whole.
    select * from {{ ref('int_token_gaps_measured') }}{{ no_gaps }}
),

gap_buckets as (
    -- The exact ITL percentiles without sorting every gap. First pass: each level's gaps counted per microsecond
    -- (a hash aggregate, no sort), with their sum for the mean.
    select
        run_id,
        experiment_name,
        payload_file,
        concurrency,
        target_rate_rps,{{ repeat_column }}
        floor(gap_s * 1e6) as gap_bucket,
        count(*) as bucket_gap_count,
        sum(gap_s) as bucket_gap_sum
    from token_gaps
    group by
        run_id,
        experiment_name,
        payload_file,
        concurrency,
        target_rate_rps,{{ repeat_column }}
        floor(gap_s * 1e6)
),

bucket_ranges as (
    -- Each bucket's ranks in its level: the gaps before it, and the level's count and mean.
    select
        *,
        sum(bucket_gap_count) over (
            partition by run_id, experiment_name, payload_file, concurrency, target_rate_rps{{ repeat_key }}
            order by gap_bucket
            rows between unbounded preceding and current row
        ) - bucket_gap_count as gaps_before_bucket,
        sum(bucket_gap_count) over (
            partition by run_id, experiment_name, payload_file, concurrency, target_rate_rps{{ repeat_key }}
        ) as itl_gap_count,
        sum(bucket_gap_sum) over (
            partition by run_id, experiment_name, payload_file, concurrency, target_rate_rps{{ repeat_key }}
        ) as itl_gap_sum
    from gap_buckets
),

read_buckets as (
    -- The buckets holding a rank that a percentile below reads (ranked_percentile: floor(h) + 1 and ceil(h) + 1,
    -- h = (count - 1) x fraction).
    select
        run_id,
        experiment_name,
        payload_file,
        concurrency,
        target_rate_rps,{{ repeat_column }}
        gap_bucket,
        gaps_before_bucket,
        itl_gap_count,
        itl_gap_sum / itl_gap_count as itl_mean
    from bucket_ranges
    where
        {%- for fraction in [0.50, 0.95, 0.99] %}
        {{ 'or ' if not loop.first }}floor((itl_gap_count - 1) * cast({{ fraction }} as double)) + 1
        between gaps_before_bucket + 1 and gaps_before_bucket + bucket_gap_count
        or ceil((itl_gap_count - 1) * cast({{ fraction }} as double)) + 1
        between gaps_before_bucket + 1 and gaps_before_bucket + bucket_gap_count
        {%- endfor %}
),

ranked_gaps as (
    -- Second pass: only the gaps in those buckets, ranked in their level (the gaps before their bucket, then their
    -- order within it), so that the sort holds a few buckets' gaps, not the level's.
    select
        read_buckets.run_id,
        read_buckets.experiment_name,
        read_buckets.payload_file,
        read_buckets.concurrency,
        read_buckets.target_rate_rps,{{ read_buckets_repeat_column }}
        read_buckets.itl_gap_count,
        read_buckets.itl_mean,
        token_gaps.gap_s,
        read_buckets.gaps_before_bucket + row_number() over (
            partition by
                read_buckets.run_id,
                read_buckets.experiment_name,
                read_buckets.payload_file,
                read_buckets.concurrency,
                read_buckets.target_rate_rps,{{ read_buckets_repeat_column }}
                read_buckets.gap_bucket
            order by token_gaps.gap_s
        ) as gap_rank
    from token_gaps
    inner join read_buckets
        on
            token_gaps.run_id is not distinct from read_buckets.run_id
            and token_gaps.experiment_name is not distinct from read_buckets.experiment_name
            and token_gaps.payload_file is not distinct from read_buckets.payload_file
            and token_gaps.concurrency is not distinct from read_buckets.concurrency
            and token_gaps.target_rate_rps is not distinct from read_buckets.target_rate_rps{{ gaps_repeat_join }}
            and floor(token_gaps.gap_s * 1e6) = read_buckets.gap_bucket
),

inter_token_latencies as (
    -- Every gap between consecutive content chunks of the level's successful streamed requests, pooled.
    select
        run_id,
        experiment_name,
        payload_file,
        concurrency,
        target_rate_rps,{{ repeat_column }}
        itl_gap_count,
        itl_mean,
        {{ ranked_percentile('gap_s', 'gap_rank', 'itl_gap_count', 0.50) }} as itl_p50,
        {{ ranked_percentile('gap_s', 'gap_rank', 'itl_gap_count', 0.95) }} as itl_p95,
        {{ ranked_percentile('gap_s', 'gap_rank', 'itl_gap_count', 0.99) }} as itl_p99
    from ranked_gaps
    group by
        run_id,
        experiment_name,
        payload_file,
        concurrency,
        target_rate_rps,{{ repeat_column }}
        itl_gap_count,
        itl_mean
),

repeat_bounds as (
    -- Each repeat's own bounds (a level's repeats run back to back, and the pauses between them are not load),
    -- as aggregates rather than windows over every request. A closed loop keeps `concurrency` requests in flight
    -- until the first worker finds no more work (the level's last start) and then until the first of the requests
    -- still running ends: the ramp-down starts there, with fewer in flight (and those running faster). An open
    -- loop runs at its rate over its schedule: from the first intended send to the last.
    select
        run_id,
        experiment_name,
        payload_file,
        concurrency,
        target_rate_rps,
        repeat_index,
        max(start_offset_ns) as last_start_ns,
        min(intended_offset_ns) as scheduled_start_offset_ns,
        max(intended_offset_ns) as scheduled_end_offset_ns,
        max(end_offset_ns) - min(start_offset_ns) as repeat_span_ns,
        min(case when is_success then end_offset_ns end) as first_success_end_offset_ns
    from measured_requests
    group by
        run_id,
        experiment_name,
        payload_file,
        concurrency,
        target_rate_rps,
        repeat_index
),

repeat_edges as (
    -- The ramp-down's start: the first end after the last start.
    select
        measured_requests.run_id,
        measured_requests.experiment_name,
        measured_requests.payload_file,
        measured_requests.concurrency,
        measured_requests.target_rate_rps,
        measured_requests.repeat_index,
        min(measured_requests.end_offset_ns) as steady_end_offset_ns
    from measured_requests
    inner join repeat_bounds
        on
            measured_requests.run_id is not distinct from repeat_bounds.run_id
            and measured_requests.experiment_name is not distinct from repeat_bounds.experiment_name
            and measured_requests.payload_file is not distinct from repeat_bounds.payload_file
            and measured_requests.concurrency is not distinct from repeat_bounds.concurrency
            and measured_requests.target_rate_rps is not distinct from repeat_bounds.target_rate_rps
            and measured_requests.repeat_index is not distinct from repeat_bounds.repeat_index
    where measured_requests.end_offset_ns > repeat_bounds.last_start_ns
    group by
        measured_requests.run_id,
        measured_requests.experiment_name,
        measured_requests.payload_file,
        measured_requests.concurrency,
        measured_requests.target_rate_rps,
        measured_requests.repeat_index
),

repeats as (
    select
        repeat_bounds.*,
        repeat_edges.steady_end_offset_ns
    from repeat_bounds
    left join repeat_edges
        on
            repeat_bounds.run_id is not distinct from repeat_edges.run_id
            and repeat_bounds.experiment_name is not distinct from repeat_edges.experiment_name
            and repeat_bounds.payload_file is not distinct from repeat_edges.payload_file
            and repeat_bounds.concurrency is not distinct from repeat_edges.concurrency
            and repeat_bounds.target_rate_rps is not distinct from repeat_edges.target_rate_rps
            and repeat_bounds.repeat_index is not distinct from repeat_edges.repeat_index
),

repeat_totals as (
    -- A level's repeats: their spans and schedules add up, the pauses between repeats left out.
    select
        run_id,
        experiment_name,
        payload_file,
        concurrency,
        target_rate_rps,{{ repeat_column }}
        count(*) as repeat_count,
        sum(repeat_span_ns) as repeats_span_ns,
        sum(scheduled_end_offset_ns - scheduled_start_offset_ns) as repeats_scheduled_ns
    from repeats
    group by
        run_id,
        experiment_name,
        payload_file,
        concurrency,
        target_rate_rps{{ repeat_key }}
),

windowed as (
    -- The steady-state requests. Closed loop: those that ended by the ramp-down's start, all of their life at the
    -- intended load (at concurrency 1 every request: one in flight is the intended load throughout). Open loop:
    -- the scheduled interval (first to last intended send) shifted by the first reply's latency, so that it
    -- starts at the first success's end: the successes that ended after it and within it (a server keeping up
    -- answers n - 1 of the n sends in the n - 1 gaps; a span from the first send adds the first reply's latency).
    select
        measured_requests.*,
        repeats.scheduled_start_offset_ns,
        repeats.scheduled_end_offset_ns,
        repeats.steady_end_offset_ns,
        repeats.first_success_end_offset_ns,
        case
            when measured_requests.load_model = 'rate'
                then coalesce(
                        measured_requests.is_success
                        and measured_requests.end_offset_ns > repeats.first_success_end_offset_ns
                        and measured_requests.end_offset_ns
                        <= repeats.first_success_end_offset_ns
                        + repeats.scheduled_end_offset_ns
                        - repeats.scheduled_start_offset_ns,
                        false
                    )
            else measured_requests.end_offset_ns <= repeats.steady_end_offset_ns
        end as is_steady
    from measured_requests
    inner join repeats
        on
            measured_requests.run_id is not distinct from repeats.run_id
            and measured_requests.experiment_name is not distinct from repeats.experiment_name
            and measured_requests.payload_file is not distinct from repeats.payload_file
            and measured_requests.concurrency is not distinct from repeats.concurrency
            and measured_requests.target_rate_rps is not distinct from repeats.target_rate_rps
            and measured_requests.repeat_index is not distinct from repeats.repeat_index
),

success_thirds as (
    -- Thirds of each repeat's successful requests in send order, for the saturation test: the one window left,
    -- over the few columns it needs.
    select
        run_id,
        experiment_name,
        payload_file,
        concurrency,
        target_rate_rps,
        repeat_index,
        coalesce(ttft_s, e2e_latency_s) as ttft_or_latency_s,
        ntile(3) over (
            partition by run_id, experiment_name, payload_file, concurrency, target_rate_rps, repeat_index
            order by sequence_in_level
        ) as success_third
    from measured_requests
    where is_success
),

third_medians as (
    select
        run_id,
        experiment_name,
        payload_file,
        concurrency,
        target_rate_rps,{{ repeat_column }}
        {{ percentile_cont('ttft_or_latency_s', 0.50) }} filter (where success_third = 1) as first_third_ttft_p50,
        {{ percentile_cont('ttft_or_latency_s', 0.50) }} filter (where success_third = 3) as last_third_ttft_p50
    from success_thirds
    group by
        run_id,
        experiment_name,
        payload_file,
        concurrency,
        target_rate_rps{{ repeat_key }}
),

aggregated as (
    select
        run_id,
        experiment_name,
        model_id,
        instance_type,
        instance_count,
        payload_file,
        concurrency,
        target_rate_rps,{{ repeat_column }}
        count(*) as request_count,
        count(*) filter (where is_success) as success_count,
        count(*) filter (where not is_success) as error_count,
        count(*) filter (where is_good) as good_count,
        count(*) filter (where is_steady and is_good) as steady_good_count,
        coalesce(sum(completion_tokens) filter (where is_good), 0) as good_completion_tokens,
        coalesce(sum(completion_tokens) filter (where is_steady and is_good), 0) as steady_good_completion_tokens,
        min(start_offset_ns) as level_start_offset_ns,
        max(end_offset_ns) as level_end_offset_ns,
        -- An imported level whose tool recorded no per-request send and end times carries the tool's own duration.
        max(source_level_duration_ns) as source_level_duration_ns,
        -- Imported requests whose tool recorded no end (a failed vLLM request): their slot time is unknown.
        count(*) filter (where end_offset_ns is null) as unended_request_count,
        min(started_at) as level_started_at,
        avg(prompt_tokens) filter (where is_success) as prompt_token_count_mean,
        avg(completion_tokens) filter (where is_success) as completion_token_count_mean,
        coalesce(sum(prompt_tokens) filter (where is_success), 0) as success_prompt_tokens,
        coalesce(sum(completion_tokens) filter (where is_success), 0) as success_completion_tokens,
        -- Token provenance over the successful requests whose server reported the count.
        count(*) filter (where is_success and is_prompt_token_count_disagreeing) as prompt_token_disagreement_count,
        count(*) filter (
            where is_success and is_completion_token_count_disagreeing
        ) as completion_token_disagreement_count,
        avg(prompt_token_relative_difference) filter (where is_success) as prompt_token_relative_difference_mean,
        avg(completion_token_relative_difference) filter (
            where is_success
        ) as completion_token_relative_difference_mean,
        avg(e2e_latency_s) filter (where is_success) as latency_mean,
        {{ percentiles_cont('e2e_latency_s', [0.50, 0.95, 0.99]) }} filter (where is_success) as latency_percentiles,
        {{ percentiles_cont('ttft_s', [0.50, 0.95, 0.99]) }} filter (where is_success) as ttft_percentiles,
        {{ percentiles_cont('tpot_s', [0.50, 0.95, 0.99]) }} filter (where is_success) as tpot_percentiles,
        avg(tpot_s) filter (where is_success) as tpot_mean,
        {{ percentiles_cont('ttft_first_event_s', [0.50, 0.95, 0.99]) }} filter (
            where is_success
        ) as ttft_first_event_percentiles,
        avg(content_chunk_count) filter (where is_success and is_streaming) as content_chunk_count_mean,
        max(steady_end_offset_ns) as steady_end_offset_ns,
        count(*) filter (where is_steady) as steady_request_count,
        count(*) filter (where is_steady and is_success) as steady_success_count,
        sum(e2e_latency_s) filter (where is_steady) as steady_latency_sum_s,
        coalesce(sum(prompt_tokens) filter (where is_steady and is_success), 0) as steady_prompt_tokens,
        coalesce(sum(completion_tokens) filter (where is_steady and is_success), 0) as steady_completion_tokens,
        {{ percentiles_cont('e2e_latency_s', [0.50, 0.95]) }} filter (
            where is_steady and is_success
        ) as steady_latency_percentiles,
        -- Open loop: the schedule, how late the client kept it, and whether the queue grew through the level.
        {{ any_non_null('load_model') }} as load_model,
        min(scheduled_start_offset_ns) as scheduled_start_offset_ns,
        max(scheduled_end_offset_ns) as scheduled_end_offset_ns,
        min(first_success_end_offset_ns) as first_success_end_offset_ns,
        {{ percentiles_cont('send_lag_s', [0.50, 0.99]) }} as send_lag_percentiles,
        max(send_lag_s) as send_lag_max
    from windowed
    group by
        run_id,
        experiment_name,
        model_id,
        instance_type,
        instance_count,
        payload_file,
        concurrency,
        target_rate_rps{{ repeat_key }}
),

percentiles_read as (
    -- Each column's percentiles come from one aggregate (its values held once for all fractions), read out here.
    select
        {{ star_except([
            'latency_percentiles',
            'ttft_percentiles',
            'tpot_percentiles',
            'ttft_first_event_percentiles',
            'steady_latency_percentiles',
            'send_lag_percentiles'
        ]) }},
        {{ list_element('latency_percentiles', 1) }} as latency_p50,
        {{ list_element('latency_percentiles', 2) }} as latency_p95,
        {{ list_element('latency_percentiles', 3) }} as latency_p99,
        {{ list_element('ttft_percentiles', 1) }} as ttft_p50,
        {{ list_element('ttft_percentiles', 2) }} as ttft_p95,
        {{ list_element('ttft_percentiles', 3) }} as ttft_p99,
        {{ list_element('tpot_percentiles', 1) }} as tpot_p50,
        {{ list_element('tpot_percentiles', 2) }} as tpot_p95,
        {{ list_element('tpot_percentiles', 3) }} as tpot_p99,
        {{ list_element('ttft_first_event_percentiles', 1) }} as ttft_first_event_p50,
        {{ list_element('ttft_first_event_percentiles', 2) }} as ttft_first_event_p95,
        {{ list_element('ttft_first_event_percentiles', 3) }} as ttft_first_event_p99,
        {{ list_element('steady_latency_percentiles', 1) }} as steady_latency_p50,
        {{ list_element('steady_latency_percentiles', 2) }} as steady_latency_p95,
        {{ list_element('send_lag_percentiles', 1) }} as send_lag_p50,
        {{ list_element('send_lag_percentiles', 2) }} as send_lag_p99
    from aggregated
),

with_repeats as (
    select
        percentiles_read.*,
        repeat_totals.repeat_count,
        repeat_totals.repeats_span_ns,
        repeat_totals.repeats_scheduled_ns,
        third_medians.first_third_ttft_p50,
        third_medians.last_third_ttft_p50
    from percentiles_read
    left join repeat_totals
        on
            percentiles_read.run_id is not distinct from repeat_totals.run_id
            and percentiles_read.experiment_name is not distinct from repeat_totals.experiment_name
            and percentiles_read.payload_file is not distinct from repeat_totals.payload_file
            and percentiles_read.concurrency is not distinct from repeat_totals.concurrency
            and percentiles_read.target_rate_rps is not distinct from repeat_totals.target_rate_rps{{ repeat_totals_join }}
    left join third_medians
        on
            percentiles_read.run_id is not distinct from third_medians.run_id
            and percentiles_read.experiment_name is not distinct from third_medians.experiment_name
            and percentiles_read.payload_file is not distinct from third_medians.payload_file
            and percentiles_read.concurrency is not distinct from third_medians.concurrency
            and percentiles_read.target_rate_rps is not distinct from third_medians.target_rate_rps{{ third_medians_join }}
),

spanned as (
    -- Over the whole span (first measured start to last end, the ramp-down included) and, by Little's law
    -- over the steady-state requests, with `concurrency` in flight: rate = concurrency x work / slot time.
    select
        *,
        error_count / request_count as error_rate,
        coalesce(repeats_span_ns / 1e9, source_level_duration_ns / 1e9) as duration_s,
        success_prompt_tokens / nullif(duration_s, 0) as span_prompt_token_throughput,
        success_completion_tokens / nullif(duration_s, 0) as span_completion_token_throughput,
        success_count * 60 / nullif(duration_s, 0) as span_transactions_per_minute,
        -- Little's law needs every request's slot time: a level with a request of unknown end has no steady state.
        case
            when
                coalesce(load_model, 'closed') = 'closed'
                and steady_request_count >= concurrency
                and unended_request_count = 0
                then steady_latency_sum_s
        end as steady_slot_time_s,
        concurrency * steady_prompt_tokens / nullif(steady_slot_time_s, 0) as steady_prompt_token_throughput,
        concurrency * steady_completion_tokens / nullif(steady_slot_time_s, 0) as steady_completion_token_throughput,
        concurrency * steady_success_count * 60 / nullif(steady_slot_time_s, 0) as steady_transactions_per_minute,
        concurrency * steady_good_count / nullif(steady_slot_time_s, 0) as steady_good_request_rate,
        concurrency * steady_good_completion_tokens / nullif(steady_slot_time_s, 0)
            as steady_good_completion_token_throughput,
        good_count / nullif(duration_s, 0) as span_good_request_rate,
        good_completion_tokens / nullif(duration_s, 0) as span_good_completion_token_throughput,
        send_lag_p99 <= {{ var('schedule_lag_tolerance_s') }} as is_schedule_kept,
        case
            when load_model = 'rate' and success_count >= {{ var('saturation_min_requests') }}
                then last_third_ttft_p50 >= {{ var('saturation_latency_growth') }} * first_third_ttft_p50
        end as is_saturated,
        -- Open loop: the offered rate over the schedule (n sends, n - 1 gaps), and the rate the server sustained
        -- at it over the shifted schedule. A saturated level never reached a steady state: its throughput is the
        -- span's, the most the server delivered.
        repeats_scheduled_ns / 1e9 as scheduled_duration_s,
        case when load_model = 'rate' then (request_count - repeat_count) / nullif(scheduled_duration_s, 0) end
            as offered_request_rate,
        load_model = 'rate' and not coalesce(is_saturated, false) and steady_success_count > 0
        and scheduled_duration_s > 0 as has_scheduled_window,
        case when has_scheduled_window then steady_prompt_tokens / scheduled_duration_s end
            as scheduled_prompt_token_throughput,
        case when has_scheduled_window then steady_completion_tokens / scheduled_duration_s end
            as scheduled_completion_token_throughput,
        case when has_scheduled_window then steady_success_count * 60 / scheduled_duration_s end
            as scheduled_transactions_per_minute,
        case when has_scheduled_window then steady_good_count / scheduled_duration_s end
            as scheduled_good_request_rate,
        case when has_scheduled_window then steady_good_completion_tokens / scheduled_duration_s end
            as scheduled_good_completion_token_throughput
    from with_repeats
),

with_itl as (
    select
        spanned.*,
        inter_token_latencies.itl_gap_count,
        inter_token_latencies.itl_mean,
        inter_token_latencies.itl_p50,
        inter_token_latencies.itl_p95,
        inter_token_latencies.itl_p99
    from spanned
    left join inter_token_latencies
        on
            spanned.run_id is not distinct from inter_token_latencies.run_id
            and spanned.experiment_name is not distinct from inter_token_latencies.experiment_name
            and spanned.payload_file is not distinct from inter_token_latencies.payload_file
            and spanned.concurrency is not distinct from inter_token_latencies.concurrency
            and spanned.target_rate_rps is not distinct from inter_token_latencies.target_rate_rps{{ repeat_join }}
),

rated as (
    -- The headline throughputs: steady state where it held at least one request per slot (fewer is too little
    -- to estimate from), else the whole span.
    select
        *,
        case
            when steady_transactions_per_minute is not null then 'steady_state'
            when scheduled_transactions_per_minute is not null then 'scheduled_interval'
            else 'level_span'
        end as throughput_window,
        coalesce(
            steady_prompt_token_throughput, scheduled_prompt_token_throughput, span_prompt_token_throughput
        ) as prompt_token_throughput,
        coalesce(
            steady_completion_token_throughput,
            scheduled_completion_token_throughput,
            span_completion_token_throughput
        ) as completion_token_throughput,
        coalesce(
            steady_transactions_per_minute, scheduled_transactions_per_minute, span_transactions_per_minute
        ) as transactions_per_minute,
        -- Goodput over the same window as the throughputs: good requests (and their output tokens) per second.
        coalesce(
            steady_good_request_rate, scheduled_good_request_rate, span_good_request_rate
        ) as good_request_rate,
        coalesce(
            steady_good_completion_token_throughput,
            scheduled_good_completion_token_throughput,
            span_good_completion_token_throughput
        ) as good_completion_token_throughput
    from with_itl
)

select * from rated
{% endmacro %}
