"""The collector's own cost and accuracy, measured through its real load path with raw rows landing.

Runs collector.loadgen.run_level (the code `collector run` uses) against benchmarks/sse_server.py in a
separate process on 127.0.0.1, landing every row through collector.landing.RunLanding, and prints:

1. throughput: streamed chat requests/s and client CPU ms per request (16 tokens, concurrency 64,
   zero-delay server);
2. accuracy: TTFT error, client-measured minus the server's configured 200 ms (20 tokens 20 ms apart,
   concurrency 8; the server spins for its first token so its own lateness is ~10 µs);
3. in flight: the time-weighted mean of the requests in flight at the server, from its first arrival to its
   last completion (TTFT 1 s, concurrency 512, 1,024 requests); the peak is printed too, but every client reaches
   512 of 512 at some instant: the mean is what separates them (ideal: about 500, the ramp-up and the last
   round's tail taking the rest).

Targets (2 cores, client and server sharing them): >= 2,000 requests/s, <= 0.5 ms CPU per request;
TTFT error <= 1.5 ms mean and <= 5 ms p99; a mean of >= 480 of 512 in flight.

    python benchmarks/client_overhead.py [--requests 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import aiohttp

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from collector.clock import RunClock  # noqa: E402
from collector.config import InferenceParameters  # noqa: E402
from collector.landing import RunLanding  # noqa: E402
from collector.loadgen import Level, Target, client_session, run_level, wire_request_id  # noqa: E402
from collector.payloads import Prompt  # noqa: E402
from collector.schema import RequestRow  # noqa: E402
from collector.tokens import DEFAULT_COUNTER  # noqa: E402


def start_server(*args: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "benchmarks" / "sse_server.py"), "--port", "0", *args],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    match = re.search(r"(http://\S+)", proc.stdout.readline())
    assert match, "server did not start"
    return proc, match.group(1).rstrip("/")


def server_get(base: str, path: str = "/stats") -> dict:
    with urllib.request.urlopen(base + path) as resp:
        return json.loads(resp.read())


def target(base: str, run_id: str) -> Target:
    return Target(
        run_id=run_id,
        experiment_name="bench",
        model_id="m",
        endpoint_type="openai",
        base_url=base + "/v1",
        api_style="chat",
        served_model_name="m",
        stream=True,
        headers={"Content-Type": "application/json"},
        instance_type=None,
        instance_count=1,
        params=InferenceParameters(max_tokens=16),
        timeout=aiohttp.ClientTimeout(total=60),
        counter=DEFAULT_COUNTER,
        prime_url=base + "/health",  # as `collector run` sets it: the endpoint's health route
    )


async def sweep(base: str, concurrency: int, requests: int, landing: RunLanding) -> tuple[list[RequestRow], float]:
    rows: list[RequestRow] = []

    def land(row: RequestRow) -> None:
        rows.append(row)
        landing.append("requests", row)

    prompt = Prompt(0, "Say something about the sea in sixteen words.", None, 10)
    level = Level("bench", [prompt], concurrency=concurrency, requests=requests, warmup=0)
    async with client_session(concurrency) as session:  # the session `collector run` uses
        t0 = time.perf_counter()
        await run_level(session, target(base, landing.dir.name), level, RunClock(), land, asyncio.Event())
        return rows, time.perf_counter() - t0


def measure(base: str, concurrency: int, requests: int, work: Path, name: str) -> tuple[list[RequestRow], float, float]:
    landing = RunLanding(work, name)
    landing.start()
    cpu0 = time.process_time()
    rows, wall = asyncio.run(sweep(base, concurrency, requests, landing))
    landing.close()
    cpu = time.process_time() - cpu0
    assert all(r.status == "success" for r in rows), {r.error_message for r in rows if r.status != "success"}
    assert landing.rows_written["requests"] == len(rows)
    return rows, wall, cpu


def quantile(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    pos = (len(xs) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000, help="Requests in the throughput scenario.")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="tb-overhead-"))

    proc, base = start_server("--tokens", "16")
    try:
        measure(base, 64, 2_000, work, "warmup")
        rows, wall, cpu = measure(base, 64, args.requests, work, "throughput")
    finally:
        proc.terminate()
    rps, cpu_ms = len(rows) / wall, cpu / len(rows) * 1e3
    verdict = "PASS" if rps >= 2000 and cpu_ms <= 0.5 else "FAIL"
    print(f"1. throughput   {len(rows)} requests in {wall:.2f} s: {rps:,.0f} requests/s, "
          f"{cpu_ms:.3f} ms client CPU/request   [target >= 2,000/s, <= 0.5 ms]  {verdict}")  # fmt: skip

    # No busy-wait in the server: with 8 requests in step, one spinning for its first token would delay the
    # others' arrival. Its timer fires up to ~1 ms late instead, so the error is shown against the configured
    # 200 ms (as the target is stated) and against the server's own record of when it sent the first token.
    proc, base = start_server("--tokens", "20", "--ttft-ms", "200", "--itl-ms", "20", "--trace")
    try:
        rows, _wall, _cpu = measure(base, 8, 160, work, "ttft")
        trace = server_get(base, "/stats/trace")
    finally:
        proc.terminate()
    vs_config = [r.first_content_ns / 1e6 - 200.0 for r in rows if r.first_content_ns is not None]
    # The server's trace is keyed by the X-Request-Id it was sent: the row's id in UUID form.
    waits = {r.request_id: trace.get(wire_request_id(r.request_id)) for r in rows}
    vs_server = [
        r.first_content_ns / 1e6 - (waits[r.request_id][1] - waits[r.request_id][0]) / 1e6
        for r in rows
        if r.first_content_ns is not None and waits[r.request_id] is not None
    ]
    for label, err in (("vs configured 200 ms", vs_config), ("vs server's actual wait", vs_server)):
        mean, p99 = sum(err) / len(err), quantile(err, 0.99)
        verdict = "PASS" if mean <= 1.5 and p99 <= 5 else "FAIL"
        print(f"2. TTFT error   {label}: mean {mean:+.2f} ms, p99 {p99:+.2f} ms over {len(err)} requests"
              f"   [target <= 1.5 ms mean, <= 5 ms p99]  {verdict}")  # fmt: skip

    proc, base = start_server("--tokens", "4", "--ttft-ms", "1000", "--itl-ms", "10")
    try:
        rows, _wall, _cpu = measure(base, 512, 1024, work, "inflight")
        stats = server_get(base)
    finally:
        proc.terminate()
    mean, most = stats["mean_in_flight"], stats["max_in_flight"]
    print(f"3. in flight    mean {mean} of 512 at the server (time-weighted; peak {most})"
          f"   [target mean >= 480]  {'PASS' if mean >= 480 else 'FAIL'}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
