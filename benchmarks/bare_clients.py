#!/usr/bin/env python3
"""Closed-loop benchmark of candidate HTTP clients for tokenbench's streaming load path.

Each *variant* (client library + way of reading the SSE stream) is run in its
own fresh worker process against ``benchmarks/sse_server.py`` running in a
separate process, so the CPU figures are the client's alone.

Scenarios (all closed loop: N workers, each sends its next request as soon as
the previous one finished; every SSE data line is JSON-decoded):

* ``throughput``: 16 tokens, no delays, concurrency 64 -> requests/s and
  client CPU ms per request (time.process_time of the worker process, over the
  measurement window only).
* ``ttft``: server TTFT 200 ms then 20 tokens 20 ms apart, concurrency 8 ->
  TTFT error = client-measured TTFT - 200 ms (mean / p99).  The server runs
  with ``--spin-us`` so its own first-token lateness is a few microseconds; it
  is reported alongside.
* ``inflight``: server TTFT 1 s, concurrency 512 -> max requests concurrently
  in flight at the server (server's /stats after a reset at window start).

Everything is bounded in time and stops by itself. The httpx variants need
``pip install httpx httpx-aiohttp`` (not project dependencies: the load path
uses aiohttp, as this benchmark decided).

Usage::

    python benchmarks/bare_clients.py                       # all variants, all scenarios
    python benchmarks/bare_clients.py --variants aiohttp-any,httpx-aiohttp-raw --scenarios throughput
    python benchmarks/bare_clients.py --list
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SERVER = HERE / "sse_server.py"
PATH = "/v1/chat/completions"
PAYLOAD = {
    "model": "bench-model",
    "stream": True,
    "stream_options": {"include_usage": True},
    "max_tokens": 16,
    "messages": [{"role": "user", "content": "Say hello to the benchmark. " * 4}],
}
BODY = json.dumps(PAYLOAD).encode()
HEADERS = {"Content-Type": "application/json", "Accept": "text/event-stream"}


@dataclass
class Scenario:
    name: str
    server_args: list[str]
    concurrency: int
    warmup_s: float
    measure_s: float
    tokens: int
    ttft_ms: float = 0.0


SCENARIOS = {
    "throughput": Scenario("throughput", ["--tokens", "16"], 64, 1.5, 6.0, 16),
    "ttft": Scenario("ttft", ["--tokens", "20", "--ttft-ms", "200", "--itl-ms", "20"], 8, 1.0, 12.0, 20, ttft_ms=200.0),
    "inflight": Scenario("inflight", ["--tokens", "16", "--ttft-ms", "1000"], 512, 2.5, 6.0, 16),
}


ITL_MS = {"ttft": 20.0}

# --------------------------------------------------------------------------
# SSE parsing helpers: each returns (n_content_tokens, first_content_ns)
# --------------------------------------------------------------------------
# JSONDecoder.decode(str) skips json.loads' per-call encoding sniffing of bytes
# (~2.6 us -> ~1.7 us per line); applied identically to every variant.
_decode = json.JSONDecoder().decode
_now = time.perf_counter_ns


def _handle_obj(obj: dict, state: list) -> None:
    choices = obj.get("choices")
    if choices:
        delta = choices[0].get("delta")
        if delta and delta.get("content"):
            if not state[1]:
                state[1] = _now()
            state[0] += 1


async def parse_str_lines(aiter) -> tuple[int, int]:
    """Iterate decoded text lines (httpx aiter_lines)."""
    state = [0, 0]
    async for line in aiter:
        if line.startswith("data: "):
            data = line[6:]
            if data == "[DONE]":
                continue  # keep reading to EOF so the connection is reusable
            _handle_obj(_decode(data), state)
    return state[0], state[1]


async def parse_bytes_lines(aiter) -> tuple[int, int]:
    """Iterate raw byte lines, e.g. aiohttp ``async for line in resp.content``."""
    state = [0, 0]
    async for line in aiter:
        if line.startswith(b"data: "):
            data = line[6:].rstrip()
            if data == b"[DONE]":
                continue
            _handle_obj(_decode(data.decode()), state)
    return state[0], state[1]


async def parse_chunks(aiter) -> tuple[int, int]:
    """Iterate arbitrary byte chunks; split lines ourselves (fastest path)."""
    state = [0, 0]
    buf = b""
    async for chunk in aiter:
        if buf:
            chunk = buf + chunk
        lines = chunk.split(b"\n")
        buf = lines.pop()  # incomplete tail (b"" when the chunk ended on \n)
        for line in lines:
            if line.startswith(b"data: "):
                data = line[6:]
                if data[:6] == b"[DONE]":
                    continue
                _handle_obj(_decode(data.decode()), state)
    return state[0], state[1]


async def parse_readuntil(content) -> tuple[int, int]:
    """aiohttp StreamReader.readuntil(b"\\n\\n"): one SSE event per await."""
    state = [0, 0]
    while True:
        event = await content.readuntil(b"\n\n")
        if not event:
            break
        if event.startswith(b"data: "):
            data = event[6:-2]
            if data == b"[DONE]":
                continue
            _handle_obj(_decode(data.decode()), state)
    return state[0], state[1]


# --------------------------------------------------------------------------
# Variants: make_client(url, concurrency) -> (client, one_request, aclose)
# one_request() -> (n_tokens, first_content_ns)
# --------------------------------------------------------------------------
@dataclass
class Variant:
    name: str
    desc: str
    make: Callable[[str, int], Awaitable[tuple[Any, Callable[[], Awaitable[tuple[int, int]]], Callable]]]
    scenarios: tuple[str, ...] = ("throughput", "ttft", "inflight")


def _httpx_limits(conc: int):
    import httpx

    return httpx.Limits(max_connections=conc, max_keepalive_connections=conc)


def _httpx_variant(transport_kind: str, reader: str, sized_limits: bool = True):
    async def make(url: str, conc: int):
        import httpx

        timeout = httpx.Timeout(60.0)
        limits = (
            _httpx_limits(conc) if sized_limits else httpx.Limits(max_connections=100, max_keepalive_connections=20)
        )
        if transport_kind == "default":
            client = httpx.AsyncClient(limits=limits, timeout=timeout)
        else:
            from httpx_aiohttp import AiohttpTransport

            # NB: with a custom transport httpx ignores its own `limits`; the
            # transport must get them (default is 100 connections).
            client = httpx.AsyncClient(transport=AiohttpTransport(limits=limits), timeout=timeout)
        target = url + PATH

        if reader == "lines":

            async def one(h=HEADERS):
                async with client.stream("POST", target, content=BODY, headers=h) as r:
                    if r.status_code != 200:
                        raise RuntimeError(f"HTTP {r.status_code}")
                    return await parse_str_lines(r.aiter_lines())

        else:

            async def one(h=HEADERS):
                async with client.stream("POST", target, content=BODY, headers=h) as r:
                    if r.status_code != 200:
                        raise RuntimeError(f"HTTP {r.status_code}")
                    return await parse_chunks(r.aiter_raw())

        return client, one, client.aclose

    return make


def _aiohttp_variant(reader: str, tuned: bool = True):
    async def make(url: str, conc: int):
        import aiohttp

        target = url + PATH
        if tuned:
            session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=conc),
                timeout=aiohttp.ClientTimeout(total=None, sock_read=60),
                auto_decompress=False,
                read_bufsize=2**16,
            )

            def post(h):
                return session.post(target, data=BODY, headers=h)
        else:
            session = aiohttp.ClientSession()  # default connector: limit=100

            def post(h):
                return session.post(target, json=PAYLOAD, headers=h, timeout=aiohttp.ClientTimeout(total=60))

        if reader == "lines":

            async def one(h=HEADERS):
                async with post(h) as r:
                    if r.status != 200:
                        raise RuntimeError(f"HTTP {r.status}")
                    return await parse_bytes_lines(r.content)

        elif reader == "any":

            async def one(h=HEADERS):
                async with post(h) as r:
                    if r.status != 200:
                        raise RuntimeError(f"HTTP {r.status}")
                    return await parse_chunks(r.content.iter_any())

        else:  # readuntil

            async def one(h=HEADERS):
                async with post(h) as r:
                    if r.status != 200:
                        raise RuntimeError(f"HTTP {r.status}")
                    return await parse_readuntil(r.content)

        return session, one, session.close

    return make


VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in [
        Variant(
            "httpx-lines",
            "httpx.AsyncClient default transport, limits=conc, aiter_lines()",
            _httpx_variant("default", "lines"),
        ),
        Variant(
            "httpx-deflimits",
            "httpx default transport, default Limits(100, keepalive 20), aiter_lines()",
            _httpx_variant("default", "lines", sized_limits=False),
            ("throughput", "inflight"),
        ),
        Variant(
            "httpx-raw", "httpx default transport, limits=conc, aiter_raw()+split", _httpx_variant("default", "raw")
        ),
        Variant(
            "httpx-aiohttp-lines",
            "httpx + httpx_aiohttp.AiohttpTransport(limits=conc), aiter_lines()",
            _httpx_variant("aiohttp", "lines"),
        ),
        Variant(
            "httpx-aiohttp-raw",
            "httpx + AiohttpTransport(limits=conc), aiter_raw()+split",
            _httpx_variant("aiohttp", "raw"),
        ),
        Variant(
            "httpx-aiohttp-deflimits",
            "httpx + AiohttpTransport() default limits (100), aiter_raw()+split",
            _httpx_variant("aiohttp", "raw", sized_limits=False),
            ("inflight",),
        ),
        Variant(
            "aiohttp-naive",
            "aiohttp default session (limit 100), json=, per-request ClientTimeout, line iter",
            _aiohttp_variant("lines", tuned=False),
        ),
        Variant("aiohttp-lines", "aiohttp tuned session, `async for line in resp.content`", _aiohttp_variant("lines")),
        Variant(
            "aiohttp-readuntil", "aiohttp tuned session, content.readuntil(b'\\n\\n')", _aiohttp_variant("readuntil")
        ),
        Variant("aiohttp-any", "aiohttp tuned session, content.iter_any()+split", _aiohttp_variant("any")),
    ]
}


# --------------------------------------------------------------------------
# Worker (runs in its own process)
# --------------------------------------------------------------------------
async def _server_call(host: str, port: int, method: str, path: str) -> dict:
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode())
    data = await reader.read()
    writer.close()
    return json.loads(data.split(b"\r\n\r\n", 1)[1])


async def run_worker(variant: str, scenario: str, url: str, stagger: bool = False) -> dict:
    sc = SCENARIOS[scenario]
    v = VARIANTS[variant]
    host, port = url.rsplit("//", 1)[1].split(":")
    port = int(port)
    loop = asyncio.get_running_loop()
    _client, one, aclose = await v.make(url, sc.concurrency)

    t_begin = loop.time()
    t_window = t_begin + sc.warmup_s
    t_stop = t_window + sc.measure_s
    window_start_ns = 0
    window_end_ns = 0
    records: list[tuple[int, int, int, int, str]] = []  # start_ns, first_ns, end_ns, tokens, request id
    errors: list[str] = []
    trace = bool(sc.ttft_ms) and sc.concurrency <= 64  # server runs with --trace: tag requests
    seq = iter(range(10**9))

    # With a deterministic server all closed-loop workers stay phase-locked:
    # they finish, and send their next request, in the same millisecond.
    # --stagger spreads their starts over one request period instead.
    period = (sc.ttft_ms + max(0, sc.tokens - 1) * ITL_MS.get(scenario, 0.0)) / 1e3

    async def worker(k: int) -> None:
        if stagger and period:
            await asyncio.sleep(k * period / sc.concurrency)
        while loop.time() < t_stop:
            rid = ""
            if trace:
                rid = str(next(seq))
                h = {**HEADERS, "X-Request-Id": rid}
            else:
                h = HEADERS
            t0 = _now()
            try:
                n, first = await one(h)
            except asyncio.CancelledError:
                raise
            except Exception as e:
                errors.append(f"{type(e).__name__}: {e}"[:200])
                await asyncio.sleep(0.01)
                continue
            records.append((t0, first, _now(), n, rid))

    tasks = [asyncio.ensure_future(worker(k)) for k in range(sc.concurrency)]

    # measurement window
    await asyncio.sleep(max(0.0, t_window - loop.time()))
    s0 = await _server_call(host, port, "POST", "/stats/reset")
    cpu0 = time.process_time()
    window_start_ns = _now()
    await asyncio.sleep(max(0.0, t_stop - loop.time()))
    window_end_ns = _now()
    cpu1 = time.process_time()
    s1 = await _server_call(host, port, "GET", "/stats")

    # drain: let in-flight requests finish, but bounded
    _done, pending = await asyncio.wait(tasks, timeout=sc.ttft_ms / 1e3 + 3.0)
    for t in pending:
        t.cancel()
    if pending:
        await asyncio.wait(pending, timeout=2.0)
    with contextlib.suppress(Exception):
        await asyncio.wait_for(aclose(), 5.0)
    srv_trace = await _server_call(host, port, "GET", "/stats/trace") if trace else {}

    in_window = [r for r in records if window_start_ns <= r[2] <= window_end_ns]
    win_s = (window_end_ns - window_start_ns) / 1e9
    n = len(in_window)
    bad_tokens = sum(1 for r in records if r[3] != sc.tokens)
    out: dict[str, Any] = {
        "variant": variant,
        "scenario": scenario,
        "concurrency": sc.concurrency,
        "stagger": stagger,
        "window_s": round(win_s, 3),
        "completed": n,
        "rps": round(n / win_s, 1) if win_s else 0.0,
        "cpu_ms_per_req": round((cpu1 - cpu0) * 1e3 / n, 3) if n else None,
        "client_cpu_util": round((cpu1 - cpu0) / win_s, 3) if win_s else None,
        "server_cpu_util": round((s1["cpu_s"] - s0["cpu_s"]) / win_s, 3) if win_s else None,
        "server_max_in_flight": s1["max_in_flight"],
        "server_new_connections": s1.get("connections"),
        "server_first_token_lateness_us": s1["first_token_lateness_us"],
        "loadavg_1m": round(os.getloadavg()[0], 2),
        "errors": len(errors),
        "error_sample": errors[:3],
        "bad_token_counts": bad_tokens,
    }
    if sc.ttft_ms:
        # only requests started inside the window (warm keep-alive connections)
        errs = sorted((r[1] - r[0]) / 1e6 - sc.ttft_ms for r in records if r[0] >= window_start_ns and r[1])
        if errs:
            k = len(errs)
            out.update(
                ttft_n=k,
                ttft_err_mean_ms=round(sum(errs) / k, 3),
                ttft_err_p50_ms=round(errs[k // 2], 3),
                ttft_err_p99_ms=round(errs[min(k - 1, int(k * 0.99))], 3),
                ttft_err_max_ms=round(errs[-1], 3),
                ttft_err_top5_ms=[round(x, 2) for x in errs[-5:]],
            )
        if srv_trace:
            # Decompose each request's error with the server's own timestamps
            # (perf_counter_ns is CLOCK_MONOTONIC, shared by both processes):
            #   send = client t0 -> server parsed the request
            #   late = server's first-token write - (arrival + ttft)
            #   recv = server's first-token write -> client decoded first content
            parts: dict[str, list[float]] = {"send": [], "late": [], "recv": []}
            for t0, first, _end, _n, rid in records:
                tr = srv_trace.get(rid)
                if t0 < window_start_ns or not first or not tr or not tr[1]:
                    continue
                parts["send"].append((tr[0] - t0) / 1e6)
                parts["late"].append((tr[1] - tr[0]) / 1e6 - sc.ttft_ms)
                parts["recv"].append((first - tr[1]) / 1e6)
            for k, xs in parts.items():
                if xs:
                    xs.sort()
                    out[f"{k}_mean_ms"] = round(sum(xs) / len(xs), 3)
                    out[f"{k}_p99_ms"] = round(xs[min(len(xs) - 1, int(len(xs) * 0.99))], 3)
    return out


# --------------------------------------------------------------------------
# Orchestrator
# --------------------------------------------------------------------------
NICE = 0  # set from --nice; applied to the server and worker processes


def _preexec() -> None:
    if NICE:
        os.nice(NICE)


class ServerProc:
    def __init__(self, args: list[str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(SERVER), "--port", "0", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            preexec_fn=_preexec,
        )
        line = self.proc.stdout.readline().strip()
        if not line.startswith("listening on "):
            self.proc.kill()
            raise RuntimeError(f"server failed to start: {line!r}")
        self.url = line.split("listening on ", 1)[1]

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


STAGGER = False  # set from --stagger


def run_variant(variant: str, scenario: str, url: str) -> dict:
    sc = SCENARIOS[scenario]
    limit = sc.warmup_s + sc.measure_s + sc.ttft_ms / 1e3 + 30
    try:
        cp = subprocess.run(
            [sys.executable, __file__, "--worker", variant, scenario, url, *(["stagger"] if STAGGER else [])],
            capture_output=True,
            text=True,
            timeout=limit,
            preexec_fn=_preexec,
        )
    except subprocess.TimeoutExpired:
        return {"variant": variant, "scenario": scenario, "failed": "timeout"}
    if cp.returncode != 0:
        return {"variant": variant, "scenario": scenario, "failed": cp.stderr.strip()[-500:]}
    return json.loads(cp.stdout.strip().splitlines()[-1])


def fmt(v: Any, spec: str = "") -> str:
    if v is None:
        return "-"
    return format(v, spec) if spec else str(v)


def print_table(results: list[dict]) -> None:
    by: dict[str, dict[str, dict]] = {}
    for r in results:
        by.setdefault(r["variant"], {})[r["scenario"]] = r
    hdr = (
        f"{'variant':26} {'req/s':>8} {'cpu ms/req':>10} {'srv cpu':>7} "
        f"{'ttft err mean':>13} {'p99':>7} {'n':>4} {'srv late us':>11} {'in flight':>9} {'errs':>5}"
    )
    print(hdr)
    print("-" * len(hdr))
    for name, d in by.items():
        t, f, i = d.get("throughput", {}), d.get("ttft", {}), d.get("inflight", {})
        errs = sum(x.get("errors", 0) + x.get("bad_token_counts", 0) for x in (t, f, i))
        late = (f.get("server_first_token_lateness_us") or {}).get("mean")
        print(
            f"{name:26} {fmt(t.get('rps'), '.0f'):>8} {fmt(t.get('cpu_ms_per_req'), '.3f'):>10} "
            f"{fmt(t.get('server_cpu_util'), '.2f'):>7} "
            f"{fmt(f.get('ttft_err_mean_ms'), '.3f'):>13} {fmt(f.get('ttft_err_p99_ms'), '.3f'):>7} "
            f"{fmt(f.get('ttft_n')):>4} {fmt(late):>11} "
            f"{fmt(i.get('server_max_in_flight')):>9} {errs:>5}"
        )
        for x in (t, f, i):
            if x.get("failed"):
                print(f"   !! {x['scenario']} failed: {x['failed'][:300]}")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--scenarios", default=",".join(SCENARIOS))
    p.add_argument(
        "--spin-us",
        type=float,
        default=1500.0,
        help="server busy-wait before each deadline in the ttft scenario (0 = plain asyncio timers)",
    )
    p.add_argument(
        "--repeat", type=int, default=1, help="repeat each (variant, scenario), interleaved, and keep the median run"
    )
    p.add_argument(
        "--nice",
        type=int,
        default=0,
        help="niceness increment for server and workers (negative needs root; reduces noise "
        "from other processes on a shared machine)",
    )
    p.add_argument("--json", type=Path, help="also write raw results here")
    p.add_argument("--list", action="store_true")
    p.add_argument(
        "--stagger",
        action="store_true",
        help="spread worker start times over one request period (ttft scenario); by default "
        "closed-loop workers are phase-locked and send their requests in the same ms",
    )
    p.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.worker:
        v, sname, url, *rest = args.worker
        res = asyncio.run(run_worker(v, sname, url, stagger="stagger" in rest))
        print(json.dumps(res))
        return
    if args.list:
        for v in VARIANTS.values():
            print(f"{v.name:26} {v.desc}  [{','.join(v.scenarios)}]")
        return

    global NICE, STAGGER
    NICE = args.nice
    STAGGER = args.stagger
    variants = [v for v in args.variants.split(",") if v]
    scenarios = [s for s in args.scenarios.split(",") if s]
    results: list[dict] = []
    print(f"python {sys.version.split()[0]}, cpus={os.cpu_count()}, loadavg={os.getloadavg()[0]:.2f}", flush=True)
    for sname in scenarios:
        sc = SCENARIOS[sname]
        sargs = list(sc.server_args)
        if sname == "ttft":
            sargs += ["--trace"]
            if args.spin_us:
                sargs += ["--spin-us", str(args.spin_us)]
        server = ServerProc(sargs)
        key = {"throughput": "cpu_ms_per_req", "ttft": "ttft_err_mean_ms", "inflight": "server_max_in_flight"}[sname]
        names = [v for v in variants if sname in VARIANTS[v].scenarios]
        runs: dict[str, list[dict]] = {v: [] for v in names}
        try:
            # interleave repetitions so that background noise spreads over all variants
            for rep in range(args.repeat):
                for vname in names:
                    r = run_variant(vname, sname, server.url)
                    runs[vname].append(r)
                    brief = {
                        k: r.get(k)
                        for k in (
                            "loadavg_1m",
                            "rps",
                            "cpu_ms_per_req",
                            "server_cpu_util",
                            "ttft_err_mean_ms",
                            "ttft_err_p99_ms",
                            "ttft_err_top5_ms",
                            "send_mean_ms",
                            "late_mean_ms",
                            "recv_mean_ms",
                            "send_p99_ms",
                            "late_p99_ms",
                            "recv_p99_ms",
                            "server_max_in_flight",
                            "server_new_connections",
                            "errors",
                            "failed",
                        )
                    }
                    print(f"  [{rep}] {sname:10} {vname:26} {brief}", flush=True)
        finally:
            server.close()
        for vname in names:
            ok = [r for r in runs[vname] if "failed" not in r]
            if ok:  # keep the median run by the scenario's key metric
                ok.sort(key=lambda r: (r.get(key) is None, r.get(key) or 0))
                results.append(ok[len(ok) // 2])
            else:
                results.append(runs[vname][-1])
    print()
    print_table(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
