"""`collector build`: re-derive every mart from the raw rows (after a budget or price change), no new run."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from collector import dbt_runner
from collector.cli import options
from collector.errors import UserError
from collector.landing import raw_root
from collector.landing_s3 import S3Store
from collector.warehouse import connect, export_run_settings, refresh, upsert_run_settings, writing


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "build",
        help="Rebuild the marts from the raw rows (after a budget or price change).",
        description="Point the warehouse's raw views at every landed run, record the budgets of the given "
        "configs, and run `dbt build` (models, unit tests, data tests). Past runs are re-judged with the "
        "budgets their run_name's config gives now and re-priced with pricing/ as it is now, unless "
        "--price-source recorded.",
    )
    options.add_location_options(p, s3=True)
    p.add_argument(
        "--config",
        type=Path,
        action="append",
        default=[],
        metavar="PATH",
        help="Config whose report budgets and dataset_of_interest replace those stored for its run_name (repeatable).",
    )
    p.add_argument(
        "--price-source",
        choices=["current", "recorded"],
        default="current",
        help="current: prices from the pricing folder now (default); recorded: the prices each run's "
        "manifest recorded when it ran.",
    )
    p.add_argument(
        "--target",
        default=None,
        metavar="NAME",
        help="models_dbt/profiles.yml target to build: local (DuckDB, the default) or spark (dbt-spark on a local "
        "pyspark over the Parquet landing zone; needs the [spark] extra and Java 17+).",
    )
    p.add_argument(
        "--pricing-dir",
        type=Path,
        default=None,
        help="Folder with instance_prices.csv and token_prices.csv. Default: the pricing_dir of the given "
        "configs when they agree, else $TOKENBENCH_PRICING_DIR, else the repo's pricing/.",
    )


def _pricing_dir(args: argparse.Namespace, config_dirs: set[Path]) -> Path | None:
    if args.pricing_dir is not None:
        return Path(args.pricing_dir)
    if len(config_dirs) == 1:
        return next(iter(config_dirs))
    return None  # dbt_runner's default


def run(args: argparse.Namespace) -> int:
    results_dir = options.results_dir(args)
    raw = options.raw(args)
    warehouse = options.warehouse(args)
    if not raw.has_runs():
        raise UserError(f"{raw.location}: no landed runs (run `python -m collector run` first)")
    configs = []
    for path in args.config:
        from collector.config import load_config  # pydantic models load only when a config is given

        configs.append((path, load_config(path)))  # every config is checked before anything is written
    config_dirs = {Path(cfg.pricing_dir).resolve() for _path, cfg in configs}
    # One write: views, budgets and the build land together, or not at all.
    with writing(warehouse):
        refresh(results_dir, warehouse, raw)
        for path, cfg in configs:
            upsert_run_settings(
                warehouse,
                cfg.run_name,
                cfg.report.latency_budget_s,
                cfg.report.cost_per_10k_txn_budget_usd,
                cfg.report.error_rate_budget,
                cfg.report.dataset_of_interest,
                str(path),
                slo=cfg.report.slo_settings(),
            )
        if args.target in (None, dbt_runner.DUCKDB_TARGET):
            result = dbt_runner.build(
                warehouse,
                pricing_dir=_pricing_dir(args, config_dirs),
                vars={"price_source": args.price_source},
            )
        else:
            export_run_settings(warehouse, results_dir)  # the budgets, where the engine's sources read them
    if args.target not in (None, dbt_runner.DUCKDB_TARGET):
        raw_dir = raw_root(results_dir)
        if isinstance(raw, S3Store):  # local Spark has no S3 connector: it reads a mirror of the Parquet
            raw_dir = raw.mirror(dbt_runner.spark_dir(results_dir.resolve()) / "landing")
            print(f"mirrored the compacted runs of {raw.location} into {raw_dir}", file=sys.stderr)
        result = dbt_runner.build(
            warehouse,
            pricing_dir=_pricing_dir(args, config_dirs),
            vars={"price_source": args.price_source},
            target=args.target,
            results_dir=results_dir,
            raw_dir=raw_dir,
        )
        print(
            f"built target {args.target} from {raw.location}: {result.nodes} dbt nodes passed in "
            f"{result.elapsed_s:.1f} s (Spark warehouse {dbt_runner.spark_dir(results_dir.resolve())}), "
            f"prices {args.price_source} from {result.pricing_dir}",
            file=sys.stdout,
        )
        return 0
    with connect(warehouse, read_only=True) as con:
        row = con.execute(
            "select count(*), count(*) filter (where budget_source = 'run_settings') from marts.dim_runs"
        ).fetchone()
    runs, from_settings = row if row else (0, 0)
    print(
        f"built {warehouse}: {runs} run(s) ({from_settings} with config budgets), {result.nodes} dbt nodes passed "
        f"in {result.elapsed_s:.1f} s, prices {args.price_source} from {result.pricing_dir}",
        file=sys.stdout,
    )
    return 0
