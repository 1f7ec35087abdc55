"""Clocks of a run: perf-counter offsets for durations and spans, wall-clock time for joins, and what ties the
clocks of a run's client processes and hosts together (collector/shards.py, collector/host_shards.py)."""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
import time
from datetime import UTC, datetime
from typing import Any


def iso_utc(ns: int) -> str:
    """Wall-clock nanoseconds as an ISO-8601 UTC timestamp with microseconds."""
    return datetime.fromtimestamp(ns / 1e9, UTC).isoformat()


def now_iso() -> str:
    return iso_utc(time.time_ns())


def perf_counter_is_system_wide() -> bool:
    """Whether time.perf_counter reads one clock for every process of this host (Linux: CLOCK_MONOTONIC), so a
    child process can use its parent's run-start reading as is."""
    return sys.platform.startswith("linux") and "CLOCK_MONOTONIC" in time.get_clock_info("perf_counter").implementation


def wall_and_perf_ns() -> tuple[int, int]:
    """A wall-clock reading and the perf-counter reading taken at the same instant (the middle of two perf
    readings around the wall-clock one: off by at most half their gap, well under a microsecond)."""
    before = time.perf_counter_ns()
    wall = time.time_ns()
    after = time.perf_counter_ns()
    return wall, (before + after) // 2


class RunClock:
    """Monotonic offsets since the run started, shared by requests and telemetry; request numbering.

    A client process of a sharded run (collector/shards.py) gets its parent's `base_perf_ns` and numbers its
    requests `seq_start`, `seq_start + seq_step`, ... so that request ids stay unique across processes; a host
    shard's ids carry its `id_prefix` ('2.' for shard 2), so hosts never need to agree on numbers.
    """

    def __init__(
        self, base_perf_ns: int | None = None, seq_start: int = 0, seq_step: int = 1, id_prefix: str = ""
    ) -> None:
        self.base_perf_ns = time.perf_counter_ns() if base_perf_ns is None else base_perf_ns
        self._seq = seq_start
        self._step = seq_step
        self.id_prefix = id_prefix

    @classmethod
    def at_wall(cls, epoch_wall_ns: int, id_prefix: str = "") -> RunClock:
        """A clock whose offsets count from the wall-clock instant `epoch_wall_ns` (a run shared across hosts:
        each host's offsets then agree up to the hosts' wall-clock skew)."""
        wall, perf = wall_and_perf_ns()
        return cls(perf - (wall - epoch_wall_ns), id_prefix=id_prefix)

    def offset_ns(self, perf_ns: int) -> int:
        return perf_ns - self.base_perf_ns

    def next_seq(self) -> int:
        self._seq += self._step
        return self._seq - self._step

    def request_id(self, run_id: str) -> str:
        """The next request's raw request_id: '<run_id>:<sequence>' ('<run_id>:<host shard>.<sequence>')."""
        return f"{run_id}:{self.id_prefix}{self.next_seq()}"

    @property
    def next_free(self) -> int:
        """The next sequence number this clock would give."""
        return self._seq

    def skip_to(self, seq: int) -> None:
        """Number on from `seq` (what this host's client processes used is taken)."""
        self._seq = max(self._seq, seq)


# -- the host's wall-clock synchronisation (NTP), as the kernel reports it ------------------------------------


class _Timeval(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_usec", ctypes.c_long)]


class _Timex(ctypes.Structure):
    # struct timex of <sys/timex.h> (Linux): the fields read here, then the kernel's reserved tail.
    _fields_ = [
        ("modes", ctypes.c_uint),
        ("offset", ctypes.c_long),
        ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long),
        ("esterror", ctypes.c_long),
        ("status", ctypes.c_int),
        ("constant", ctypes.c_long),
        ("precision", ctypes.c_long),
        ("tolerance", ctypes.c_long),
        ("time", _Timeval),
        ("tick", ctypes.c_long),
        ("reserved", ctypes.c_long * 20),
    ]


STA_UNSYNC = 0x0040
TIME_ERROR = 5


def wall_clock_sync() -> dict[str, Any]:
    """The kernel's view of this host's wall-clock discipline (adjtimex, read only): whether NTP (chrony, ntpd,
    systemd-timesyncd) keeps it synchronised, and its maximum error bound, microseconds. Two hosts' wall clocks
    differ by at most the sum of their bounds; an unsynchronised clock has no bound."""
    if not sys.platform.startswith("linux"):
        return {"synchronised": None, "max_error_us": None, "source": "unknown (not Linux)"}
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        timex = _Timex()
        state = libc.adjtimex(ctypes.byref(timex))
    except (OSError, AttributeError):
        return {"synchronised": None, "max_error_us": None, "source": "unknown (adjtimex unavailable)"}
    synced = state not in (-1, TIME_ERROR) and not timex.status & STA_UNSYNC
    return {
        "synchronised": bool(synced),
        "max_error_us": int(timex.maxerror) if synced else None,
        "estimated_error_us": int(timex.esterror) if synced else None,
        "source": "adjtimex",
    }
