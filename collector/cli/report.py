"""`collector report`: write report.md and a self-contained report.html for a run from the marts."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from collector.report import write_report
from collector.warehouse import warehouse_path

RESULTS_ENV = "TOKENBENCH_RESULTS_DIR"


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
    p.add_argument(
        "--results-dir",
        type=Path,
        default=None,
        help=f"Folder holding raw/ and the warehouse. Default: ${RESULTS_ENV} or ./results.",
    )
    p.add_argument(
        "--warehouse", type=Path, default=None, help="Warehouse file. Default: <results-dir>/tokenbench.duckdb."
    )


def run(args: argparse.Namespace) -> int:
    results_dir = Path(args.results_dir or os.environ.get(RESULTS_ENV, "results"))
    warehouse = Path(args.warehouse or warehouse_path(results_dir))
    path = write_report(warehouse, args.run_id, args.out, results_dir=results_dir)
    print(f"report: {path} (and {path.with_suffix('.html').name} beside it)", file=sys.stdout)
    return 0
