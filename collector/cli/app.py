"""`collector app`: start the Streamlit app on a warehouse (`streamlit run streamlit_app/app.py -- --warehouse`)."""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

from collector.errors import UserError
from collector.warehouse import warehouse_path

RESULTS_ENV = "TOKENBENCH_RESULTS_DIR"
APP_SCRIPT = Path(__file__).resolve().parents[2] / "streamlit_app" / "app.py"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "app",
        help="Open the results in the Streamlit app.",
        description="Run `streamlit run streamlit_app/app.py -- --warehouse PATH`. The app opens the warehouse "
        "read-only, briefly per query, so it can stay open while a sweep runs or the marts are rebuilt.",
    )
    p.add_argument(
        "--results-dir",
        type=Path,
        default=None,
        help=f"Folder holding the warehouse. Default: ${RESULTS_ENV} or ./results.",
    )
    p.add_argument(
        "--warehouse", type=Path, default=None, help="Warehouse file. Default: <results-dir>/tokenbench.duckdb."
    )
    p.add_argument("--port", type=int, default=8501, help="Port to serve on (default: %(default)s).")


def command(warehouse: Path, port: int) -> list[str]:
    """The streamlit command line the subcommand runs."""
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(APP_SCRIPT),
        "--server.port",
        str(port),
        "--browser.gatherUsageStats",
        "false",
        "--",
        "--warehouse",
        str(warehouse.resolve()),
    ]


def run(args: argparse.Namespace) -> int:
    if importlib.util.find_spec("streamlit") is None:
        raise UserError("streamlit is not installed: pip install -e '.[app]'")
    results_dir = Path(args.results_dir or os.environ.get(RESULTS_ENV, "results"))
    warehouse = Path(args.warehouse or warehouse_path(results_dir))
    try:
        return subprocess.call(command(warehouse, args.port))
    except KeyboardInterrupt:
        return 130
