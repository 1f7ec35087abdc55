"""Clocks of a run: perf-counter offsets for durations and spans, wall-clock time for joins."""

from __future__ import annotations

import time
from datetime import UTC, datetime


def iso_utc(ns: int) -> str:
    """Wall-clock nanoseconds as an ISO-8601 UTC timestamp with microseconds."""
    return datetime.fromtimestamp(ns / 1e9, UTC).isoformat()


def now_iso() -> str:
    return iso_utc(time.time_ns())


class RunClock:
    """Monotonic offsets since the run started, shared by requests and telemetry; request numbering."""

    def __init__(self) -> None:
        self.base_perf_ns = time.perf_counter_ns()
        self._seq = 0

    def offset_ns(self, perf_ns: int) -> int:
        return perf_ns - self.base_perf_ns

    def next_seq(self) -> int:
        self._seq += 1
        return self._seq - 1
