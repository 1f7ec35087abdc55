"""Open-loop scheduling and steady-state throughput, measured through the collector's real load path.

1. Scheduler send-time error: Poisson levels at 100, 1,000 and 3,000 requests/s against benchmarks/sse_server.py
   (zero delay, 16 tokens) in a separate process on 127.0.0.1, rows landing through collector.landing.RunLanding
   as in `collector run`; per level the send lag (actual - intended send time) p50/p99/max from the rows, and
   the highest rate of a ladder at which the p99 stays under 1 ms.
2. Steady-state throughput: `python -m collector run` at concurrency 2 with 20 requests against the server with
   known timings (TTFT 200 ms, 20 tokens 20 ms apart: 580 ms a request, so 2 / 0.58 s = 3.448 requests/s is the
   server's true rate), then the marts' headline figure (steady state, by Little's law) and the whole span's, each
   against that rate (target: the steady state within 1%).

    python benchmarks/open_loop.py [--seconds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from client_overhead import quantile, start_server, target  # noqa: E402

from collector.clock import RunClock  # noqa: E402
from collector.landing import RunLanding  # noqa: E402
from collector.load_models import send_offsets_s  # noqa: E402
from collector.loadgen import Level, client_session, run_level  # noqa: E402
from collector.payloads import Prompt  # noqa: E402
from collector.schema import RequestRow  # noqa: E402

LADDER = (100, 200, 300, 500, 700, 1000, 1500, 2000, 3000)


async def _rate_level(base: str, rate: float, requests: int, landing: RunLanding) -> list[RequestRow]:
    rows: list[RequestRow] = []

    def land(row: RequestRow) -> None:
        rows.append(row)
        landing.append("requests", row)

    prompt = Prompt(0, "Say something about the sea in sixteen words.", None, 10)
    offsets = send_offsets_s(requests, rate, "poisson", 1.0, f"bench:{rate}")
    level = Level("bench", [prompt], 1024, requests, 0, target_rate_rps=rate, send_offsets_s=offsets)
    async with client_session(1024) as session:
        await run_level(session, target(base, landing.dir.name), level, RunClock(), land, asyncio.Event())
    return rows


def send_lags_ms(base: str, rate: float, seconds: float, work: Path) -> list[float]:
    landing = RunLanding(work, f"rate-{rate:g}-{time.monotonic_ns()}")
    landing.start()
    rows = asyncio.run(_rate_level(base, rate, max(300, int(rate * seconds)), landing))
    landing.close()
    bad = {r.error_message for r in rows if r.status != "success"}
    assert not bad, bad
    return [(r.start_offset_ns - r.intended_offset_ns) / 1e6 for r in rows if r.intended_offset_ns is not None]


def scheduler(seconds: float, work: Path) -> None:
    proc, base = start_server("--tokens", "16")
    try:
        send_lags_ms(base, 500, 1, work)  # warm the connections and the interpreter
        results = {}
        for rate in sorted({*LADDER, 100, 1000, 3000}):
            lags = send_lags_ms(base, rate, seconds, work)
            results[rate] = (quantile(lags, 0.5), quantile(lags, 0.99), max(lags), len(lags))
    finally:
        proc.terminate()
    for rate in (100, 1000, 3000):
        p50, p99, most, n = results[rate]
        print(
            f"1. send lag     {rate:>5,}/s: p50 {p50:.3f} ms, p99 {p99:.3f} ms, max {most:.2f} ms over {n:,} requests"
        )
    kept = [rate for rate in sorted(results) if results[rate][1] < 1.0]
    highest = max(kept) if kept else None
    under = "none of the ladder" if highest is None else f"{highest:,}/s"
    print(f"   highest rate of {', '.join(f'{r:,}' for r in LADDER)}/s with p99 under 1 ms: {under}")


def steady_state(work: Path) -> None:
    proc, base = start_server("--tokens", "20", "--ttft-ms", "200", "--itl-ms", "20", "--spin-us", "1500")
    true_rate = 2 / 0.58
    cfg = {
        "run_name": "steady-state-bench",
        "payloads": [{"name": "short", "synthetic": {"min_tokens": 20, "max_tokens": 60, "count": 10, "seed": 1}}],
        "experiments": [
            {
                "name": "sse",
                "model_id": "m",
                "endpoint": {
                    "type": "openai",
                    "base_url": f"{base}/v1",
                    "served_model_name": "m",
                    "health_path": "/../health",  # the bench server answers /health only
                },
                "price": {"usd_per_hour": 1.0},
                "concurrency_levels": [2],
                "requests_per_level": 20,
                "warmup_requests_per_level": 2,
                "payloads": ["short"],
                "inference_parameters": {"max_tokens": 20},
            }
        ],
        "report": {"latency_budget_s": 5, "cost_per_10k_txn_budget_usd": 100, "dataset_of_interest": "short"},
    }
    path = work / "steady.yml"
    path.write_text(yaml.safe_dump(cfg))
    try:
        run = subprocess.run(
            [sys.executable, "-m", "collector", "run", "--config", str(path), "--results-dir", str(work / "results")],
            cwd=REPO,
            capture_output=True,
            text=True,
        )
    finally:
        proc.terminate()
    assert run.returncode == 0, run.stderr[-2000:]
    con = duckdb.connect(str(work / "results" / "tokenbench.duckdb"), read_only=True)
    headline, span, window = con.execute(
        "select transactions_per_minute / 60, span_transactions_per_minute / 60, throughput_window "
        "from marts.fct_concurrency_metrics"
    ).fetchone()  # type: ignore[misc]
    latency = con.execute(
        "select avg(e2e_latency_s) from marts.fct_requests where not is_warmup and is_success"
    ).fetchone()[0]  # type: ignore[index]
    con.close()
    err, span_err = (headline / true_rate - 1) * 100, (span / true_rate - 1) * 100
    verdict = "PASS" if abs(err) <= 1 else "FAIL"
    print(f"2. steady state concurrency 2, 20 requests of {latency * 1000:.1f} ms (client-measured mean): "
          f"{window} {headline:.4f}/s ({err:+.2f}%), level span {span:.4f}/s ({span_err:+.2f}%) "
          f"vs the server's true {true_rate:.4f}/s   [target within 1%]  {verdict}")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="Length of each scheduler level.")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="tb-open-loop-"))
    t0 = time.perf_counter()
    scheduler(args.seconds, work)
    steady_state(work)
    load = os.getloadavg()[0]
    print(f"   ({time.perf_counter() - t0:.0f} s; 1-minute load average {load:.2f} on {os.cpu_count()} CPUs)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
