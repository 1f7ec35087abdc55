"""Check the GPU telemetry path on a machine with an NVIDIA GPU: run a short simulated sweep while a
torch matmul loop loads the GPU, then read raw.telemetry_samples back from the warehouse and print
per-GPU figures (utilisation, memory, power, and energy from the counter against the power integral).

    python benchmarks/gpu_telemetry_check.py [--load-seconds 20]

Exits 1 if NVML reports GPUs but no GPU rows landed. Without NVML it prints that only host rows exist.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import duckdb
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from collector.runner import collect  # noqa: E402

GPU_LOAD = textwrap.dedent(
    """
    import sys, time, torch
    if not torch.cuda.is_available():
        sys.exit(0)
    a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    end = time.time() + float(sys.argv[1])
    while time.time() < end:
        for _ in range(20):
            a = (a @ a).clamp_(-1, 1)
        torch.cuda.synchronize()
    """
)


def nvml_gpu_count() -> int:
    try:
        import pynvml

        pynvml.nvmlInit()
        return int(pynvml.nvmlDeviceGetCount())
    except Exception:
        return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--load-seconds", type=float, default=20, help="How long the torch load runs.")
    args = parser.parse_args()
    gpus = nvml_gpu_count()
    print(f"NVML GPUs: {gpus}")
    work = Path(tempfile.mkdtemp(prefix="tb-gpu-"))
    cfg = {
        "run_name": "gpu-telemetry-check",
        "payloads": [{"name": "short", "synthetic": {"min_tokens": 50, "max_tokens": 200, "count": 10}}],
        "experiments": [
            {
                "name": "sim",
                "model_id": "meta-llama/Llama-3.1-8B-Instruct",
                "endpoint": {"type": "simulated", "speedup": 2},
                "instance_type": "g5.4xlarge",
                "concurrency_levels": [1, 4],
                "requests_per_level": 24,
                "payloads": ["short"],
                "inference_parameters": {"max_tokens": 40},
            }
        ],
        "report": {"latency_budget_s": 2, "cost_per_10k_txn_budget_usd": 20, "dataset_of_interest": "short"},
        "pricing_dir": str(REPO / "pricing"),
    }
    cfg_path = work / "gpu.yml"
    cfg_path.write_text(yaml.safe_dump(cfg))
    load = subprocess.Popen([sys.executable, "-c", GPU_LOAD, str(args.load_seconds)])
    outcome = collect(cfg_path, work / "results")
    load.wait()
    print(f"run {outcome.run_id}: {outcome.status}, {outcome.requests} requests")
    con = duckdb.connect(str(outcome.warehouse), read_only=True)
    print(
        con.sql(
            """
            select device, any_value(gpu_name) as gpu_name, count(*) as samples,
                   round(avg(cpu_percent), 1) as cpu_pct_mean,
                   round(max(gpu_utilization_percent), 1) as gpu_util_max,
                   round(avg(gpu_utilization_percent), 1) as gpu_util_mean,
                   round(max(gpu_memory_used_bytes) / 2^30, 2) as gpu_mem_used_gib_max,
                   round(max(gpu_memory_total_bytes) / 2^30, 2) as gpu_mem_total_gib,
                   round(min(gpu_power_w), 1) as power_w_min, round(max(gpu_power_w), 1) as power_w_max,
                   round(max(gpu_energy_j) - min(gpu_energy_j), 1) as energy_counter_j,
                   round((max(offset_ns) - min(offset_ns)) / 1e9, 1) as span_s
            from raw.telemetry_samples group by device order by device
            """
        )
    )
    # Energy from the counter vs. the trapezoid integral of sampled power, per GPU.
    print(
        con.sql(
            """
            with s as (
                select device, offset_ns / 1e9 as t, gpu_power_w as p, gpu_energy_j as e,
                       lag(offset_ns / 1e9) over (partition by device order by offset_ns) as t0,
                       lag(gpu_power_w) over (partition by device order by offset_ns) as p0
                from raw.telemetry_samples where device like 'gpu%'
            )
            select device, round(sum((t - t0) * (p + p0) / 2), 1) as power_integral_j,
                   round(max(e) - min(e), 1) as energy_counter_j
            from s group by device order by device
            """
        )
    )
    gpu_rows = con.execute("select count(*) from raw.telemetry_samples where device like 'gpu%'").fetchone()[0]
    con.close()
    if gpus and not gpu_rows:
        print("FAIL: NVML sees GPUs but no GPU telemetry rows landed")
        return 1
    print("OK" if gpus else "no NVML here: host rows only, as designed")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
