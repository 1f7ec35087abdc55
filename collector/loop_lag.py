"""The collector's own event-loop lag, sampled while a level runs and landed as telemetry rows (source 'client').

A loop busy reading replies wakes its timers late; the same lateness delays sends and stretches measured latency
with client time. Sleeping a fixed interval and timing the wake-up is what AIPerf and GuideLLM watch too; the marts
put each level's lag percentiles beside its send lag.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from collector.clock import iso_utc
from collector.schema import TelemetrySample

LOOP_LAG_INTERVAL_S = 0.1


async def sample_loop_lag(
    run_id: str,
    experiment_name: str,
    hostname: str,
    base_perf_ns: int,
    land: Callable[[TelemetrySample], None],
    interval_s: float = LOOP_LAG_INTERVAL_S,
) -> None:
    """Until cancelled: sleep `interval_s`, then land how much later than asked the loop woke up."""
    while True:
        asked_ns = time.perf_counter_ns() + round(interval_s * 1e9)
        await asyncio.sleep(interval_s)
        woke_ns = time.perf_counter_ns()
        land(
            TelemetrySample(
                run_id=run_id,
                sampled_at=iso_utc(time.time_ns()),
                offset_ns=woke_ns - base_perf_ns,
                hostname=hostname,
                device="event_loop",
                source="client",
                experiment_name=experiment_name,
                event_loop_lag_s=max(0, woke_ns - asked_ns) / 1e9,
            )
        )
