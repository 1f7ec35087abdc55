"""One benchmark run: load the config, sweep every experiment, land raw rows, then build the marts."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import os
import platform
import secrets
import signal
import socket
import sys
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import duckdb

from collector import __version__
from collector.aws.cloudwatch import EndpointMetrics
from collector.aws.endpoint_config import BedrockEndpoint, SageMakerEndpoint
from collector.clock import RunClock, now_iso, wall_clock_sync
from collector.config import (
    MANAGED_ENDPOINT_TYPES,
    Config,
    Experiment,
    OpenAIEndpoint,
    load_config,
    redacted_dump,
)
from collector.endpoints import api_headers, endpoint_for, health_url, preflight, wait_healthy
from collector.engine_process import launch_records
from collector.errors import EndpointError, UserError
from collector.host_shards import (
    HostShard,
    ShardGroup,
    check_run_id,
    check_shardable,
    config_digest,
    fold,
    with_clock_offsets,
)
from collector.landing import (
    Landing,
    RawStore,
    process_identity,
    raw_store,
    shard_manifest_file,
)
from collector.load_models import (
    ClosedLoad,
    RateLoad,
    SweepLoad,
    is_saturated,
    ladder,
    schedule_seed,
    send_offsets_s,
)
from collector.loadgen import Level, LevelProgress, Target, client_session
from collector.loop_lag import sample_loop_lag
from collector.payloads import Prompt, experiment_prompts
from collector.prepare.build import ensure_prepared, file_sha256
from collector.pricing import applied_prices
from collector.progress import PlannedLevel, ProgressPrinter
from collector.schema import RunManifest
from collector.server_metrics import ServerScraper
from collector.shard_boards import shard_board
from collector.shards import SendContext, Sender, level_sender
from collector.shares import shares_size
from collector.telemetry import TelemetrySampler
from collector.tokens import TokenCounter, experiment_counters
from collector.warehouse import refresh, upsert_run_settings, warehouse_path, writing

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
    landing_failed: bool = False  # rows could not be written: nothing to build from this run

    @property
    def exit_code(self) -> int:
        return {"completed": EXIT_OK, "interrupted": EXIT_INTERRUPTED}.get(self.status, EXIT_FAILED)


class Sweep:
    """The asynchronous part of a run: one HTTP client, experiments in order, levels in order."""

    def __init__(
        self,
        config: Config,
        run_id: str,
        clock: RunClock,
        landing: Landing,
        store: RawStore,
        log_dir: Path,
        prompts: dict[str, dict[str, list[Prompt]]],
        counters: dict[str, TokenCounter],
        group: ShardGroup | None = None,
    ) -> None:
        self.config = config
        self.group = group  # this collector's host shard, when several hosts share the run (collector/host_shards.py)
        self.shard_records: list[dict[str, Any]] = []  # client processes started, for the manifest's shards_json
        self.run_id = run_id
        self.clock = clock
        self.landing = landing
        self.store = store  # where client processes land their rows too
        self.log_dir = log_dir
        self.stop = asyncio.Event()
        self.plan = sweep_plan(config)
        if group is not None:  # this host sends its shards' part of each level: its progress counts that
            self.plan = [self._host_part(lv) for lv in self.plan]
        self.progress = ProgressPrinter(self.plan)
        self.prompts = prompts  # by experiment, then bucket: counted with that experiment's tokenizer
        self.counters = counters
        self.hostname = socket.gethostname()
        self.requests = 0
        self.errors = 0
        self.cloudwatch = EndpointMetrics(  # SageMaker endpoints' own view, read once the sweep is over
            run_id, clock.base_perf_ns, lambda row: landing.append("telemetry_samples", row)
        )

    def _host_part(self, level: PlannedLevel) -> PlannedLevel:
        assert self.group is not None
        exp = next(e for e in self.config.experiments if e.name == level.experiment)
        shard, processes = self.group.shard, exp.client_processes
        first = (shard.index - 1) * processes
        size = shares_size(
            level.concurrency,
            exp.warmup_requests_per_level,
            exp.requests_per_level,
            level.rate_per_s is not None,
            range(first, first + processes),
            shard.count * processes,
        )
        return replace(level, requests=size)

    def land(self, row: object) -> None:
        self.landing.append("requests", row)
        if self.landing.failed.is_set() and not self.stop.is_set():
            self.stop.set()  # rows can no longer be written: send no more requests

    async def run(self) -> None:
        most = max(level.concurrency for level in self.plan)
        try:
            async with client_session(most) as session:
                for i, exp in enumerate(self.config.experiments):
                    if self.stop.is_set():
                        break
                    await self.run_experiment(session, i, exp)
        except UserError:  # what CloudWatch saw of a failed sweep is kept too; a Ctrl-C now ends only that wait
            self.stop.clear()
            await self.cloudwatch.read(self.stop)
            raise
        await self.cloudwatch.read(self.stop)  # stopped (Ctrl-C, landing failed): a line per endpoint, no wait

    async def _unless_stopped(self, step: Coroutine[Any, Any, None]) -> bool:
        """Await `step` unless the run is stopped first (then cancel it); True when it completed."""
        task = asyncio.ensure_future(step)
        stopped = asyncio.ensure_future(self.stop.wait())
        await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
        stopped.cancel()
        if task.done():
            task.result()
            return True
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return False

    async def run_experiment(self, session: aiohttp.ClientSession, index: int, exp: Experiment) -> None:
        headers = api_headers(exp, f"experiments[{index}]")
        engine_death: list[str] = []

        def on_death(line: str) -> None:
            # The engine tokenbench started is gone: requests in flight end (as errors), no more are sent,
            # and the run fails with this line rather than landing thousands of connection errors.
            engine_death.append(line)
            self.stop.set()

        succeeded, started_ns = self.requests - self.errors, time.time_ns()
        async with endpoint_for(exp, self.log_dir, self.stop, on_death) as base_url:
            await self._measure(session, exp, base_url, headers, f"experiments[{index}]", on_death)
        if isinstance(exp.endpoint, SageMakerEndpoint):  # deleted by now if deployed; its metrics outlive it
            where, done = f"experiments[{index}]", self.requests - self.errors - succeeded
            self.cloudwatch.add(exp, where, base_url, started_ns, time.time_ns(), done)
        if engine_death:  # whenever it died: during the health wait, a level, or between levels
            raise EndpointError(engine_death[0])

    async def _measure(
        self,
        session: aiohttp.ClientSession,
        exp: Experiment,
        base_url: str,
        headers: dict[str, str],
        where: str = "experiments[0]",
        on_death: Callable[[str], None] | None = None,
    ) -> None:
        """Wait for the endpoint, then sweep the experiment's levels; return early once the run is stopped."""
        if exp.endpoint.type in MANAGED_ENDPOINT_TYPES:
            # Bedrock and SageMaker have no health route: the first refused request (unknown model, no access,
            # no such endpoint) stops the sweep with one line instead (on_death).
            from collector.aws.lifecycle import managed_target

            managed = managed_target(exp, where, self.run_id, base_url, self.counters[exp.name], on_death)
            try:
                await self._levels(session, exp, managed, None)
            finally:
                await asyncio.to_thread(managed.close)
            return
        ep = exp.endpoint
        assert not isinstance(ep, BedrockEndpoint | SageMakerEndpoint)
        healthy = wait_healthy(session, health_url(exp, base_url), ep.startup_timeout_s, headers)
        if not await self._unless_stopped(healthy):
            return  # Ctrl-C or SIGTERM while waiting for the endpoint (or the engine died)
        served = ep.served_model_name if isinstance(ep, OpenAIEndpoint) else exp.model_id
        target = Target(
            run_id=self.run_id,
            experiment_name=exp.name,
            model_id=exp.model_id,
            endpoint_type=exp.endpoint.type,
            base_url=base_url,
            api_style=exp.endpoint.api_style or "chat",  # engine kinds fill it from their stack
            served_model_name=served,
            stream=exp.endpoint.stream,
            headers={"Content-Type": "application/json", **headers},
            instance_type=exp.instance_type,
            instance_count=exp.instance_count,
            params=exp.inference_parameters,
            timeout=aiohttp.ClientTimeout(total=exp.request_timeout_s),
            counter=self.counters[exp.name],
            prime_url=health_url(exp, base_url),
        )
        if self.group is not None and not self.group.shard.is_leader:  # shard 1 alone scrapes the shared server
            await self._levels(session, exp, target, None)
            return
        scraper = await asyncio.to_thread(
            ServerScraper.probe,
            exp.server_metrics,
            base_url,
            f"{where}.server_metrics",
            headers,
            self.run_id,
            exp.name,
            served,
            self.clock.base_perf_ns,
            lambda row: self.landing.append("telemetry_samples", row),
            lambda line: print(line, file=sys.stderr),
        )
        if scraper is None:
            await self._levels(session, exp, target, None)
            return
        scraper.start()
        try:
            await self._levels(session, exp, target, scraper)
        finally:
            await asyncio.to_thread(scraper.stop)

    async def _levels(
        self, session: aiohttp.ClientSession, exp: Experiment, target: Target, scraper: ServerScraper | None
    ) -> None:
        async def measured_start() -> None:
            if scraper is not None:
                await asyncio.to_thread(scraper.sample, "measured_start")

        context = SendContext(
            session,
            target,
            self.clock,
            self.land,
            self.stop,
            self.progress.update,
            self.prompts[exp.name],
            self.store,
            self.group,
            self.shard_records,
        )
        levels = [lv.concurrency for lv in self.plan if lv.experiment == exp.name]
        async with level_sender(context, exp.client_processes, levels) as send:
            await self._send_levels(exp, send, measured_start, scraper, exp.client_processes == 1)

    async def _send_levels(
        self,
        exp: Experiment,
        send: Sender,
        measured_start: Callable[[], Coroutine[Any, Any, None]],
        scraper: ServerScraper | None,
        sample_lag: bool,
    ) -> None:
        measured: dict[str, list[float]] = {}  # closed-loop request rates by bucket: a sweep's floor and ceiling
        index = -1
        while (index := index + 1) < len(self.plan):
            planned = self.plan[index]
            if planned.experiment != exp.name:
                continue
            if self.stop.is_set():
                return
            if planned.rate_per_s == 0.0:  # the first of a sweep's rates: its ladders come from the levels run
                planned = self._ladders(exp, index, measured)
            rate = planned.rate_per_s
            load = exp.load
            level = Level(
                payload_file=planned.bucket,
                prompts=self.prompts[exp.name][planned.bucket],
                concurrency=planned.concurrency,
                requests=exp.requests_per_level,
                warmup=exp.warmup_requests_per_level,
                target_rate_rps=rate,
                send_offsets_s=()
                if rate is None or isinstance(load, ClosedLoad)
                else send_offsets_s(
                    exp.requests_per_level,
                    rate,
                    load.arrival,
                    load.burstiness,
                    schedule_seed(load.seed, exp.name, planned.bucket, rate, planned.repeat),
                    load.level_duration_s,
                ),
                repeat_index=planned.repeat,
            )
            self.progress.start(index)
            ticker = asyncio.ensure_future(self.progress.ticking()) if self.progress.tty else None
            done = LevelProgress()
            # Client processes sample their own loops; this one's then only waits.
            loop_lag = asyncio.ensure_future(
                sample_loop_lag(
                    self.run_id,
                    exp.name,
                    self.hostname,
                    self.clock.base_perf_ns,
                    lambda row: self.landing.append("telemetry_samples", row),
                )
                if sample_lag
                else asyncio.sleep(0)
            )
            try:
                done = await send(level, index, measured_start)
                if scraper is not None:  # every request of the level has ended: the window's closing edge
                    await asyncio.to_thread(scraper.sample, "measured_end")
            finally:
                loop_lag.cancel()
                if ticker is not None:
                    ticker.cancel()
                self.progress.finish()
            self.requests += done.done
            self.errors += done.errors
            if rate is None:
                if (per_s := done.request_rate()) is not None:
                    measured.setdefault(planned.bucket, []).append(per_s)
            elif isinstance(load, SweepLoad) and is_saturated(done.successes):
                self._drop_after(index, exp.name, planned.bucket)  # no higher rate for this bucket

    def _ladders(self, exp: Experiment, index: int, measured: dict[str, list[float]]) -> PlannedLevel:
        """Replace the sweep's placeholder levels from `index` on by each bucket's ladder of rates, from the lowest
        to the highest closed-loop rate measured on it (rate outer, bucket inner); a bucket with nothing measured
        gets no rates. Returns the level now at `index`."""
        assert isinstance(exp.load, SweepLoad)
        load = exp.load
        ladders = {
            bucket: ladder(min(rates), max(rates), load.rate_count) for bucket, rates in measured.items() if rates
        }
        n = exp.warmup_requests_per_level + exp.requests_per_level
        levels = repeated(
            exp,
            [
                PlannedLevel(exp.name, bucket, load.max_in_flight, n, rates[k])
                for k in range(load.rate_count)
                for bucket in exp.payloads
                if (rates := ladders.get(bucket)) and k < len(rates)
            ],
        )
        rest = [lv for lv in self.plan[index:] if not (lv.experiment == exp.name and lv.rate_per_s == 0.0)]
        self.plan[index:] = levels + rest
        self.progress.replan(self.plan)
        return self.plan[index]

    def _drop_after(self, index: int, experiment: str, bucket: str) -> None:
        """Drop the bucket's higher sweep rates: the level at `index` saturated (its own repeats still run)."""
        rate = self.plan[index].rate_per_s
        assert rate is not None
        self.plan[index + 1 :] = [
            lv
            for lv in self.plan[index + 1 :]
            if not (lv.experiment == experiment and lv.bucket == bucket and (lv.rate_per_s or 0.0) > rate)
        ]
        self.progress.replan(self.plan)


class Run:
    """Owns the landing files and the manifest of one run from start to final status."""

    def __init__(
        self,
        config: Config,
        config_path: Path,
        results_dir: Path,
        payloads: list[dict[str, Any]] | None = None,
        raw: RawStore | None = None,
        run_id: str | None = None,
        shard: HostShard | None = None,
    ) -> None:
        self.config = config
        self.config_path = config_path
        self.results_dir = results_dir
        self.run_id = run_id or new_run_id()
        self.clock = RunClock()
        self.store = store = raw or raw_store(results_dir)  # results_dir/raw/, or an S3 prefix
        # A host shard joins the run after claiming its shard on the run's board (collector/host_shards.py).
        self.group: ShardGroup | None = None
        self.landing: Landing
        if shard is None:
            self.landing = store.open_run(self.run_id)
        else:
            self.group = ShardGroup(shard_board(store, self.run_id), shard, config_digest(redacted_dump(config)))
            self.group.claim()
            self.landing = store.open_run(self.run_id, shard.part, join=True, manifest=shard_manifest_file(shard.part))
        hostname, pid, process_started_at = process_identity()
        slo = config.report.slo_settings()
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
            slo_ttft_s=slo["slo_ttft_s"],
            slo_tpot_s=slo["slo_tpot_s"],
            slo_e2e_s=slo["slo_e2e_s"],
            slo_attainment=slo["slo_attainment"],
            collector_version=__version__,
            package_versions_json=package_versions(),
            hostname=hostname,
            platform=f"{platform.system()} {platform.release()} {platform.machine()}",
            python_version=platform.python_version(),
            cpu_count=os.cpu_count() or 1,
            pid=pid,
            process_started_at=process_started_at,
            payloads_json=payloads,
        )

    def heartbeat(self) -> None:
        self.manifest = replace(self.manifest, heartbeat_at=now_iso())
        self.landing.write_manifest(self.manifest)

    def finish(
        self,
        status: str,
        error: str | None,
        engines: list[dict[str, Any]],
        shards: list[dict[str, Any]] | None = None,
    ) -> None:
        self.manifest = replace(
            self.manifest,
            status=status,
            error_message=error,
            ended_at=now_iso(),
            heartbeat_at=now_iso(),
            engines_json=engines,
            shards_json=shards,
        )
        self.landing.write_manifest(self.manifest, final=True)

    def join_shards(self) -> bool:
        """A host shard: wait at the start barrier for every shard of the run, then count offsets from its
        instant (as the others do); False when stopped meanwhile."""
        assert self.group is not None
        shard = self.group.shard
        clock = asyncio.run(self.group.start(asyncio.Event(), say=lambda line: print(line, file=sys.stderr)))
        if clock is None:
            return False
        clock.id_prefix = f"{shard.index}." if shard.count > 1 else ""
        self.clock = clock
        return True

    def finish_sharded(
        self, status: str, error: str | None, engines: list[dict[str, Any]], processes: list[dict[str, Any]]
    ) -> tuple[str, str | None]:
        """Write the final manifest with the run's shards: a host shard's own record; shard 1 then waits for the
        others' final manifests and folds their status into the run's. Returns the run's status and error."""
        if self.group is None:
            record = {
                "shard": "1/1",
                "hostname": self.manifest.hostname,
                "pid": self.manifest.pid,
                "status": status,
                "error_message": error,
                "clock": {"base_perf_ns": self.clock.base_perf_ns, "wall_clock_sync": wall_clock_sync()},
                "processes": processes,
            }
            self.finish(status, error, engines, [record] if processes else None)
            return status, error
        own = self.group.record(status, error, processes)
        own["clock"]["base_perf_ns"] = self.clock.base_perf_ns
        self.finish(status, error, engines, [own])
        shard = self.group.shard
        if not shard.is_leader:
            return status, error
        peers = self.group.gather()
        records = [own] + [r for p in peers if p["manifest"] for r in (p["manifest"].get("shards_json") or [])]
        folded, why = fold(status, error, peers, shard.count)
        self.finish(folded, why, engines, with_clock_offsets(records))
        return folded, why


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


def sweep_plan(config: Config) -> list[PlannedLevel]:
    """Every level of a config's sweep in the order it runs: experiments in order; within one, concurrency (or rate)
    outer, bucket inner (as FMBench) and a level's repeats innermost, so each load level is one contiguous window
    for telemetry. A sweep's rates are placeholders (rate 0) until its closed levels ran."""
    plan: list[PlannedLevel] = []
    for exp in config.experiments:
        n = exp.warmup_requests_per_level + exp.requests_per_level
        load = exp.load
        if isinstance(load, RateLoad):
            plan += repeated(
                exp,
                [
                    PlannedLevel(exp.name, b, load.max_in_flight, n, rate)
                    for rate in load.rates_per_s
                    for b in exp.payloads
                ],
            )
            continue
        plan += repeated(exp, [PlannedLevel(exp.name, b, c, n) for c in exp.concurrency_levels for b in exp.payloads])
        if isinstance(load, SweepLoad):  # rates found once the closed levels ran (Sweep._ladders)
            plan += [
                PlannedLevel(exp.name, b, load.max_in_flight, n, 0.0)
                for _ in range(load.rate_count)
                for b in exp.payloads
            ]
    return plan


def repeated(exp: Experiment, levels: list[PlannedLevel]) -> list[PlannedLevel]:
    """Each level `exp.repeats_per_level` times, back to back."""
    k = exp.repeats_per_level
    return [replace(level, repeat=r, repeats=k) for level in levels for r in range(1, k + 1)]


def expected_rows(config: Config) -> int:
    """Request rows a config's sweep lands when nothing stops it early."""
    return sum(level.requests for level in sweep_plan(config))


def _prepare_warehouse(
    config: Config, config_path: Path, warehouse: Path, results_dir: Path, raw: RawStore | None = None
) -> None:
    """The pre-sweep warehouse work, as one write: raw views (and lost-run marking) and this config's budgets."""
    with writing(warehouse):
        refresh(results_dir, warehouse, raw)
        upsert_run_settings(
            warehouse,
            config.run_name,
            config.report.latency_budget_s,
            config.report.cost_per_10k_txn_budget_usd,
            config.report.error_rate_budget,
            config.report.dataset_of_interest,
            str(config_path),
            slo=config.report.slo_settings(),
        )


def _warn(what: str, exc: BaseException) -> None:
    print(f"warning: {what}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}", file=sys.stderr)


def payload_records(config: Config, provenance: dict[str, Any]) -> list[dict[str, Any]]:
    """The manifest's account of each bucket sent: where its prompts came from (a prepared file's provenance; for
    a synthetic bucket, how it was generated for each tokenizer that sends it)."""
    used = {b for exp in config.experiments for b in exp.payloads}
    out = []
    for bucket in config.payloads:
        if bucket.name not in used:
            continue
        kind = "prepared" if bucket.prepare is not None else "file" if bucket.file is not None else "synthetic"
        record: dict[str, Any] = {"name": bucket.name, "kind": kind, "file": str(bucket.file) if bucket.file else None}
        if bucket.file is not None:
            record["file_sha256"] = file_sha256(bucket.file)
        record["provenance"] = provenance.get(bucket.name)
        out.append(record)
    return out


def collect(
    config_path: Path,
    results_dir: Path,
    raw: RawStore | None = None,
    run_id: str | None = None,
    shard: HostShard | None = None,
) -> RunOutcome:
    """Run the sweep of one config and land everything; the warehouse is only written before and after.

    Raw rows land under results_dir/raw/, or in `raw` (an S3 prefix) when given; the warehouse and the logs stay
    in results_dir.

    Everything that can fail on bad input (config, payloads, free space, the warehouse) is checked before the run
    folder exists; once it exists, the run always ends with a final status in its manifest, whatever stops it.
    `run_id` names the run (else a new one); `shard` sends only that host shard's share of every level, into the
    run `run_id` that the other shards share (collector/host_shards.py).
    """
    config = load_config(config_path)
    check_run_id(run_id)
    if shard is not None:
        check_shardable(config, shard, run_id)
    raw = raw or raw_store(results_dir)
    counters = experiment_counters(config, config_path)  # a tokenizer that cannot be loaded fails here,
    # before any run folder exists, and so does a dataset that cannot be prepared or a bad payload file
    provenance = ensure_prepared(config, counters, say=lambda line: print(line, file=sys.stderr))
    prompts, generated = experiment_prompts(config, counters)
    for i, exp in enumerate(config.experiments):
        api_headers(exp, f"experiments[{i}]")  # and a missing or unsendable API key
        preflight(exp, f"experiments[{i}]")  # and an engine that cannot start (no docker, no token)
    results_dir.mkdir(parents=True, exist_ok=True)
    raw.preflight(expected_rows(config))  # free space on disk; on S3 a bucket that exists and takes writes
    warehouse = warehouse_path(results_dir)
    _prepare_warehouse(config, config_path, warehouse, results_dir, raw)
    run = Run(
        config, config_path, results_dir, payload_records(config, {**generated, **provenance}), raw, run_id, shard
    )
    log_dir = results_dir / "logs" / run.run_id
    sampler: TelemetrySampler | None = None
    sweep: Sweep | None = None
    status = "interrupted"
    error: str | None = "stopped before the sweep began"
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        run.landing.write_manifest(run.manifest)
        run.landing.start(heartbeat=run.heartbeat)
        if run.group is not None and not run.join_shards():
            raise KeyboardInterrupt  # pragma: no cover - the barrier only stops on a signal, which raises itself
        if run.group is None or run.group.shard.is_leader:  # one host's telemetry per run: shard 1's
            sampler = TelemetrySampler(
                run.run_id, run.clock.base_perf_ns, lambda row: run.landing.append("telemetry_samples", row)
            )
            sampler.start()
        shard_note = f" as shard {shard.label}" if shard is not None else ""
        print(f"run {run.run_id}{shard_note}: landing raw rows in {run.landing.where}", file=sys.stderr)
        for exp in config.experiments:
            print(f"experiment {exp.name}: token counter {counters[exp.name].name}", file=sys.stderr)
        sweep = Sweep(config, run.run_id, run.clock, run.landing, run.store, log_dir, prompts, counters, run.group)
        status, error = "completed", None
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
        for sig, handler in handlers.items():  # asyncio resets the handlers it installed to the defaults
            signal.signal(sig, handler)
        if sampler is not None:
            sampler.stop()
        run.landing.close()
        if run.landing.error:
            status, error = "failed", run.landing.error
        try:
            processes = sweep.shard_records if sweep is not None else []
            status, error = run.finish_sharded(status, error, launch_records(log_dir), processes)
            run.landing.release_reserve()
        except OSError as exc:  # the next refresh marks the run lost: its process is gone by then
            _warn(f"run manifest not finalised in {run.landing.where}", exc)
        if not run.landing.failed.is_set():  # on a full disk neither can work; the JSONL stays readable
            try:
                run.landing.compact()  # its own parts only: other host shards may still write theirs
            except (OSError, duckdb.Error) as exc:  # the next refresh compacts it
                _warn("compaction to Parquet postponed", exc)
            try:
                refresh(results_dir, warehouse, raw)
            except (OSError, UserError) as exc:
                _warn(f"warehouse {warehouse} not refreshed", exc)
    requests = sweep.requests if sweep else 0
    errors = sweep.errors if sweep else 0
    return RunOutcome(
        run.run_id,
        status,
        error,
        warehouse,
        config.pricing_dir,
        requests,
        errors,
        landing_failed=run.landing.failed.is_set(),
    )
