"""One benchmark run: load the config, sweep every experiment, land raw rows, then build the marts."""

from __future__ import annotations

import asyncio
import importlib.metadata
import os
import platform
import secrets
import signal
import socket
import sys
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import aiohttp

from collector import __version__
from collector.clock import RunClock, now_iso
from collector.config import Config, Experiment, OpenAIEndpoint, applied_prices, load_config, redacted_dump
from collector.endpoints import api_headers, endpoint_for, health_url, wait_healthy
from collector.errors import UserError
from collector.landing import RunLanding, compact_run
from collector.loadgen import Level, LevelProgress, Target, run_level
from collector.payloads import Prompt, load_bucket
from collector.progress import ProgressPrinter
from collector.schema import RunManifest
from collector.telemetry import TelemetrySampler
from collector.tokens import DEFAULT_COUNTER
from collector.warehouse import refresh, upsert_run_settings, warehouse_path

VERSIONED_PACKAGES = ("aiohttp", "duckdb", "dbt-core", "dbt-duckdb", "pydantic", "nvidia-ml-py", "psutil")

EXIT_OK, EXIT_FAILED, EXIT_INTERRUPTED = 0, 1, 130


def new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


def package_versions() -> dict[str, str]:
    out = {"python": platform.python_version(), "tokenbench": __version__}
    for name in VERSIONED_PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


@dataclass
class RunOutcome:
    run_id: str
    status: str
    error: str | None
    warehouse: Path
    pricing_dir: Path
    requests: int
    errors: int

    @property
    def exit_code(self) -> int:
        return {"completed": EXIT_OK, "interrupted": EXIT_INTERRUPTED}.get(self.status, EXIT_FAILED)


class Sweep:
    """The asynchronous part of a run: one HTTP client, experiments in order, levels in order."""

    def __init__(self, config: Config, run_id: str, clock: RunClock, landing: RunLanding, log_dir: Path) -> None:
        self.config = config
        self.run_id = run_id
        self.clock = clock
        self.landing = landing
        self.log_dir = log_dir
        self.stop = asyncio.Event()
        self.progress = ProgressPrinter()
        self.prompts: dict[str, list[Prompt]] = {b.name: load_bucket(b, DEFAULT_COUNTER) for b in config.payloads}
        self.requests = 0
        self.errors = 0

    def land(self, row: object) -> None:
        self.landing.append("requests", row)

    async def run(self) -> None:
        most = max(max(e.concurrency_levels) for e in self.config.experiments)
        connector = aiohttp.TCPConnector(limit=most + 8, limit_per_host=0, ttl_dns_cache=300)
        async with aiohttp.ClientSession(connector=connector, auto_decompress=False) as session:
            for i, exp in enumerate(self.config.experiments):
                if self.stop.is_set():
                    return
                await self.run_experiment(session, i, exp)

    async def run_experiment(self, session: aiohttp.ClientSession, index: int, exp: Experiment) -> None:
        where = f"experiments[{index}]"
        headers = api_headers(exp, where)
        async with endpoint_for(exp, self.log_dir) as base_url:
            await wait_healthy(session, health_url(exp, base_url), exp.endpoint.startup_timeout_s, headers)
            ep = exp.endpoint
            served = ep.served_model_name if isinstance(ep, OpenAIEndpoint) else exp.model_id
            target = Target(
                run_id=self.run_id,
                experiment_name=exp.name,
                model_id=exp.model_id,
                endpoint_type=exp.endpoint.type,
                base_url=base_url,
                api_style=exp.endpoint.api_style,
                served_model_name=served,
                stream=exp.endpoint.stream,
                headers={"Content-Type": "application/json", **headers},
                instance_type=exp.instance_type,
                instance_count=exp.instance_count,
                params=exp.inference_parameters,
                timeout=aiohttp.ClientTimeout(total=exp.request_timeout_s),
                counter=DEFAULT_COUNTER,
            )
            # Concurrency outer, bucket inner (as FMBench): each level is one contiguous window for telemetry.
            for concurrency in exp.concurrency_levels:
                for bucket in exp.payloads:
                    if self.stop.is_set():
                        return
                    level = Level(
                        payload_file=bucket,
                        prompts=self.prompts[bucket],
                        concurrency=concurrency,
                        requests=exp.requests_per_level,
                        warmup=exp.warmup_requests_per_level,
                    )
                    self.progress.start(exp.name, bucket, concurrency, level.warmup + level.requests)
                    done = LevelProgress()
                    try:
                        done = await run_level(
                            session, target, level, self.clock, self.land, self.stop, self.progress.update
                        )
                    finally:
                        self.progress.finish()
                    self.requests += done.done
                    self.errors += done.errors


class Run:
    """Owns the landing files and the manifest of one run from start to final status."""

    def __init__(self, config: Config, config_path: Path, results_dir: Path) -> None:
        self.config = config
        self.config_path = config_path
        self.results_dir = results_dir
        self.run_id = new_run_id()
        self.clock = RunClock()
        self.landing = RunLanding(results_dir, self.run_id)
        self.manifest = RunManifest(
            run_id=self.run_id,
            run_name=config.run_name,
            status="running",
            started_at=now_iso(),
            ended_at=None,
            heartbeat_at=now_iso(),
            error_message=None,
            config_path=str(config_path),
            config_json=redacted_dump(config),
            experiments_json=applied_prices(config),
            latency_budget_s=config.report.latency_budget_s,
            cost_per_10k_txn_budget_usd=config.report.cost_per_10k_txn_budget_usd,
            error_rate_budget=config.report.error_rate_budget,
            dataset_of_interest=config.report.dataset_of_interest,
            collector_version=__version__,
            package_versions_json=package_versions(),
            hostname=socket.gethostname(),
            platform=f"{platform.system()} {platform.release()} {platform.machine()}",
            python_version=platform.python_version(),
            cpu_count=os.cpu_count() or 1,
        )

    def heartbeat(self) -> None:
        self.manifest = replace(self.manifest, heartbeat_at=now_iso())
        self.landing.write_manifest(self.manifest)

    def finish(self, status: str, error: str | None) -> None:
        self.manifest = replace(
            self.manifest, status=status, error_message=error, ended_at=now_iso(), heartbeat_at=now_iso()
        )
        self.landing.write_manifest(self.manifest)


def _install_signal_handlers(loop: asyncio.AbstractEventLoop, sweep: Sweep, main: asyncio.Task[None]) -> None:
    presses = 0

    def on_signal() -> None:
        nonlocal presses
        presses += 1
        if presses == 1:
            sweep.stop.set()
            print("\ninterrupted: finishing the requests in flight (Ctrl-C again to abandon them)", file=sys.stderr)
        else:
            main.cancel()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)


async def _sweep_main(sweep: Sweep) -> None:
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    _install_signal_handlers(loop, sweep, task)
    await sweep.run()


def collect(config_path: Path, results_dir: Path) -> RunOutcome:
    """Run the sweep of one config and land everything; the warehouse is only opened before and after."""
    config = load_config(config_path)
    results_dir.mkdir(parents=True, exist_ok=True)
    run = Run(config, config_path, results_dir)
    warehouse = warehouse_path(results_dir)
    run.landing.write_manifest(run.manifest)
    refresh(results_dir, warehouse)
    upsert_run_settings(
        warehouse,
        config.run_name,
        config.report.latency_budget_s,
        config.report.cost_per_10k_txn_budget_usd,
        config.report.error_rate_budget,
        config.report.dataset_of_interest,
        str(config_path),
    )
    run.landing.start(heartbeat=run.heartbeat)
    sampler = TelemetrySampler(
        run.run_id, run.clock.base_perf_ns, lambda row: run.landing.append("telemetry_samples", row)
    )
    sampler.start()
    print(f"run {run.run_id}: landing raw rows in {run.landing.dir}", file=sys.stderr)
    sweep = Sweep(config, run.run_id, run.clock, run.landing, results_dir / "logs" / run.run_id)
    status, error = "completed", None
    try:
        asyncio.run(_sweep_main(sweep))
        if sweep.stop.is_set():
            status, error = "interrupted", "stopped by signal; requests in flight were completed"
    except asyncio.CancelledError:
        status, error = "interrupted", "stopped by a second signal; requests in flight were abandoned"
    except UserError as exc:
        status, error = "failed", str(exc)
    except KeyboardInterrupt:
        status, error = "interrupted", "keyboard interrupt"
    except BaseException as exc:
        status, error = "failed", f"{type(exc).__name__}: {exc}"
        raise
    finally:
        sampler.stop()
        run.landing.close()
        run.finish(status, error)
        compact_run(run.landing.dir)
        refresh(results_dir, warehouse)
    return RunOutcome(run.run_id, status, error, warehouse, config.pricing_dir, sweep.requests, sweep.errors)
