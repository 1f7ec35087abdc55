#!/usr/bin/env python3
"""How long `dbt build` takes, and how much memory it needs, as the raw request rows grow (10^4 to 10^6).

For each size a synthetic run is written straight to Parquet with DuckDB's generate_series, in the layout the
collector lands (results/raw/<run_id>/{requests,telemetry_samples}.parquet + run.json, columns from
collector/schema.py), the warehouse views are refreshed, and the real build (collector.dbt_runner.build: every
model, unit test and data test) runs in a fresh child process that reports its own wall time and peak RSS
(ru_maxrss; DuckDB runs inside that process). Target: 10^6 requests in under 30 s and 2 GiB.

Usage::

    python benchmarks/dbt_build_scale.py                 # 1e4, 1e5, 1e6
    python benchmarks/dbt_build_scale.py --sizes 10000 --keep /tmp/scale
    python benchmarks/dbt_build_scale.py --sizes 10000000 --memory-limit 4GB --keep /tmp/scale   # ~10 min, 3 GB disk
    TOKENBENCH_DBT_THREADS=1 python benchmarks/dbt_build_scale.py --sizes 100000000 --memory-limit 14GB \
        --keep /tmp/scale   # ~8 min to write, ~19 min to build, 15 GiB, 30 GB disk

A run already under --keep (its run.json written) is built again rather than written again.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import duckdb

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from collector.landing import MANIFEST_FILE, raw_root  # noqa: E402
from collector.schema import SCHEMA_VERSION, RequestRow, RunManifest, TelemetrySample, columns  # noqa: E402
from collector.warehouse import refresh, warehouse_path  # noqa: E402

EXPERIMENTS = [
    ("vllm-g5", "g5.4xlarge", "meta-llama/Llama-3.1-8B-Instruct"),
    ("bedrock", None, "meta.llama3-1-8b-instruct-v1:0"),
]
PAYLOADS = ["en_1-500", "en_500-1000", "en_1000-2000"]
CONCURRENCY = [1, 2, 4, 8, 16, 32]
RUN_ID = "20260101T000000Z-scale0"
CHUNK_OFFSETS = 16  # content chunk arrival times per successful request
MAX_UNSCALED_REQUESTS = 10_000_000  # beyond, request times shrink so that the run stays in the sane range

# One child process per build: its own ru_maxrss is the build's peak memory (dbt + DuckDB in one process).
CHILD = """
import json, resource, sys, time
from pathlib import Path
from collector import dbt_runner
started = time.perf_counter()
result = dbt_runner.build(Path(sys.argv[1]))
print(json.dumps({"wall_s": time.perf_counter() - started, "nodes": result.nodes,
                  "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def _requests_sql(n: int, path: Path) -> str:
    """n request rows: 36 levels (2 experiments x 3 buckets x 6 concurrency levels), one warm-up each, 1% errors.

    A request takes about 1.15 s in a 1.5 s slot up to 10^7 requests (a run of 57 days). Beyond, every time is
    shortened in proportion (at 10^8: 0.115 s in 0.15 s), so that the run stays within the raw rows' sane range
    (var max_sane_duration_ns, 116 days): rows past it would be quarantined, not measured.
    """
    slot_ns = 1_500_000_000 * min(1.0, MAX_UNSCALED_REQUESTS / n)
    scale = slot_ns / 1_500_000_000
    levels = len(EXPERIMENTS) * len(PAYLOADS) * len(CONCURRENCY)
    exp_names = [e[0] for e in EXPERIMENTS]
    exp_types = ["null" if e[1] is None else f"'{e[1]}'" for e in EXPERIMENTS]
    exp_models = [e[2] for e in EXPERIMENTS]
    values = {
        "run_id": f"'{RUN_ID}'",
        "request_id": f"'{RUN_ID}:' || i",
        "experiment_name": f"{exp_names}[exp + 1]",
        "model_id": f"{exp_models}[exp + 1]",
        "endpoint_type": "'simulated'",
        "endpoint_url": "'http://127.0.0.1:8000/v1/chat/completions'",
        "api_style": "'chat'",
        "is_streaming": "true",
        "instance_type": f"[{', '.join(exp_types)}][exp + 1]",
        "instance_count": "1",
        "payload_file": f"{PAYLOADS}[bucket + 1]",
        "prompt_index": "seq % 50",
        "concurrency": "conc",
        "worker_index": "seq % conc",
        "sequence_in_level": "seq",
        "is_warmup": "seq = 0",
        "max_tokens": "100",
        "started_at": "timestamptz '2026-01-01 00:00:00+00' + to_microseconds(cast(start_ns // 1000 as bigint))",
        "start_offset_ns": "start_ns",
        "e2e_ns": "e2e_ns",
        "first_chunk_ns": "ttft_ns",
        "first_content_ns": "ttft_ns",
        "last_content_ns": "case when ok then e2e_ns end",
        "chunk_count": "completion",
        "content_chunk_count": "completion",
        "status": "case when ok then 'success' else 'error' end",
        "http_status": "case when ok then 200 else 503 end",
        "error_type": "case when ok then null else 'http_error' end",
        "error_message": "case when ok then null else 'HTTP 503' end",
        "finish_reason": "case when ok then 'stop' end",
        "prompt_tokens": "prompt",
        "completion_tokens": "case when ok then completion end",
        "token_count_source": "'server'",
        "client_prompt_tokens": "prompt",
        "client_completion_tokens": "case when ok then completion end",
        "token_counter": "'simple-regex'",
        "server_prompt_tokens": "prompt",
        "server_completion_tokens": "case when ok then completion end",
        # Streamed replies carry each content chunk's arrival (inter-token latency): CHUNK_OFFSETS per request.
        "content_chunk_offsets_ns": f"case when ok then list_transform(range({CHUNK_OFFSETS}), "
        f"lambda k: ttft_ns + k * (e2e_ns - ttft_ns) // {CHUNK_OFFSETS}) end",
        "load_model": "'closed'",
        "repeat_index": "1",
        "schema_version": str(SCHEMA_VERSION),
    }
    # A column not listed above is null, as in a row landed before it existed.
    typed = ",\n  ".join(f"cast({values.get(c, 'null')} as {t}) as {c}" for c, t in columns(RequestRow).items())
    per_level = n // levels
    return f"""
copy (
with level_list as (
  -- sweep order: experiment, then concurrency, then bucket (each concurrency level one contiguous window)
  select lvl, {CONCURRENCY}[(lvl // {len(PAYLOADS)}) % {len(CONCURRENCY)} + 1] as conc
  from generate_series(0, {levels - 1}) t(lvl)
), level_starts as (
  -- closed loop: a level lasts about (requests / concurrency) slots; levels follow each other
  select lvl, conc,
    coalesce(sum(({per_level} // conc + 1) * {int(slot_ns)}::bigint) over (order by lvl rows between unbounded preceding
      and 1 preceding), 0) as level_start_ns
  from level_list
), base as (
  select i, i // {per_level} as lvl, i % {per_level} as seq from generate_series(0, {n - 1}) t(i)
  where i < {levels * per_level}
), shaped as (
  select base.*, level_starts.conc, level_starts.level_start_ns,
    base.lvl // {len(PAYLOADS) * len(CONCURRENCY)} as exp,
    base.lvl % {len(PAYLOADS)} as bucket,
    hash(base.i) % 1000 as r
  from base join level_starts using (lvl)
), timed as (
  select *,
    cast(level_start_ns + (seq // conc) * {int(slot_ns)}::bigint + r * {int(100_000 * scale)} as bigint) as start_ns,
    {int(1_000_000_000 * scale)} + r * {int(300_000 * scale)} as e2e_ns,
    {int(100_000_000 * scale)} + r * {int(200_000 * scale)} as ttft_ns,
    r % 100 != 7 as ok,
    200 + (r * 7) % 800 as prompt,
    10 + r % 60 as completion
  from shaped
)
select {typed} from timed
) to '{path}' (format parquet, compression zstd)
"""


def _telemetry_sql(requests: Path, path: Path) -> str:
    """One host row and one GPU row per second over the whole run, as the sampler writes them."""
    values = {
        "run_id": f"'{RUN_ID}'",
        "sampled_at": "timestamptz '2026-01-01 00:00:00+00' + to_seconds(s)",
        "offset_ns": "s * 1000000000",
        "hostname": "'bench'",
        "device": "case when d = 0 then 'host' else 'gpu0' end",
        "gpu_index": "case when d = 1 then 0 end",
        "gpu_name": "case when d = 1 then 'NVIDIA A10G' end",
        "cpu_percent": "case when d = 0 then (s % 100) end",
        "memory_used_bytes": "case when d = 0 then 8589934592 end",
        "memory_total_bytes": "case when d = 0 then 68719476736 end",
        "gpu_utilization_percent": "case when d = 1 then (s % 100) end",
        "gpu_memory_used_bytes": "case when d = 1 then 21474836480 end",
        "gpu_memory_total_bytes": "case when d = 1 then 25769803776 end",
        "gpu_power_w": "case when d = 1 then 150 + s % 50 end",
        "gpu_energy_j": "case when d = 1 then s * 175.0 end",
        "source": "case when d = 0 then 'host' else 'gpu' end",
        "schema_version": str(SCHEMA_VERSION),
    }
    typed = ",\n  ".join(f"cast({values.get(c, 'null')} as {t}) as {c}" for c, t in columns(TelemetrySample).items())
    return f"""
copy (
select {typed}
from generate_series(0, (select max(start_offset_ns + e2e_ns) // 1000000000 + 1 from read_parquet('{requests}'))) a(s),
  generate_series(0, 1) b(d)
) to '{path}' (format parquet, compression zstd)
"""


def write_run(results: Path, n: int) -> None:
    run_dir = raw_root(results) / RUN_ID
    run_dir.mkdir(parents=True)
    con = duckdb.connect()
    try:
        con.execute(_requests_sql(n, run_dir / "requests.parquet"))
        con.execute(_telemetry_sql(run_dir / "requests.parquet", run_dir / "telemetry_samples.parquet"))
    finally:
        con.close()
    manifest = RunManifest(
        run_id=RUN_ID,
        run_name="scale",
        status="completed",
        started_at="2026-01-01T00:00:00+00:00",
        ended_at="2026-01-03T00:00:00+00:00",
        heartbeat_at="2026-01-03T00:00:00+00:00",
        error_message=None,
        config_path="benchmarks/dbt_build_scale.py",
        config_json={},
        experiments_json=[
            {
                "experiment_name": name,
                "model_id": model,
                "endpoint_type": "simulated",
                "instance_type": itype,
                "instance_count": 1,
                "pricing_kind": "instance" if itype else "token",
                "usd_per_hour": 1.624 if itype else None,
                "usd_per_1m_input_tokens": None if itype else 0.22,
                "usd_per_1m_output_tokens": None if itype else 0.22,
                "price_read_on": "2026-01-01",
            }
            for name, itype, model in EXPERIMENTS
        ],
        latency_budget_s=2.0,
        cost_per_10k_txn_budget_usd=20.0,
        error_rate_budget=0.02,
        dataset_of_interest="en_500-1000",
        collector_version="bench",
        package_versions_json={},
        hostname="bench",
        platform="bench",
        python_version=sys.version.split()[0],
        cpu_count=2,
    )
    (run_dir / MANIFEST_FILE).write_text(json.dumps(asdict(manifest)) + "\n")


def measure(n: int, work: Path, memory_limit: str | None = None) -> dict[str, float]:
    results = work / f"n{n}"
    started = time.perf_counter()
    if (raw_root(results) / RUN_ID / MANIFEST_FILE).is_file():
        print(f"reusing the run of {n} rows in {results}", file=sys.stderr)  # kept by an earlier --keep
    else:
        write_run(results, n)
    warehouse = refresh(results, warehouse_path(results))
    generated_s = time.perf_counter() - started
    env = dict(os.environ)
    if memory_limit:
        env["TOKENBENCH_DUCKDB_MEMORY_LIMIT"] = memory_limit  # models_dbt/profiles.yml's DuckDB memory_limit
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(warehouse)], cwd=REPO, env=env, capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise SystemExit(f"build of {n} rows failed:\n{proc.stderr[-3000:]}")
    figures = json.loads(proc.stdout.strip().splitlines()[-1])
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        (rows,) = con.execute("select count(*) from marts.fct_requests").fetchone() or (0,)
        (quarantined,) = con.execute("select count(*) from marts.fct_quarantined_rows").fetchone() or (0,)
    finally:
        con.close()
    if quarantined:  # the build's figures would be the quarantine's, not the metrics'
        print(f"warning: {quarantined} of the {n} rows were quarantined (marts.fct_quarantined_rows)", file=sys.stderr)
    return {"requests": rows, "generate_s": generated_s, **figures}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000,1000000", help="Comma-separated request counts.")
    parser.add_argument(
        "--keep", type=Path, default=None, help="Keep the generated folders here (a run kept there is reused)."
    )
    parser.add_argument(
        "--memory-limit",
        default=None,
        help="DuckDB memory_limit for the build, e.g. 4GB (default: the profile's, $TOKENBENCH_DUCKDB_MEMORY_LIMIT or "
        "1GB). DuckDB spills what it can beyond it to <warehouse>.tmp/ beside the warehouse.",
    )
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory(prefix="dbt-scale-") as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        print(f"{'requests':>9} | {'build s':>7} | {'peak RSS MiB':>12} | {'dbt nodes':>9} | {'generate s':>10}")
        for n in sizes:
            f = measure(n, work, args.memory_limit)
            print(
                f"{f['requests']:>9} | {f['wall_s']:>7.1f} | {f['peak_rss_mib']:>12.0f} | {f['nodes']:>9} | "
                f"{f['generate_s']:>10.1f}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
