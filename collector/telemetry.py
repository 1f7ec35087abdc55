"""Host and GPU telemetry sampled once a second in a background thread during a run.

GPU figures come from NVML (nvidia-ml-py) when a driver is present; without one, only host rows
are recorded and nothing fails.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import psutil

from collector.clock import iso_utc
from collector.schema import TelemetrySample

log = logging.getLogger(__name__)

SAMPLE_INTERVAL_S = 1.0


class Gpus:
    """NVML handles, or none when NVML (the driver) is missing."""

    def __init__(self) -> None:
        self.nvml: Any = None
        self.handles: list[Any] = []
        self.names: list[str] = []
        try:
            import pynvml

            pynvml.nvmlInit()
            count = pynvml.nvmlDeviceGetCount()
            self.handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
            self.names = [self._name(pynvml, h) for h in self.handles]
            self.nvml = pynvml
        except Exception as exc:  # no driver, no library, no device: telemetry is host-only
            log.debug("NVML unavailable: %s", exc)

    @staticmethod
    def _name(pynvml: Any, handle: Any) -> str:
        name = pynvml.nvmlDeviceGetName(handle)
        return name.decode() if isinstance(name, bytes) else str(name)

    def _read(self, fn: Callable[[Any], Any], handle: Any) -> Any:
        try:
            return fn(handle)
        except Exception:  # a metric this GPU or driver does not support
            return None

    def sample(self, base: dict[str, Any]) -> list[TelemetrySample]:
        nv = self.nvml
        rows = []
        for i, handle in enumerate(self.handles):
            util = self._read(nv.nvmlDeviceGetUtilizationRates, handle)
            mem = self._read(nv.nvmlDeviceGetMemoryInfo, handle)
            power_mw = self._read(nv.nvmlDeviceGetPowerUsage, handle)
            energy_mj = self._read(nv.nvmlDeviceGetTotalEnergyConsumption, handle)
            rows.append(
                TelemetrySample(
                    **base,
                    device=f"gpu{i}",
                    gpu_index=i,
                    gpu_name=self.names[i],
                    cpu_percent=None,
                    memory_used_bytes=None,
                    memory_total_bytes=None,
                    gpu_utilization_percent=None if util is None else float(util.gpu),
                    gpu_memory_used_bytes=None if mem is None else int(mem.used),
                    gpu_memory_total_bytes=None if mem is None else int(mem.total),
                    gpu_power_w=None if power_mw is None else power_mw / 1000.0,
                    gpu_energy_j=None if energy_mj is None else energy_mj / 1000.0,
                    source="gpu",
                )
            )
        return rows

    def close(self) -> None:
        if self.nvml is not None:
            try:
                self.nvml.nvmlShutdown()
            except Exception as exc:
                log.debug("nvmlShutdown failed: %s", exc)


class TelemetrySampler:
    """Samples every SAMPLE_INTERVAL_S on an absolute schedule and hands rows to `land`."""

    def __init__(self, run_id: str, base_perf_ns: int, land: Callable[[TelemetrySample], None]) -> None:
        self.run_id = run_id
        self.base_perf_ns = base_perf_ns
        self.land = land
        self.hostname = socket.gethostname()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.gpus: Gpus | None = None
        self.sample_errors = 0

    def sample_once(self) -> list[TelemetrySample]:
        assert self.gpus is not None
        base: dict[str, Any] = {
            "run_id": self.run_id,
            "sampled_at": iso_utc(time.time_ns()),
            "offset_ns": time.perf_counter_ns() - self.base_perf_ns,
            "hostname": self.hostname,
        }
        vm = psutil.virtual_memory()
        host = TelemetrySample(
            **base,
            device="host",
            gpu_index=None,
            gpu_name=None,
            cpu_percent=psutil.cpu_percent(interval=None),
            memory_used_bytes=int(vm.total - vm.available),
            memory_total_bytes=int(vm.total),
            gpu_utilization_percent=None,
            gpu_memory_used_bytes=None,
            gpu_memory_total_bytes=None,
            gpu_power_w=None,
            gpu_energy_j=None,
            source="host",
        )
        return [host, *self.gpus.sample(base)]

    def _loop(self) -> None:
        next_at = time.monotonic()
        while True:
            try:
                for row in self.sample_once():
                    self.land(row)
            except Exception as exc:  # e.g. out of file descriptors: skip this sample, never end the thread
                if not self.sample_errors:
                    log.warning("telemetry sample failed (%s); sampling goes on", exc)
                self.sample_errors += 1
            next_at += SAMPLE_INTERVAL_S
            if self._stop.wait(max(0.0, next_at - time.monotonic())):
                return

    def start(self) -> None:
        self.gpus = Gpus()
        psutil.cpu_percent(interval=None)  # primes the counter: the first real sample covers one interval
        self._thread = threading.Thread(target=self._loop, name="tokenbench-telemetry", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self.gpus is not None:
            self.gpus.close()
