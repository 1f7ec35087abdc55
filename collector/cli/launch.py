"""`collector launch`: run each experiment on an EC2 GPU instance of its type, land the runs here, build the marts."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from collector.cli import options


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "launch",
        help="Run a config on EC2 instances it starts (boto3), then land and build the runs here.",
        description="Start one EC2 instance per experiment (in parallel), run the sweep there, download each "
        "run's raw folder into the results, terminate every instance whatever happens, print its time and cost, "
        "then build the marts. Needs the config's launch: section and AWS credentials (pip install 'tokenbench[aws]').",
    )
    p.add_argument("--config", type=Path, required=True, help="Experiment config (YAML) with a launch: section.")
    options.add_location_options(p, warehouse=False)
    p.add_argument("--no-build", action="store_true", help="Only download the raw rows; skip the dbt build.")


def run(args: argparse.Namespace) -> int:
    from collector.launch.orchestrate import launch_all

    results_dir = options.results_dir(args)
    config, outcomes = launch_all(args.config, results_dir)
    run_ids = [o.run_id for o in outcomes if o.run_id]
    total = sum(o.usd or 0 for o in outcomes)
    print(f"instances: {len(outcomes)}, about ${total:.2f} in all", file=sys.stderr)
    if run_ids and not args.no_build:
        from collector import dbt_runner, warehouse
        from collector.outputs import summary

        print("building the marts (dbt build) ...", file=sys.stderr)
        path = warehouse.refresh(results_dir)
        dbt_runner.build(path, pricing_dir=config.pricing_dir)
        for run_id in run_ids:
            print(summary.summary_text(path, run_id))
    for run_id in run_ids:
        print(f"raw rows: {results_dir / 'raw' / run_id}")
    failed = [o for o in outcomes if o.error]
    for o in failed:
        print(f"error: {o.failure_line()}", file=sys.stderr)
    return 1 if failed else 0
