"""`collector import`: land another tool's per-request results (vLLM, GuideLLM, AIPerf, FMBench) as a run of its own,
priced and judged like ours, then build the marts."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from collector.cli import options
from collector.config_base import NAME_RE, NAME_RULE
from collector.errors import ConfigError, UserError

DEFAULT_CONFIG = Path("configs/default.yml")
PACKAGED_DEFAULT_CONFIG = Path(__file__).resolve().parents[2] / DEFAULT_CONFIG
TOOLS = ("vllm", "guidellm", "aiperf", "fmbench")
BUDGETS = ("latency_budget_s", "cost_per_10k_txn_budget_usd", "error_rate_budget", "dataset_of_interest")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "import",
        help="Import another tool's per-request results as a run.",
        description="Read a per-request result file of vLLM (`vllm bench serve --save-result --save-detailed` "
        "JSON), GuideLLM (its benchmarks report JSON), AIPerf (profile_export.jsonl) or FMBench "
        "(per_inference_request_results.csv), land one raw row per request as a new run (what the tool did not "
        "record stays null), then build the marts so it can be compared with tokenbench's own runs.",
    )
    p.add_argument("tool", choices=TOOLS, help="The tool that wrote the file.")
    p.add_argument("file", type=Path, help="The tool's per-request result file.")
    p.add_argument(
        "--experiment-name",
        help="Experiment the rows are filed under. Default: the tool's name (FMBench: each row's experiment_name).",
    )
    p.add_argument("--model-id", help="Model id (the token-price key). Default: the model the file names.")
    p.add_argument(
        "--payload-file",
        help="Payload bucket the rows are filed under; name one of your own runs' buckets to compare them on the "
        "Compare page. Default: imported (FMBench: each row's payload_file).",
    )
    p.add_argument(
        "--concurrency",
        type=int,
        help="AIPerf only: the concurrency it ran at, when no profile_export_aiperf.json beside the file says.",
    )
    p.add_argument("--run-name", help="Run name. Default: <tool>-import.")
    price = p.add_argument_group("prices (as an experiment's instance_type, instance_count, price and unpriced)")
    price.add_argument(
        "--instance-type",
        help="Instance type that served the model (the hourly-price key in "
        "pricing/). Default: FMBench's instance_type column; none for the other tools (priced then "
        "by --model-id's token price).",
    )
    price.add_argument(
        "--instance-count",
        type=int,
        help="Instances behind the endpoint. Default: 1 (FMBench: its instance_count column).",
    )
    price.add_argument("--usd-per-hour", type=float, help="An hourly price of one instance instead of pricing/.")
    price.add_argument("--unpriced", action="store_true", help="Import without any price (cost is not judged).")
    price.add_argument("--pricing-dir", type=Path, help="Price files. Default: the config's pricing_dir.")
    budgets = p.add_argument_group("budgets (default: the config's report section)")
    budgets.add_argument(
        "--config",
        type=Path,
        default=DEFAULT_CONFIG,
        help=f"A tokenbench config whose report budgets and pricing_dir the import takes. Default: {DEFAULT_CONFIG}.",
    )
    budgets.add_argument("--latency-budget-s", type=float, help="Highest acceptable p95 end-to-end latency, seconds.")
    budgets.add_argument(
        "--cost-per-10k-txn-budget-usd", type=float, help="Highest acceptable cost of 10,000 requests."
    )
    budgets.add_argument("--error-rate-budget", type=float, help="Highest acceptable error rate (fraction).")
    budgets.add_argument("--dataset-of-interest", help="Payload bucket (or part of its name) to recommend for.")
    options.add_location_options(p, warehouse=False)
    p.add_argument("--no-build", action="store_true", help="Only land the rows; skip the dbt build.")


def _name(value: str | None, option: str) -> None:
    if value is not None and not NAME_RE.match(value):
        raise ConfigError(f"{option}: {value!r} {NAME_RULE}")


def _check_options(args: argparse.Namespace) -> None:
    for option in ("experiment_name", "payload_file", "run_name"):
        _name(getattr(args, option), "--" + option.replace("_", "-"))
    if args.concurrency is not None:
        if args.tool != "aiperf":
            raise ConfigError(f"--concurrency: only for aiperf (a {args.tool} file records the levels it ran)")
        if args.concurrency < 1:
            raise ConfigError(f"--concurrency: must be a whole number >= 1, not {args.concurrency}")
    if args.instance_count is not None and args.instance_count < 1:
        raise ConfigError(f"--instance-count: must be a whole number >= 1, not {args.instance_count}")
    if args.usd_per_hour is not None and (args.usd_per_hour < 0 or args.usd_per_hour != args.usd_per_hour):
        raise ConfigError(f"--usd-per-hour: must be a price >= 0, not {args.usd_per_hour}")
    if args.unpriced and args.usd_per_hour is not None:
        raise ConfigError("--usd-per-hour and --unpriced: give one, not both")


def _budgets(args: argparse.Namespace) -> tuple[Any, Path, str]:
    """(the run's Report, the pricing folder, the config path) from --config and the budget options."""
    from collector.config import Report, load_config

    path = args.config
    if path == DEFAULT_CONFIG and not path.exists():  # outside the repo: the embedded default still works
        path = PACKAGED_DEFAULT_CONFIG
    config = load_config(path)
    given = {k: getattr(args, k) for k in BUDGETS if getattr(args, k) is not None}
    try:
        report = Report(**{**config.report.model_dump(), **given})
    except ValidationError as exc:
        err = exc.errors()[0]
        option = "--" + str(err["loc"][0]).replace("_", "-") if err["loc"] else "budgets"
        raise ConfigError(f"{option}: {err['msg']}") from exc
    return report, Path(args.pricing_dir or config.pricing_dir), str(path)


def run(args: argparse.Namespace) -> int:
    from collector import importers
    from collector.importers.land import ENDPOINT_TYPE, ImportSettings, land
    from collector.importers.records import DEFAULT_PAYLOAD_FILE, ImportOptions
    from collector.pricing import check_price, price_record, read_prices
    from collector.warehouse import refresh, warehouse_path

    _check_options(args)
    report, pricing_dir, config_path = _budgets(args)
    parsed = importers.read(
        args.tool,
        args.file,
        ImportOptions(args.experiment_name, args.payload_file, args.concurrency),
    )
    for level in parsed.levels:
        _name(level.key.experiment_name, f"{args.file}: experiment_name (or give --experiment-name)")
        _name(level.key.payload_file, f"{args.file}: payload_file (or give --payload-file)")
    model_id = args.model_id or parsed.model_id
    if not model_id:
        raise ConfigError(f"--model-id: {args.file} names no model; give the model id it benchmarked")
    prices = read_prices(pricing_dir)
    experiments = []
    for name in dict.fromkeys(level.key.experiment_name for level in parsed.levels):
        facts = parsed.experiments.get(name)
        instance_type = args.instance_type or (facts.instance_type if facts else None)
        instance_count = args.instance_count or (facts.instance_count if facts else None) or 1
        if not args.unpriced and args.usd_per_hour is None:
            check_price(
                prices,
                pricing_dir,
                instance_type=instance_type,
                model_id=model_id,
                at_instance_type="--instance-type" if args.instance_type else f"{args.file}: instance_type",
                at_model_id="--model-id",
                instance_type_name="--instance-type",
            )
        experiments.append(
            price_record(
                prices,
                experiment_name=name,
                model_id=model_id,
                endpoint_type=ENDPOINT_TYPE,
                instance_type=instance_type,
                instance_count=instance_count,
                inline_usd_per_hour=args.usd_per_hour,
                unpriced=args.unpriced,
                telemetry_host=None,  # an imported run has no telemetry
            )
        )
    given = {
        k: (str(v) if isinstance(v, Path) else v)
        for k, v in vars(args).items()
        if k not in ("command", "debug", "results_dir") and v is not None and v is not False
    }
    settings = ImportSettings(
        run_name=args.run_name or f"{args.tool}-import",
        model_id=model_id,
        report=report,
        config_path=config_path,
        pricing_dir=pricing_dir,
        experiments=experiments,
        options=given,
    )
    results_dir = options.results_dir(args)
    landed = land(parsed, settings, results_dir)
    levels = ", ".join(
        f"{lv.key.experiment_name}/{lv.key.payload_file}@{lv.key.concurrency} ({lv.source_level})"
        for lv in parsed.levels
    )
    print(
        f"run {landed.run_id}: imported {landed.requests} requests ({landed.errors} failed"
        + (f", {landed.warmups} warm-up" if landed.warmups else "")
        + f") from {args.tool} file {args.file}; levels: {levels}",
        file=sys.stderr,
    )
    for why in parsed.skipped:
        print(f"skipped {why}", file=sys.stderr)
    if any(level.key.payload_file == DEFAULT_PAYLOAD_FILE for level in parsed.levels):
        print(
            f"note: rows filed under payload bucket {DEFAULT_PAYLOAD_FILE!r} (the file names none); to compare them "
            "with a run of yours on the Compare page, import again with --payload-file <that run's bucket>",
            file=sys.stderr,
        )
    warehouse = warehouse_path(results_dir)
    try:
        refresh(results_dir, warehouse)
    except (OSError, UserError) as exc:
        print(f"warning: warehouse {warehouse} not refreshed: {exc}", file=sys.stderr)
    if not args.no_build:
        from collector import dbt_runner

        print("building the marts (dbt build) ...", file=sys.stderr)
        dbt_runner.build(warehouse, pricing_dir=pricing_dir)
        print(f"explore: python -m collector app --warehouse {warehouse}")
    print(f"raw rows: {landed.run_dir}")
    return 0
