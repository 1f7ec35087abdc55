"""The telemetry thread outlives a failing sample (e.g. out of file descriptors): sampling goes on."""

from __future__ import annotations

import errno
import time

from collector.schema import TelemetrySample
from collector.telemetry import TelemetrySampler


def test_a_failing_sample_is_skipped_and_the_sampler_keeps_sampling() -> None:
    landed: list[TelemetrySample] = []
    failures = 0

    def land(row: TelemetrySample) -> None:
        nonlocal failures
        if failures < 2:
            failures += 1
            raise OSError(errno.EMFILE, "Too many open files")
        landed.append(row)

    sampler = TelemetrySampler("run", time.perf_counter_ns(), land)
    sampler.start()
    try:
        deadline = time.monotonic() + 10
        while len({r.offset_ns for r in landed}) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        sampler.stop()
    assert failures == 2 and sampler.sample_errors == 2
    assert len({r.offset_ns for r in landed}) >= 2  # later instants landed: the thread did not die
