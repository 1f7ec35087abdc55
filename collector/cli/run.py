"""`collector run`: sweep the experiments of a config, land raw rows, build the marts, print the summary."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from collector.cli import options
from collector.host_shards import parse_shard
from collector.runner import collect

DEFAULT_CONFIG = Path("configs/default.yml")
PACKAGED_DEFAULT_CONFIG = Path(__file__).resolve().parents[2] / DEFAULT_CONFIG


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run",
        help="Run a benchmark sweep.",
        description="Sweep every experiment of a config over its payload buckets and concurrency levels, "
        "land one raw row per request, then build the marts with dbt and print the summary.",
    )
    p.add_argument(
        "--config",
        type=Path,
        default=DEFAULT_CONFIG,
        help=f"Experiment config (YAML). Default: {DEFAULT_CONFIG}, the embedded simulated endpoint.",
    )
    options.add_location_options(p, warehouse=False, s3=True)
    p.add_argument(
        "--no-build",
        action="store_true",
        help="Only collect raw rows; skip the dbt build, the summary and the report.",
    )
    p.add_argument(
        "--run-id",
        default=None,
        help="Name the run (a new folder under raw/) instead of a generated id; with --shard, the run every shard "
        "lands into.",
    )
    p.add_argument(
        "--shard",
        default=None,
        metavar="I/N",
        help="Send shard I of N of every level (one collector per host, all given the same --run-id and config and "
        "one shared --results-dir); every level starts when all N have reached it, and shard 1 builds the marts.",
    )


def run(args: argparse.Namespace) -> int:
    results_dir = options.results_dir(args)
    raw = options.raw(args)
    config = args.config
    if config == DEFAULT_CONFIG and not config.exists():  # outside the repo: the embedded default still works
        config = PACKAGED_DEFAULT_CONFIG
    shard = parse_shard(args.shard) if args.shard is not None else None
    outcome = collect(config, results_dir, raw, run_id=args.run_id, shard=shard)
    failed = outcome.status == "failed"
    print(
        f"run {outcome.run_id} {outcome.status}: {outcome.requests} requests, {outcome.errors} errors"
        + (f" ({outcome.error})" if outcome.error and not failed else ""),
        file=sys.stderr,
    )
    # Shard 1 builds once every shard is done (it waits for them); the others would build a run still landing.
    build = not args.no_build and outcome.requests > 0 and not outcome.landing_failed
    if shard is not None and not shard.is_leader:
        build = False
        print(f"shard {shard.label} done; shard 1/{shard.count} builds the marts", file=sys.stderr)
    if build:
        from collector import dbt_runner
        from collector.outputs import summary

        print("building the marts (dbt build) ...", file=sys.stderr)
        dbt_runner.build(outcome.warehouse, pricing_dir=outcome.pricing_dir)
        print(summary.summary_text(outcome.warehouse, outcome.run_id))
        from collector.outputs.report import write_report

        report_md = write_report(outcome.warehouse, outcome.run_id, None, results_dir=results_dir)
        print(f"report: {report_md} (and report.html beside it)")
    print(f"raw rows: {raw.run_location(outcome.run_id)}")
    print(f"warehouse: {outcome.warehouse} (raw.runs, raw.requests, raw.telemetry_samples; marts.*)")
    if build:
        print(f"explore: python -m collector app --warehouse {outcome.warehouse}")
    if failed and outcome.error:
        print(f"error: {outcome.error}", file=sys.stderr)
    return outcome.exit_code
