"""`collector report`: write report.md and a self-contained report.html for a run from the marts."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from collector.cli import options
from collector.outputs.report import write_report


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report",
        help="Write the run report (Markdown and self-contained HTML).",
        description="Write report.md, report.html (charts embedded as PNG data URIs) and the charts as PNG "
        "files for one run, in the sections of FMBench's report, from the marts of the warehouse.",
    )
    p.add_argument("--run", dest="run_id", default=None, metavar="RUN_ID", help="Run id. Default: the newest run.")
    p.add_argument(
        "--out", type=Path, default=None, metavar="DIR", help="Output folder. Default: <results-dir>/reports/<run_id>/."
    )
    options.add_location_options(p)


def run(args: argparse.Namespace) -> int:
    path = write_report(options.warehouse(args), args.run_id, args.out, results_dir=options.results_dir(args))
    print(f"report: {path} (and {path.with_suffix('.html').name} beside it)", file=sys.stdout)
    return 0
