#!/usr/bin/env python3
"""How long each page of the Streamlit app takes to render on a warehouse of 10^6 request rows.

A synthetic run of N requests is written as raw Parquet in the collector's layout (the generator of
benchmarks/dbt_build_scale.py), the marts are built with the real `dbt build` (in a child process), then each
page is rendered with streamlit's AppTest (the real script run, no browser): the first load with an empty
st.cache_data, then warm reruns. Also timed: each SQL function of collector.outputs.queries on its own.
Target: under 1 s per page after the first load.

Usage::

    python benchmarks/app_render.py                       # 10^6 requests in a temporary folder
    python benchmarks/app_render.py --rows 100000 --keep /tmp/app-bench   # keep (and reuse) the warehouse
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from dbt_build_scale import RUN_ID, write_run  # noqa: E402

from collector.warehouse import refresh, warehouse_path  # noqa: E402

APP = REPO / "streamlit_app" / "app.py"
PAGES = ["summary", "sweep", "requests", "telemetry", "compare"]
BUILD = "import sys; from pathlib import Path; from collector import dbt_runner; dbt_runner.build(Path(sys.argv[1]))"


def prepare(rows: int, work: Path) -> Path:
    """The warehouse with N requests and built marts (reused when `work` already holds one)."""
    results = work / f"n{rows}"
    warehouse = warehouse_path(results)
    if warehouse.exists():
        print(f"reusing {warehouse}")
        return warehouse
    started = time.perf_counter()
    write_run(results, rows)
    refresh(results, warehouse)
    print(f"generated {rows:,} raw request rows in {time.perf_counter() - started:.1f} s", flush=True)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", BUILD, str(warehouse)], cwd=REPO, check=True)
    print(f"dbt build in {time.perf_counter() - started:.1f} s", flush=True)
    return warehouse


def time_queries(warehouse: Path) -> None:
    from collector.outputs import queries

    every = queries.RequestFilter()
    calls = {
        "runs": lambda: queries.runs(warehouse),
        "level_metrics": lambda: queries.level_metrics(warehouse, [RUN_ID]),
        "recommendations": lambda: queries.recommendations(warehouse, [RUN_ID]),
        "failed_experiments": lambda: queries.failed_experiments(warehouse, RUN_ID),
        "telemetry_bands": lambda: queries.telemetry_bands(warehouse, RUN_ID),
        "preview_recommendations": lambda: queries.preview_recommendations(warehouse, RUN_ID, 3.0, 20.0, 0.05),
        "request_options": lambda: queries.request_options(warehouse, RUN_ID),
        "request_rows (500)": lambda: queries.request_rows(warehouse, RUN_ID, every, 500),
        "request_histograms": lambda: queries.request_histograms(warehouse, RUN_ID, every),
        "request_sample (4000)": lambda: queries.request_sample(warehouse, RUN_ID, every),
        "request_errors": lambda: queries.request_errors(warehouse, RUN_ID, every),
    }
    print(f"\n{'query (collector.outputs.queries)':<28} | {'s':>6} | rows")
    for name, call in calls.items():
        started = time.perf_counter()
        frame = call()
        print(f"{name:<28} | {time.perf_counter() - started:>6.3f} | {len(frame)}")


def time_pages(warehouse: Path, repeats: int) -> list[tuple[str, float, float, float]]:
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    os.environ["TOKENBENCH_WAREHOUSE"] = str(warehouse)

    def render(at: AppTest) -> float:
        started = time.perf_counter()
        at.run(timeout=120)
        elapsed = time.perf_counter() - started
        if at.exception:
            raise SystemExit(f"page failed: {at.exception[0].value}")
        return elapsed

    # One untimed pass so that imports (altair, pandas, the page modules) are not billed to the first page.
    for page in PAGES:
        render(AppTest.from_file(str(APP)).switch_page(f"views/{page}.py"))
    figures = []
    for page in PAGES:
        st.cache_data.clear()
        at = AppTest.from_file(str(APP)).switch_page(f"views/{page}.py")
        first = render(at)
        warm = [render(at) for _ in range(repeats)]
        figures.append((page, first, statistics.median(warm), max(warm)))
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="Request rows in the synthetic run.")
    parser.add_argument("--keep", type=Path, default=None, help="Keep (and reuse) the generated warehouse here.")
    parser.add_argument("--repeats", type=int, default=5, help="Warm reruns per page.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="app-render-") as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        warehouse = prepare(args.rows, work)
        time_queries(warehouse)
        figures = time_pages(warehouse, args.repeats)
    print(f"\n{'page':<10} | {'first load s':>12} | {'warm median s':>13} | {'warm max s':>10} | target warm < 1 s")
    for page, first, median, worst in figures:
        verdict = "ok" if worst < 1.0 else "SLOW"
        print(f"{page:<10} | {first:>12.3f} | {median:>13.3f} | {worst:>10.3f} | {verdict}")
    return 0 if all(worst < 1.0 for *_, worst in figures) else 1


if __name__ == "__main__":
    raise SystemExit(main())
