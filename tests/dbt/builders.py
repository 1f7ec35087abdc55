"""Builders that land runs from compact descriptions with the real landing code, and a built warehouse.

A run is described by `RunSpec` (experiments with their recorded prices, requests as start/latency/tokens
in seconds, telemetry instants); `land_run` writes it through collector.landing exactly as the collector
does (JSONL rows, manifest, then compact_run to Parquet), and `build_warehouse` refreshes the raw views
and runs the real `dbt build` through collector.dbt_runner.
"""

from __future__ import annotations

import shutil
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

from collector import dbt_runner
from collector.landing import Landing, RunLanding
from collector.schema import RequestRow, RunManifest, TelemetrySample
from collector.warehouse import refresh, upsert_run_settings, warehouse_path

REPO = Path(__file__).resolve().parents[2]
PRICING_DIR = REPO / "tests" / "fixtures" / "pricing"  # frozen: see its README
RUN_START = datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)
GIB = 2**30


def ns(seconds: float) -> int:
    return round(seconds * 1e9)


@dataclass
class Experiment:
    """One experiment of a run and the price its manifest recorded."""

    name: str
    model_id: str = "meta-llama/Llama-3.1-8B-Instruct"
    instance_type: str | None = "g5.4xlarge"
    instance_count: int = 1
    usd_per_hour: float | None = None
    usd_per_1m_input_tokens: float | None = None
    usd_per_1m_output_tokens: float | None = None
    endpoint_type: str = "simulated"
    unpriced: bool = False
    price_source: str = "pricing"  # where the recorded price came from: pricing/ or the config ("config")

    @property
    def pricing_kind(self) -> str:
        if self.unpriced:
            return "unpriced"
        return "instance" if self.instance_type or self.price_source == "config" else "token"


@dataclass
class Req:
    """One request: times in seconds since the run started."""

    experiment: str
    payload_file: str
    concurrency: int
    start_s: float
    e2e_s: float
    ttft_s: float | None = None
    prompt_tokens: int | None = 100
    completion_tokens: int | None = 10
    status: str = "success"
    error_type: str | None = None
    http_status: int | None = 200
    is_warmup: bool = False
    worker_index: int = 0
    error_message: str | None = None


@dataclass
class Gpu:
    utilization_percent: float | None = 50.0
    memory_used_bytes: int | None = 20 * GIB
    memory_total_bytes: int | None = 24 * GIB
    power_w: float | None = 100.0
    energy_j: float | None = None


@dataclass
class Instant:
    """One sampling instant: the host row plus one row per GPU, all at the same offset."""

    offset_s: float
    cpu_percent: float | None = 10.0
    memory_used_bytes: int | None = 8 * GIB
    gpus: list[Gpu] = field(default_factory=list)


@dataclass
class RunSpec:
    run_id: str
    run_name: str
    experiments: list[Experiment]
    requests: list[Req]
    instants: list[Instant] = field(default_factory=list)
    status: str = "completed"
    latency_budget_s: float = 2.0
    cost_per_10k_txn_budget_usd: float = 20.0
    error_rate_budget: float = 0.0
    dataset_of_interest: str = "en_500-1000"
    planned: dict[str, tuple[list[str], list[int]]] | None = None  # experiment: (payloads, concurrency levels)
    slo: dict[str, float | None] | None = None  # slo_ttft_s, slo_tpot_s, slo_e2e_s, slo_attainment


def _iso(seconds: float) -> str:
    return (RUN_START + timedelta(seconds=seconds)).isoformat()


def manifest(spec: RunSpec) -> RunManifest:
    return RunManifest(
        run_id=spec.run_id,
        run_name=spec.run_name,
        status=spec.status,
        started_at=_iso(0),
        ended_at=_iso(max((r.start_s + r.e2e_s for r in spec.requests), default=0) + 1),
        heartbeat_at=_iso(1),
        error_message=None,
        config_path=f"configs/{spec.run_name}.yml",
        config_json={
            "run_name": spec.run_name,
            **(
                {}
                if spec.planned is None
                else {
                    "experiments": [
                        {"name": name, "payloads": payloads, "concurrency_levels": levels}
                        for name, (payloads, levels) in spec.planned.items()
                    ]
                }
            ),
        },
        experiments_json=[
            {
                "experiment_name": e.name,
                "model_id": e.model_id,
                "endpoint_type": e.endpoint_type,
                "instance_type": e.instance_type,
                "instance_count": e.instance_count,
                "pricing_kind": e.pricing_kind,
                "price_source": None if e.unpriced else e.price_source,
                "telemetry_host": "collector" if e.endpoint_type == "openai" else "endpoint",
                "usd_per_hour": e.usd_per_hour,
                "usd_per_1m_input_tokens": e.usd_per_1m_input_tokens,
                "usd_per_1m_output_tokens": e.usd_per_1m_output_tokens,
                "price_read_on": "2026-11-01",
            }
            for e in spec.experiments
        ],
        latency_budget_s=spec.latency_budget_s,
        cost_per_10k_txn_budget_usd=spec.cost_per_10k_txn_budget_usd,
        error_rate_budget=spec.error_rate_budget,
        dataset_of_interest=spec.dataset_of_interest,
        **(spec.slo or {}),
        collector_version="test",
        package_versions_json={"python": "3.11"},
        hostname="testhost",
        platform="Linux test",
        python_version="3.11",
        cpu_count=2,
    )


def request_rows(spec: RunSpec) -> list[RequestRow]:
    experiments = {e.name: e for e in spec.experiments}
    order: dict[tuple[str, str, int], int] = defaultdict(int)
    rows = []
    ordered = sorted(enumerate(spec.requests), key=lambda ir: (ir[1].start_s, ir[0]))
    for seq, (_, r) in enumerate(ordered):
        exp = experiments[r.experiment]
        key = (r.experiment, r.payload_file, r.concurrency)
        in_level = order[key]
        order[key] += 1
        ok = r.status == "success"
        ttft_ns = None if r.ttft_s is None else ns(r.ttft_s)
        rows.append(
            RequestRow(
                run_id=spec.run_id,
                request_id=f"{spec.run_id}:{seq}",
                experiment_name=r.experiment,
                model_id=exp.model_id,
                endpoint_type=exp.endpoint_type,
                endpoint_url="http://127.0.0.1:8000/v1/chat/completions",
                api_style="chat",
                is_streaming=True,
                instance_type=exp.instance_type,
                instance_count=exp.instance_count,
                payload_file=r.payload_file,
                prompt_index=in_level,
                concurrency=r.concurrency,
                worker_index=r.worker_index,
                sequence_in_level=in_level,
                is_warmup=r.is_warmup,
                max_tokens=100,
                started_at=_iso(r.start_s),
                start_offset_ns=ns(r.start_s),
                e2e_ns=ns(r.e2e_s),
                first_chunk_ns=ttft_ns,
                first_content_ns=ttft_ns,
                last_content_ns=ns(r.e2e_s) if ok and ttft_ns is not None else None,
                chunk_count=(r.completion_tokens or 0) if ttft_ns is not None else 0,
                content_chunk_count=(r.completion_tokens or 0) if ttft_ns is not None else 0,
                status=r.status,
                http_status=r.http_status if ok else (r.http_status if r.error_type == "http_error" else None),
                error_type=None if ok else (r.error_type or "timeout"),
                error_message=None if ok else (r.error_message or f"{r.error_type or 'timeout'} in test"),
                finish_reason="stop" if ok else None,
                prompt_tokens=r.prompt_tokens,
                completion_tokens=r.completion_tokens if ok else None,
                token_count_source="server" if ok else "client",
                client_prompt_tokens=r.prompt_tokens or 0,
                client_completion_tokens=r.completion_tokens if ok else None,
                token_counter="simple-regex",
            )
        )
    return rows


def telemetry_rows(spec: RunSpec) -> list[TelemetrySample]:
    rows = []
    for inst in spec.instants:
        base: dict[str, Any] = {
            "run_id": spec.run_id,
            "sampled_at": _iso(inst.offset_s),
            "offset_ns": ns(inst.offset_s),
            "hostname": "testhost",
        }
        rows.append(
            TelemetrySample(
                **base,
                device="host",
                gpu_index=None,
                gpu_name=None,
                cpu_percent=inst.cpu_percent,
                memory_used_bytes=inst.memory_used_bytes,
                memory_total_bytes=64 * GIB,
                gpu_utilization_percent=None,
                gpu_memory_used_bytes=None,
                gpu_memory_total_bytes=None,
                gpu_power_w=None,
                gpu_energy_j=None,
            )
        )
        for i, gpu in enumerate(inst.gpus):
            rows.append(
                TelemetrySample(
                    **base,
                    device=f"gpu{i}",
                    gpu_index=i,
                    gpu_name="NVIDIA A10G",
                    cpu_percent=None,
                    memory_used_bytes=None,
                    memory_total_bytes=None,
                    gpu_utilization_percent=gpu.utilization_percent,
                    gpu_memory_used_bytes=gpu.memory_used_bytes,
                    gpu_memory_total_bytes=gpu.memory_total_bytes,
                    gpu_power_w=gpu.power_w,
                    gpu_energy_j=gpu.energy_j,
                )
            )
    return rows


def land_into(landing: Landing, spec: RunSpec, *, compact: bool = True) -> None:
    """Write one run's manifest, request rows and telemetry through a landing (a local folder's or S3's)."""
    landing.write_manifest(manifest(spec))
    for row in request_rows(spec):
        landing.append("requests", row)
    for sample in telemetry_rows(spec):
        landing.append("telemetry_samples", sample)
    landing.close()
    if compact:
        landing.compact()


def land_run(results_dir: Path, spec: RunSpec, *, compact: bool = True) -> Path:
    """Write one run's manifest, request rows and telemetry as the collector does; return its folder."""
    landing = RunLanding(results_dir, spec.run_id)
    land_into(landing, spec, compact=compact)
    return landing.dir


def build_warehouse(
    results_dir: Path,
    specs: list[RunSpec] = (),  # type: ignore[assignment]
    *,
    pricing_dir: Path | None = None,
    vars: dict[str, Any] | None = None,
) -> Path:
    """Land `specs` (if any) under results_dir, refresh raw.* and run the real dbt build; return the warehouse."""
    for spec in specs:
        land_run(results_dir, spec)
    path = refresh(results_dir, warehouse_path(results_dir))
    dbt_runner.build(path, pricing_dir=pricing_dir or PRICING_DIR, vars=vars)
    return path


def set_budgets(warehouse: Path, spec: RunSpec, slo: dict[str, float | None] | None = None, **budgets: Any) -> None:
    """Write config.run_settings for the spec's run_name (its SLOs: `slo`, none by default), as `collector build
    --config` does."""
    settings = {
        "latency_budget_s": spec.latency_budget_s,
        "cost_per_10k_txn_budget_usd": spec.cost_per_10k_txn_budget_usd,
        "error_rate_budget": spec.error_rate_budget,
        "dataset_of_interest": spec.dataset_of_interest,
    }
    settings.update(budgets)
    upsert_run_settings(warehouse, spec.run_name, config_path=f"configs/{spec.run_name}.yml", slo=slo, **settings)


def query(warehouse: Path, sql: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
    """Rows of a query on the built warehouse, as dicts (read-only, closed at once)."""
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        cur = con.execute(sql, params or [])
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
    finally:
        con.close()


def copy_pricing(dest: Path) -> Path:
    """A private copy of pricing/ that a test may edit."""
    shutil.copytree(PRICING_DIR, dest)
    return dest


# -- the shared scenario ---------------------------------------------------------------------------
#
# Run A ("llama-g5", budgets: p95 <= 2 s, <= $20 per 10k transactions, error rate 0, dataset en_500-1000).
# Timeline in seconds since the run started; levels in sweep order (concurrency outer, bucket inner).
#   vllm-g5  (g5.4xlarge x1, recorded $1.50/h; pricing/ says $1.624/h)
#     c1 en_1-500     warm-up [0, 5) then 3 x 0.5 s back to back [5, 6.5)
#     c1 en_500-1000  5 requests back to back from 6.5: 1.0, 1.5, 1.0, 1.25, 1.25 s -> ends 12.5
#     c2 en_1-500     [13, 14) ok; [13, 13.1) timeout; [13.1, 14.1) ok
#     c2 en_500-1000  worker 0: 1.5 s, 2.0 s from 14.1; worker 1: 2.0 s, 2.0 s from 14.1 -> ends 18.1
#     c4 en_500-1000  4 requests at 19.0: 2.5, 2.5, 3.0, 3.0 s -> ends 22.0
#   tgi-g5   (same instance type, another serving stack)
#     c1 en_500-1000  4 x 1.0 s back to back from 30.0
#     c2 en_500-1000  2 HTTP 503 errors of 0.5 s at 34.0 (no success)
#   bedrock-llama (token-priced API; recorded $0.30/$0.60 per 1M; pricing/ says $0.22/$0.22)
#     c1 en_500-1000  2 x 1.0 s from 40.0: prompts 1000 and 800, completions 100 and 50 tokens
# Telemetry every second from 0 to 35 s: host cpu_percent = t, 8 GiB used; 2 GPUs at 50 % and 70 %,
# 20 GiB used of 24 GiB each, 100 W and 200 W. GPU energy counters (1000 + 110 t J and 5000 + 200 t J)
# only before 25 s, so vllm-g5's windows use the counters and tgi-g5's the power trapezoid; bedrock-llama's
# window (40-42 s) has no samples.
#
# Run B ("other", status interrupted): vllm-g5 c1 en_500-1000 with 3.0 s latencies (misses the latency
# budget) and custom-box on an instance type that pricing/ does not list (recorded $2.00/h).

RUN_A = "20261126T120000Z-aaaaaa"
RUN_B = "20261126T130000Z-bbbbbb"
SMALL, LARGE = "en_1-500", "en_500-1000"


def _back_to_back(exp: str, payload: str, conc: int, start: float, latencies: list[float], **kw: Any) -> list[Req]:
    out = []
    t = start
    for e2e in latencies:
        out.append(Req(exp, payload, conc, t, e2e, **kw))
        t += e2e
    return out


def run_a() -> RunSpec:
    reqs: list[Req] = []
    # vllm-g5, concurrency 1
    reqs.append(Req("vllm-g5", SMALL, 1, 0.0, 5.0, ttft_s=1.0, prompt_tokens=300, completion_tokens=20, is_warmup=True))
    reqs += _back_to_back(
        "vllm-g5", SMALL, 1, 5.0, [0.5, 0.5, 0.5], ttft_s=0.1, prompt_tokens=300, completion_tokens=20
    )
    for t, e2e, p, c in [
        (6.5, 1.0, 800, 40),
        (7.5, 1.5, 900, 40),
        (9.0, 1.0, 850, 30),
        (10.0, 1.25, 820, 50),
        (11.25, 1.25, 880, 40),
    ]:
        reqs.append(Req("vllm-g5", LARGE, 1, t, e2e, ttft_s=0.25, prompt_tokens=p, completion_tokens=c))
    # vllm-g5, concurrency 2
    reqs += [
        Req("vllm-g5", SMALL, 2, 13.0, 1.0, ttft_s=0.2, prompt_tokens=300, completion_tokens=20, worker_index=0),
        Req("vllm-g5", SMALL, 2, 13.0, 0.1, status="error", error_type="timeout", http_status=None, worker_index=1),
        Req("vllm-g5", SMALL, 2, 13.1, 1.0, ttft_s=0.2, prompt_tokens=300, completion_tokens=20, worker_index=1),
        Req("vllm-g5", LARGE, 2, 14.1, 1.5, ttft_s=0.5, prompt_tokens=800, completion_tokens=40, worker_index=0),
        Req("vllm-g5", LARGE, 2, 15.6, 2.0, ttft_s=0.5, prompt_tokens=800, completion_tokens=40, worker_index=0),
        Req("vllm-g5", LARGE, 2, 14.1, 2.0, ttft_s=0.5, prompt_tokens=800, completion_tokens=40, worker_index=1),
        Req("vllm-g5", LARGE, 2, 16.1, 2.0, ttft_s=0.5, prompt_tokens=800, completion_tokens=40, worker_index=1),
    ]
    # vllm-g5, concurrency 4
    reqs += [
        Req("vllm-g5", LARGE, 4, 19.0, e2e, ttft_s=1.0, prompt_tokens=800, completion_tokens=40, worker_index=w)
        for w, e2e in enumerate([2.5, 2.5, 3.0, 3.0])
    ]
    # tgi-g5
    reqs += _back_to_back("tgi-g5", LARGE, 1, 30.0, [1.0] * 4, ttft_s=0.2, prompt_tokens=800, completion_tokens=40)
    reqs += [
        Req("tgi-g5", LARGE, 2, 34.0, 0.5, status="error", error_type="http_error", http_status=503, worker_index=w)
        for w in range(2)
    ]
    # bedrock-llama
    reqs += [
        Req("bedrock-llama", LARGE, 1, 40.0, 1.0, ttft_s=0.4, prompt_tokens=1000, completion_tokens=100),
        Req("bedrock-llama", LARGE, 1, 41.0, 1.0, ttft_s=0.4, prompt_tokens=800, completion_tokens=50),
    ]
    instants = [
        Instant(
            offset_s=t,
            cpu_percent=float(t),
            gpus=[
                Gpu(50.0, 20 * GIB, 24 * GIB, 100.0, 1000.0 + 110 * t if t < 25 else None),
                Gpu(70.0, 20 * GIB, 24 * GIB, 200.0, 5000.0 + 200 * t if t < 25 else None),
            ],
        )
        for t in range(36)
    ]
    return RunSpec(
        run_id=RUN_A,
        run_name="llama-g5",
        experiments=[
            Experiment("vllm-g5", usd_per_hour=1.5),
            Experiment("tgi-g5", usd_per_hour=1.624),
            Experiment(
                "bedrock-llama",
                model_id="meta.llama3-1-8b-instruct-v1:0",
                instance_type=None,
                usd_per_1m_input_tokens=0.30,
                usd_per_1m_output_tokens=0.60,
                endpoint_type="openai",
            ),
        ],
        requests=reqs,
        instants=instants,
    )


def run_b() -> RunSpec:
    reqs = _back_to_back("vllm-g5", LARGE, 1, 0.0, [3.0, 3.0], ttft_s=0.5, prompt_tokens=800, completion_tokens=40)
    reqs += _back_to_back("custom-box", LARGE, 1, 10.0, [1.0, 1.0], ttft_s=0.5, prompt_tokens=800, completion_tokens=40)
    return RunSpec(
        run_id=RUN_B,
        run_name="other",
        status="interrupted",
        experiments=[
            Experiment("vllm-g5", usd_per_hour=1.624),
            Experiment("custom-box", instance_type="x9.custom", usd_per_hour=2.0),
        ],
        requests=reqs,
    )
