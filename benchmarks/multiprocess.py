"""Load generation across client processes (experiments[].client_processes), measured through the real code.

1. Scaling: one closed-loop level (streamed chat, 16 tokens, concurrency 64 split across the processes) against
   benchmarks/sse_server.py (zero delay) in a separate process on 127.0.0.1, sent by collector.shards.ClientPool
   with 1, 2 and 4 client processes, every row landing in the processes' own files as in `collector run`. Per
   count: requests/s over the measured requests' span (as the marts compute it), client CPU per request (the
   client processes' and the coordinating process's CPU during the level, over the requests), the start skew
   (the spread of the processes' first measured sends), and whether the rows are complete (one row per request
   sent, every request_id unique, every process contributing).
2. Landing route: the CPU per row of two ways to land rows from N processes: each process writing its own JSONL
   file (collector.landing.RunLanding, what the collector does), or each process sending its rows as JSON lines
   through a pipe to one parent that writes them (the alternative).

Both compete with everything else on the machine: note `uptime` beside the figures.

    python benchmarks/multiprocess.py [--requests 20000] [--processes 1 2 4] [--repeats 3]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from client_overhead import start_server, target  # noqa: E402

from collector.clock import RunClock  # noqa: E402
from collector.landing import LocalStore, RunLanding, _dumps, select_json  # noqa: E402
from collector.loadgen import Level  # noqa: E402
from collector.payloads import Prompt  # noqa: E402
from collector.schema import RequestRow  # noqa: E402
from collector.shards import ClientPool, session_size  # noqa: E402

CONCURRENCY = 64
PROMPT = Prompt(0, "Say something about the sea in sixteen words.", None, 10)


async def _level(base: str, processes: int, requests: int, work: Path, run_id: str) -> dict[str, float]:
    (work / "raw" / run_id).mkdir(parents=True)
    clock = RunClock()
    level = Level("bench", [PROMPT], concurrency=CONCURRENCY, requests=requests, warmup=processes * 8)
    pool = ClientPool(
        LocalStore(work),
        run_id,
        target(base, run_id),
        {"bench": [PROMPT]},
        clock,
        processes,
        0,
        processes,
        "",
        session_size([CONCURRENCY], processes),
    )
    async with pool:
        procs = [psutil.Process(e.pid) for e in pool.procs if e.pid]
        cpu0 = sum(sum(p.cpu_times()[:2]) for p in procs) + time.process_time()

        async def now() -> int:
            return time.perf_counter_ns() + 20_000_000

        progress = await pool.run_level(level, asyncio.Event(), None, now, now)
        cpu = sum(sum(p.cpu_times()[:2]) for p in procs) + time.process_time() - cpu0
        offsets = [r["clock_offset_ns"] for r in pool.records()]
        bounds = [r["clock_offset_bound_ns"] for r in pool.records()]
    files = sorted(str(p) for p in (work / "raw" / run_id).glob("requests*.jsonl"))
    con = duckdb.connect()
    select_json(con, "requests", files).to_table("landed")
    sent = level.requests + level.warmup
    count, unique, shards, first, last, errors = con.execute(
        "select count(*), count(distinct request_id), count(distinct shard_index), "
        "min(start_offset_ns) filter (not is_warmup), max(start_offset_ns + e2e_ns) filter (not is_warmup), "
        "count(*) filter (status <> 'success') from landed"
    ).fetchall()[0]
    skew = con.execute(
        "select max(f) - min(f) from (select min(start_offset_ns) f from landed where not is_warmup "
        "group by shard_index)"
    ).fetchall()[0][0]
    con.close()
    return {
        "rps": level.requests / ((last - first) / 1e9),
        "cpu_ms": cpu / sent * 1e3,
        "skew_ms": skew / 1e6,
        "complete": float(count == sent == unique == progress.done and shards == processes and errors == 0),
        "rows": count,
        "clock_offset_max_ns": max(abs(o) for o in offsets),
        "clock_bound_max_ns": max(bounds),
    }


def scaling(requests: int, counts: list[int], repeats: int) -> None:
    work = Path(tempfile.mkdtemp(prefix="tb-multiprocess-"))
    proc, base = start_server("--tokens", "16")
    try:
        asyncio.run(_level(base, 1, 2_000, work, "warmup"))
        results: dict[int, list[dict[str, float]]] = {n: [] for n in counts}
        for r in range(repeats):
            for n in counts:
                results[n].append(asyncio.run(_level(base, n, requests, work, f"p{n}-{r}")))
    finally:
        proc.terminate()
    print(f"1. scaling ({requests} requests, c={CONCURRENCY}, zero-delay server; load {os.getloadavg()[0]:.1f})")
    for n in counts:
        rs = results[n]
        rps = [x["rps"] for x in rs]
        cpu = [x["cpu_ms"] for x in rs]
        print(
            f"   {n} process{'es' if n > 1 else '  '}: {statistics.median(rps):,.0f} requests/s "
            f"({min(rps):,.0f}-{max(rps):,.0f}), {statistics.median(cpu):.3f} ms CPU/request "
            f"({min(cpu):.3f}-{max(cpu):.3f}), start skew {max(x['skew_ms'] for x in rs):.2f} ms max, "
            f"rows complete in {sum(int(x['complete']) for x in rs)}/{len(rs)} runs, clock offset "
            f"{max(x['clock_offset_max_ns'] for x in rs):.0f} ns (bound {max(x['clock_bound_max_ns'] for x in rs):.0f})"
        )


def _row(k: int, i: int) -> RequestRow:
    return RequestRow(
        run_id="bench",
        request_id=f"bench:{k}.{i}",
        experiment_name="bench",
        model_id="m",
        endpoint_type="openai",
        endpoint_url="http://127.0.0.1:1/v1/chat/completions",
        api_style="chat",
        is_streaming=True,
        instance_type=None,
        instance_count=1,
        payload_file="bench",
        prompt_index=0,
        concurrency=64,
        worker_index=k,
        sequence_in_level=i,
        is_warmup=False,
        max_tokens=16,
        started_at="2026-12-03T00:00:00+00:00",
        start_offset_ns=i * 1000,
        e2e_ns=1_000_000,
        first_chunk_ns=400_000,
        first_content_ns=400_000,
        last_content_ns=900_000,
        chunk_count=18,
        content_chunk_count=16,
        status="success",
        http_status=200,
        error_type=None,
        error_message=None,
        finish_reason="stop",
        prompt_tokens=10,
        completion_tokens=16,
        token_count_source="server",
        client_prompt_tokens=10,
        client_completion_tokens=16,
        token_counter="simple-regex",
        data_issue=None,
        content_chunk_offsets_ns=list(range(400_000, 900_001, 33_333)),
    )


def _to_file(conn: multiprocessing.connection.Connection, work: str, k: int, rows: int) -> None:
    landing = RunLanding(Path(work), "files", f"w{k}", join=True, manifest=None)
    landing.start()
    cpu0 = time.process_time()  # the process's own CPU, its flusher thread's included
    for i in range(rows):
        landing.append("requests", _row(k, i))
    landing.close()
    conn.send(time.process_time() - cpu0)


def _to_pipe(conn: multiprocessing.connection.Connection, k: int, rows: int) -> None:
    cpu0 = time.process_time()
    batch: list[str] = []
    for i in range(rows):
        batch.append(_dumps(_row(k, i).__dict__) + "\n")
        if len(batch) == 100:
            conn.send(batch)
            batch = []
    conn.send(batch)
    conn.send(time.process_time() - cpu0)


def landing_route(rows: int, processes: int) -> None:
    """CPU per row of each route, counted from the first row to the last one written (start-up excluded)."""
    ctx = multiprocessing.get_context("spawn")
    work = tempfile.mkdtemp(prefix="tb-route-")
    (Path(work) / "raw" / "files").mkdir(parents=True)
    pipes = [ctx.Pipe(duplex=False) for _ in range(processes)]
    procs = [ctx.Process(target=_to_file, args=(w, work, k, rows)) for k, (_, w) in enumerate(pipes)]
    for p in procs:
        p.start()
    files_cpu = sum(r.recv() for r, _ in pipes)
    for p in procs:
        p.join()

    landing = RunLanding(Path(work), "pipe", "", manifest=None)
    landing.start()
    pipes = [ctx.Pipe(duplex=False) for _ in range(processes)]
    procs = [ctx.Process(target=_to_pipe, args=(w, k, rows)) for k, (_, w) in enumerate(pipes)]
    for p in procs:
        p.start()
    open_conns = [r for r, _ in pipes]
    children_cpu = 0.0
    parent_cpu = None
    while open_conns:
        for conn in multiprocessing.connection.wait(open_conns):
            message = conn.recv()  # type: ignore[union-attr]
            if parent_cpu is None:
                parent_cpu = time.process_time()  # from the first row received
            if isinstance(message, float):
                children_cpu += message
                open_conns.remove(conn)
            else:
                for line in message:
                    landing.append_line("requests", line)
    landing.close()
    parent = time.process_time() - (parent_cpu or 0.0)
    for p in procs:
        p.join()
    total = rows * processes
    pipe_cpu = children_cpu + parent
    print(f"2. landing route ({processes} processes x {rows:,} rows)")
    print(f"   own JSONL file per process: {files_cpu / total * 1e6:.1f} us CPU/row, none in the parent")
    print(f"   rows piped to one parent:   {pipe_cpu / total * 1e6:.1f} us CPU/row, of which the parent "
          f"{parent / total * 1e6:.1f} us/row on its one core")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000, help="Measured requests per level.")
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2, 4], help="Client process counts.")
    parser.add_argument("--repeats", type=int, default=3, help="Levels per process count (interleaved).")
    parser.add_argument("--route-rows", type=int, default=50_000, help="Rows per process in the route test.")
    args = parser.parse_args()
    print(f"uptime: {Path('/proc/loadavg').read_text().strip()}  (cores: {os.cpu_count()})")
    scaling(args.requests, args.processes, args.repeats)
    landing_route(args.route_rows, 2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
